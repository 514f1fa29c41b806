// Hands the Swift runtime argc and argv without its /proc/self/maps scan.
//
// On Linux, libswiftCore.a's CommandLine.cpp finds argv with a static
// constructor that opens and sscanf-parses /proc/self/maps: ~360,000
// instructions, about 3% of a whole check (callgrind), paid by every check
// HAProxy triggers. glibc already passes (argc, argv, envp) to every
// .init_array function, so we capture them there and define the two entry
// points CommandLine.arguments uses; the linker then never pulls
// CommandLine.cpp.o out of the archive. Should a future runtime need another
// symbol from that object, the link fails with a duplicate definition, loudly.

// Any libc header defines __GLIBC__ under glibc.
#include <limits.h>

#ifndef __GLIBC__
#error "ArgvCapture relies on glibc passing argc and argv to .init_array functions"
#endif

static int captured_argc;
static char **captured_argv;
static char *no_arguments[] = { 0 };

static void capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    captured_argc = argc;
    captured_argv = argv;
}

__attribute__((section(".init_array"), used))
static void (*const capture_arguments_entry)(int, char **, char **) = capture_arguments;

__attribute__((visibility("default")))
char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen) {
    if (captured_argv == 0) {
        *outArgLen = 0;
        return no_arguments;
    }
    *outArgLen = captured_argc;
    return captured_argv;
}

__attribute__((visibility("default")))
void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
    captured_argv = argv;
    captured_argc = argc;
}
