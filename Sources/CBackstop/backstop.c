// The deadline's last guard, in C because a signal handler may only touch
// what is async-signal-safe: two plain statics, write() and _exit(). A Swift
// handler would read Swift globals, whose access paths (lazy initialisation,
// exclusivity checks in debug builds) make no such promise.
#include "CBackstop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static unsigned char *armed_response;
static size_t armed_length;
static int armed_exit_status;

static void answer_and_exit(int signal_number) {
    (void)signal_number;
    size_t written = 0;
    while (written < armed_length) {
        ssize_t result = write(STDOUT_FILENO, armed_response + written, armed_length - written);
        if (result < 0 && errno == EINTR) continue;
        if (result <= 0) break;
        written += (size_t)result;
    }
    _exit(armed_exit_status);
}

int pgsqlchk_backstop_arm(const unsigned char *response, size_t length, int exit_status, long milliseconds) {
    unsigned char *copy = malloc(length);
    if (copy == NULL) return -1;
    memcpy(copy, response, length);
    armed_response = copy;
    armed_length = length;
    armed_exit_status = exit_status;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = answer_and_exit;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGALRM, &action, NULL) != 0) return -1;
    // A parent may have left SIGALRM blocked; the backstop must not depend on it.
    sigset_t alarm_only;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &alarm_only, NULL);

    if (milliseconds < 1) milliseconds = 1;
    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    timer.it_value.tv_sec = milliseconds / 1000;
    timer.it_value.tv_usec = (milliseconds % 1000) * 1000;
    return setitimer(ITIMER_REAL, &timer, NULL);
}

void pgsqlchk_backstop_disarm(void) {
    sigset_t alarm_only;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    sigprocmask(SIG_BLOCK, &alarm_only, NULL);
    struct itimerval stopped;
    memset(&stopped, 0, sizeof stopped);
    setitimer(ITIMER_REAL, &stopped, NULL);
}
