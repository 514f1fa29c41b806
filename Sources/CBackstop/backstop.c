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

// The answers held, one per phase the check may still enter, in one block:
// `count` bounds after the header, then the bytes; answer i runs from
// bounds[i] to bounds[i + 1]. Replaced whole with SIGALRM blocked.
struct answers {
    int count;
    size_t bounds[];
};
static struct answers *held;
// Which answer the handler writes: one store, so the probe can select it
// from any point without blocking the signal.
static volatile sig_atomic_t selected;
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
    int index = selected;
    if (held != NULL && index >= 0 && index < held->count) {
        const unsigned char *bytes = (const unsigned char *)&held->bounds[held->count + 1];
        size_t written = held->bounds[index], end = held->bounds[index + 1];
        while (written < end) {
            ssize_t result = write(STDOUT_FILENO, bytes + written, end - written);
            if (result < 0 && errno == EINTR) continue;
            if (result <= 0) break;
            written += (size_t)result;
        }
    }
    if (armed_finishes_connection) pgsqlchk_finish_connection(200, 65536);
    _exit(armed_exit_status);
}

int pgsqlchk_backstop_hold(const unsigned char *bytes, const size_t *bounds, int count) {
    if (count < 1) return -1;
    size_t header = sizeof(struct answers) + ((size_t)count + 1) * sizeof(size_t);
    struct answers *copy = malloc(header + bounds[count]);
    if (copy == NULL) return -1;
    copy->count = count;
    memcpy(copy->bounds, bounds, ((size_t)count + 1) * sizeof(size_t));
    memcpy((unsigned char *)copy + header, bytes, bounds[count]);
    sigset_t mask;
    mask_alarm(SIG_BLOCK, &mask);
    struct answers *previous = held;
    held = copy;
    selected = 0;
    sigprocmask(SIG_SETMASK, &mask, NULL);
    free(previous);
    return 0;
}

void pgsqlchk_backstop_select(int index) {
    selected = index;
}

int pgsqlchk_backstop_arm(long milliseconds, int exit_status, int finishes_connection) {
    armed_exit_status = exit_status;
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
