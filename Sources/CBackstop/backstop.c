// The deadline's last guard, in C because a signal handler may only touch
// what is async-signal-safe: plain statics, write(), shutdown(), poll(),
// read(), clock_gettime() and _exit(). A Swift handler would read Swift
// globals, whose access paths (lazy initialisation, exclusivity checks in
// debug builds) make no such promise.
#include "CBackstop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static unsigned char *armed_response;
static size_t armed_length;
static int armed_exit_status;
static int armed_finishes_connection;

// Changes SIGALRM's mask with `how`; the whole previous mask goes to `previous` unless NULL.
static void mask_alarm(int how, sigset_t *previous) {
    sigset_t alarm_only;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    sigprocmask(how, &alarm_only, previous);
}

static long long monotonic_milliseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void pgsqlchk_finish_connection(long milliseconds, size_t limit) {
    static unsigned char discarded[4096];
    shutdown(STDOUT_FILENO, SHUT_WR);
    long long stop = monotonic_milliseconds() + milliseconds;
    size_t drained = 0;
    while (drained < limit) {
        long long left = stop - monotonic_milliseconds();
        if (left <= 0) break;
        struct pollfd input = {.fd = STDIN_FILENO, .events = POLLIN};
        int ready = poll(&input, 1, (int)left);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        ssize_t received = read(STDIN_FILENO, discarded, sizeof discarded);
        if (received < 0 && errno == EINTR) continue;
        if (received <= 0) break;
        drained += (size_t)received;
    }
}

static void answer_and_exit(int signal_number) {
    (void)signal_number;
    size_t written = 0;
    while (written < armed_length) {
        ssize_t result = write(STDOUT_FILENO, armed_response + written, armed_length - written);
        if (result < 0 && errno == EINTR) continue;
        if (result <= 0) break;
        written += (size_t)result;
    }
    if (armed_finishes_connection) pgsqlchk_finish_connection(200, 65536);
    _exit(armed_exit_status);
}

int pgsqlchk_backstop_set_answer(const unsigned char *response, size_t length, int exit_status) {
    unsigned char *copy = malloc(length ? length : 1);
    if (copy == NULL) return -1;
    memcpy(copy, response, length);
    sigset_t mask;
    mask_alarm(SIG_BLOCK, &mask);
    unsigned char *previous = armed_response;
    armed_response = copy;
    armed_length = length;
    armed_exit_status = exit_status;
    sigprocmask(SIG_SETMASK, &mask, NULL);
    free(previous);
    return 0;
}

int pgsqlchk_backstop_arm(const unsigned char *response, size_t length, int exit_status, long milliseconds,
                          int finishes_connection) {
    if (pgsqlchk_backstop_set_answer(response, length, exit_status) != 0) return -1;
    armed_finishes_connection = finishes_connection;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = answer_and_exit;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGALRM, &action, NULL) != 0) return -1;
    // A parent may have left SIGALRM blocked; the backstop must not depend on it.
    mask_alarm(SIG_UNBLOCK, NULL);

    if (milliseconds < 1) milliseconds = 1;
    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    timer.it_value.tv_sec = milliseconds / 1000;
    timer.it_value.tv_usec = (milliseconds % 1000) * 1000;
    return setitimer(ITIMER_REAL, &timer, NULL);
}

void pgsqlchk_backstop_disarm(void) {
    mask_alarm(SIG_BLOCK, NULL);
    struct itimerval stopped;
    memset(&stopped, 0, sizeof stopped);
    setitimer(ITIMER_REAL, &stopped, NULL);
}
