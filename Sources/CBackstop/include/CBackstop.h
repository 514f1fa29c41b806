#ifndef PGSQLCHK_BACKSTOP_H
#define PGSQLCHK_BACKSTOP_H

#include <stddef.h>

// Arms a one-shot SIGALRM: `milliseconds` from now it writes the answer last
// given (here or to pgsqlchk_backstop_set_answer) to standard output, ends a
// check connection as pgsqlchk_finish_connection does when
// `finishes_connection` is non-zero, and _exits with the answer's exit
// status. Returns 0, or -1 with errno set.
int pgsqlchk_backstop_arm(const unsigned char *response, size_t length, int exit_status, long milliseconds,
                          int finishes_connection);

// Replaces the answer an armed backstop would give (copied here), with
// SIGALRM blocked meanwhile so the handler never sees half of it. Returns 0,
// or -1 when no memory was left (the previous answer then stays armed).
int pgsqlchk_backstop_set_answer(const unsigned char *response, size_t length, int exit_status);

// Blocks SIGALRM and stops the timer: the backstop can no longer fire.
void pgsqlchk_backstop_disarm(void);

// Ends a check connection on standard input/output with a normal close:
// shutdown(SHUT_WR), so the peer reads FIN after the answer, then reads and
// discards what the peer still sends, at most `limit` bytes for at most
// `milliseconds`, so that no unread byte turns the close into a reset.
// Async-signal-safe: the backstop's handler calls it too.
void pgsqlchk_finish_connection(long milliseconds, size_t limit);

#endif
