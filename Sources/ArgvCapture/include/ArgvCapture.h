// ArgvCapture exports nothing to Swift: linking it replaces the Swift
// runtime's argv lookup (see argv_capture.c).
