#ifndef PGSQLCHK_RESOLVER_H
#define PGSQLCHK_RESOLVER_H

#include <stddef.h>

// One host name lookup (getaddrinfo) on a thread of its own, so that a caller
// with a deadline can wait for it with poll() and walk away when the deadline
// passes: getaddrinfo itself cannot be interrupted, and a nameserver that
// never answers holds it for resolv.conf's timeout times its attempts.
//
// The thread starts with every signal blocked, so that a process-directed
// signal (the backstop's SIGALRM) is always taken by a thread that expects it.
typedef struct pgsqlchk_lookup pgsqlchk_lookup;

// Starts looking up `host` (addresses for TCP, IPv4 and IPv6). Returns NULL
// with errno set when no thread, pipe or memory could be had.
pgsqlchk_lookup *pgsqlchk_lookup_start(const char *host);

// The descriptor that becomes readable when the lookup has finished.
int pgsqlchk_lookup_descriptor(const pgsqlchk_lookup *lookup);

// Once finished: 0 and the numeric addresses, comma-separated and
// NUL-terminated, in `addresses` (as many whole ones as fit in `size`); or
// getaddrinfo's error code (EAI_*), whose text gai_strerror gives (EAI_NONAME
// for a name without addresses). Only once the descriptor is readable; before
// that it returns EAI_SYSTEM.
int pgsqlchk_lookup_result(const pgsqlchk_lookup *lookup, char *addresses, size_t size);

// Gives the lookup up, finished or not: its thread frees it when done.
void pgsqlchk_lookup_abandon(pgsqlchk_lookup *lookup);

#endif
