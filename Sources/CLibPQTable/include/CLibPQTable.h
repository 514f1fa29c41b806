#ifndef PGSQLCHK_LIBPQ_TABLE_H
#define PGSQLCHK_LIBPQ_TABLE_H

// libpq's functions, resolved with dlopen/dlsym on first use instead of by the
// loader at start-up, so that a check answered from the result cache never
// maps libpq and its ~23 libraries (README, "Result cache"). The types come
// from libpq-fe.h itself, so a field cannot disagree with the function it
// holds. PostgresConnection is the only user.
#include <postgresql/libpq-fe.h>

// Every libpq function pgsqlchk calls: one X(name) each.
#define PGSQLCHK_LIBPQ_FUNCTIONS(X) \
    X(PQconnectStartParams)         \
    X(PQconnectPoll)                \
    X(PQstatus)                     \
    X(PQsocket)                     \
    X(PQsetnonblocking)             \
    X(PQsetErrorVerbosity)          \
    X(PQsetNoticeProcessor)         \
    X(PQerrorMessage)               \
    X(PQconnectionNeedsPassword)    \
    X(PQparameterStatus)            \
    X(PQsendQuery)                  \
    X(PQsendQueryParams)            \
    X(PQflush)                      \
    X(PQconsumeInput)               \
    X(PQisBusy)                     \
    X(PQgetResult)                  \
    X(PQresultStatus)               \
    X(PQresultErrorMessage)         \
    X(PQntuples)                    \
    X(PQnfields)                    \
    X(PQfname)                      \
    X(PQgetisnull)                  \
    X(PQgetvalue)                   \
    X(PQclear)                      \
    X(PQfinish)

#define PGSQLCHK_LIBPQ_FIELD(name) __typeof__(name) *_Nonnull name;
struct pgsqlchk_libpq {
    PGSQLCHK_LIBPQ_FUNCTIONS(PGSQLCHK_LIBPQ_FIELD)
};
#undef PGSQLCHK_LIBPQ_FIELD

// The table, loading libpq.so.5 the first time. NULL when the library or one
// of its functions cannot be found; `*error` then says why (dlerror's text,
// valid until the next call).
const struct pgsqlchk_libpq *_Nullable pgsqlchk_libpq_load(const char *_Nullable *_Nonnull error);

#endif
