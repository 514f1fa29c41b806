#ifndef PGSQLCHK_BACKSTOP_H
#define PGSQLCHK_BACKSTOP_H

#include <stddef.h>

// Arms a one-shot SIGALRM: `milliseconds` from now it writes the `length`
// bytes of `response` (copied here) to standard output and _exits with
// `exit_status`. Returns 0, or -1 with errno set.
int pgsqlchk_backstop_arm(const unsigned char *response, size_t length, int exit_status, long milliseconds);

// Blocks SIGALRM and stops the timer: the backstop can no longer fire.
void pgsqlchk_backstop_disarm(void);

#endif
