// Debian's libpq-dev path, spelled out instead of asked of pkg-config: only
// the declarations are wanted, and pkg-config's Libs would link libpq.
#include <postgresql/libpq-fe.h>
