#ifndef PGSQLCHK_BACKSTOP_H
#define PGSQLCHK_BACKSTOP_H

#include <stddef.h>

// Holds the answers the backstop may write, one per phase: `count` of them
// end to end in `bytes`, answer i from bounds[i] to bounds[i + 1] (so
// `bounds` has count + 1 entries, bounds[0] == 0). Copied here, with SIGALRM
// blocked meanwhile so the handler never sees half of them; selects answer
// 0. Returns 0, or -1 when count < 1 or no memory was left (the previous
// answers then stay held).
int pgsqlchk_backstop_hold(const unsigned char *bytes, const size_t *bounds, int count);

// Selects the answer the handler writes: one store, async-signal-safe.
void pgsqlchk_backstop_select(int index);

// Arms a one-shot SIGALRM: `milliseconds` from now it writes the selected
// answer to standard output, ends a check connection as
// pgsqlchk_finish_connection does when `finishes_connection` is non-zero,
// and _exits with `exit_status`. Hold the answers first. Returns 0, or -1
// with errno set.
int pgsqlchk_backstop_arm(long milliseconds, int exit_status, int finishes_connection);

// Blocks SIGALRM and stops the timer: the backstop can no longer fire.
void pgsqlchk_backstop_disarm(void);

// Ends a check connection on standard input/output with a normal close:
// shutdown(SHUT_WR), so the asker reads FIN after the answer, then reads and
// discards what the asker still sends, at most `limit` bytes for at most
// `milliseconds`, so that no unread byte turns the close into a reset.
// Async-signal-safe: the backstop's handler calls it too.
void pgsqlchk_finish_connection(long milliseconds, size_t limit);

#endif
