// Keeps libm.so.6 out of the check's start-up.
//
// The static Swift runtime references about a hundred libm functions (its
// Float and Double elementary functions), so the linker records libm.so.6 as
// needed and the dynamic loader maps it before main(). That costs more than
// mapping: every one of the ~8,000 symbol lookups libpq and its 24 libraries
// make at start-up then probes libm as well. Measured with callgrind, a C
// libpq program linked with -lm runs 600,000 more instructions (6% of a whole
// check) than the same program without it. The check never does floating
// point math, so these definitions stand in for libm's entry points (the
// release build links with --as-needed, so libm.so.6 is dropped) and load the
// real library with dlopen on the first call, should one ever come.
//
// Each stand-in resolves its libm function once and caches it; the caches are
// atomic so concurrent first calls are harmless. A libm that cannot be loaded
// is a broken system: abort, as a missing libm at start-up would have.
#include <dlfcn.h>
#include <stdlib.h>

static void *libm_function(const char *name) {
    static void *libm;
    void *library = __atomic_load_n(&libm, __ATOMIC_ACQUIRE);
    if (library == NULL) {
        library = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (library == NULL) abort();
        __atomic_store_n(&libm, library, __ATOMIC_RELEASE);
    }
    void *function = dlsym(library, name);
    if (function == NULL) abort();
    return function;
}

#define LAZY(type, name, parameters, arguments)                                          \
    type name parameters {                                                               \
        static type (*cached) parameters;                                                \
        type (*function) parameters = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);        \
        if (function == NULL) {                                                          \
            function = (type (*) parameters)libm_function(#name);                        \
            __atomic_store_n(&cached, function, __ATOMIC_RELEASE);                       \
        }                                                                                \
        return function arguments;                                                       \
    }

// The double, float and long double forms of a function.
#define UNARY(name)                                                                      \
    LAZY(double, name, (double x), (x))                                                  \
    LAZY(float, name##f, (float x), (x))                                                 \
    LAZY(long double, name##l, (long double x), (x))
#define BINARY(name)                                                                     \
    LAZY(double, name, (double x, double y), (x, y))                                     \
    LAZY(float, name##f, (float x, float y), (x, y))                                     \
    LAZY(long double, name##l, (long double x, long double y), (x, y))

UNARY(acos) UNARY(asin) UNARY(atan) UNARY(acosh) UNARY(asinh) UNARY(atanh)
UNARY(cos) UNARY(sin) UNARY(tan) UNARY(cosh) UNARY(sinh) UNARY(tanh)
UNARY(exp) UNARY(exp2) UNARY(expm1) UNARY(log) UNARY(log10) UNARY(log1p) UNARY(log2) UNARY(logb)
UNARY(cbrt) UNARY(erf) UNARY(erfc) UNARY(tgamma)
UNARY(ceil) UNARY(floor) UNARY(nearbyint) UNARY(rint) UNARY(round) UNARY(sqrt) UNARY(trunc)
BINARY(atan2) BINARY(fmod) BINARY(remainder) BINARY(hypot) BINARY(pow)
BINARY(fdim) BINARY(fmax) BINARY(fmin) BINARY(nextafter)

LAZY(double, fma, (double x, double y, double z), (x, y, z))
LAZY(float, fmaf, (float x, float y, float z), (x, y, z))
LAZY(long double, fmal, (long double x, long double y, long double z), (x, y, z))
LAZY(double, remquo, (double x, double y, int *quotient), (x, y, quotient))
LAZY(float, remquof, (float x, float y, int *quotient), (x, y, quotient))
LAZY(long double, remquol, (long double x, long double y, int *quotient), (x, y, quotient))
LAZY(double, lgamma_r, (double x, int *sign), (x, sign))
LAZY(float, lgammaf_r, (float x, int *sign), (x, sign))
LAZY(long double, lgammal_r, (long double x, int *sign), (x, sign))
LAZY(double, nan, (const char *tag), (tag))
LAZY(float, nanf, (const char *tag), (tag))
LAZY(long double, nanl, (const char *tag), (tag))
LAZY(double, jn, (int order, double x), (order, x))
LAZY(double, yn, (int order, double x), (order, x))
