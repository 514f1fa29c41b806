// LazyLibm exports nothing to Swift: linking it keeps libm.so.6 out of the
// process until a math function is really called (see lazy_libm.c).
