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
    // that libpq's own libraries stay out of the global symbol scope.
    void *library = dlopen(library_name, RTLD_LAZY | RTLD_LOCAL);
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
