// See CLibPQTable.h. Not thread-safe: a check is one thread.
#include "CLibPQTable.h"

#include <dlfcn.h>
#include <stddef.h>

// The soname libpq5 ships (the Debian package's Depends names it: debian/control.in).
static const char library_name[] = "libpq.so.5";

static struct pgsqlchk_libpq table;
static int loaded;

const struct pgsqlchk_libpq *pgsqlchk_libpq_load(const char **error) {
    if (loaded) return &table;
    // RTLD_LAZY as the loader binds a NEEDED library's calls; RTLD_LOCAL so
    // that libpq's own libraries stay out of the global symbol scope;
    // RTLD_DEEPBIND so that their symbols are looked up in their own
    // dependencies first. libpq.so.5 and its 23 libraries are linked with
    // BIND_NOW, so dlopen binds some 20,000 symbols at once, and a dlopened
    // library's lookups otherwise walk this executable, libc and ld.so
    // before its own tree: with DEEPBIND a check costs 9.97 million
    // instructions instead of 11.53 million, against 10.16 million for the
    // C floor that links libpq (callgrind, README "Start-up cost"). Nothing
    // here interposes on libpq's libraries, and this executable has no copy
    // relocations (ReleaseBinaryTests), which DEEPBIND would split.
    void *library = dlopen(library_name, RTLD_LAZY | RTLD_LOCAL | RTLD_DEEPBIND);
    if (library == NULL) {
        *error = dlerror();
        return NULL;
    }
    void *symbol;
#define PGSQLCHK_LIBPQ_RESOLVE(name)                      \
    symbol = dlsym(library, #name);                       \
    if (symbol == NULL) {                                 \
        *error = dlerror();                               \
        return NULL;                                      \
    }                                                     \
    table.name = (__typeof__(name) *)symbol;
    PGSQLCHK_LIBPQ_FUNCTIONS(PGSQLCHK_LIBPQ_RESOLVE)
#undef PGSQLCHK_LIBPQ_RESOLVE
    loaded = 1;
    return &table;
}
