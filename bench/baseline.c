/*
 * The floor for pgsqlchk's design: the least a libpq health check can do.
 *
 *   baseline [-h HOST] [-p PORT] [-U USER] [-d DBNAME]
 *   baseline -V      start-up alone: libpq loaded, nothing asked
 *
 * Same work as pgsqlchk on its hot path: connect with keyword/value arrays,
 * ask pg_catalog.pg_is_in_recovery(), close, then one write() of an HTTP
 * response with Content-Length. Exit 0 primary (200), 1 standby (206),
 * 2 anything else (503). It has no deadline, no request parsing and no error
 * classification, so pgsqlchk can only match it, not beat it. Spawned on a
 * socket (make bench-load) it reads the request before answering and closes
 * after a FIN, as any check must: a close with the request unread is a reset.
 *
 * Build: gcc -O2 $(pkg-config --cflags libpq) baseline.c $(pkg-config --libs libpq)
 *
 * Built with -DLIBPQ_AT_RUN_TIME (and -ldl instead of -lpq) it loads libpq as
 * pgsqlchk does: dlopen when it connects, RTLD_LOCAL | RTLD_DEEPBIND, so -V
 * loads nothing and the two programs' start-up and checks compare like with
 * like (make bench's breakdown).
 */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads from stdin until `end` arrives, the peer closes, or `milliseconds` pass. */
static void read_until(const char *end, int milliseconds)
{
	char buffer[8192];
	size_t used = 0;
	struct pollfd input = {.fd = STDIN_FILENO, .events = POLLIN};
	while (used < sizeof buffer - 1 && poll(&input, 1, milliseconds) > 0) {
		ssize_t received = read(STDIN_FILENO, buffer + used, sizeof buffer - 1 - used);
		if (received <= 0)
			return;
		used += (size_t)received;
		buffer[used] = '\0';
		if (end != NULL && strstr(buffer, end) != NULL)
			return;
	}
}

#ifdef LIBPQ_AT_RUN_TIME
#include <dlfcn.h>

/* Every libpq function used below, declared through libpq-fe.h's own types. */
#define LIBPQ_FUNCTIONS(X) \
	X(PQconnectdbParams) X(PQstatus) X(PQexec) X(PQresultStatus) X(PQntuples) \
	X(PQnfields) X(PQgetvalue) X(PQclear) X(PQerrorMessage) X(PQfinish)
#define DECLARE(name) static __typeof__(name) *loaded_##name;
LIBPQ_FUNCTIONS(DECLARE)
#undef DECLARE

static int load_libpq(void)
{
	void *library = dlopen("libpq.so.5", RTLD_LAZY | RTLD_LOCAL | RTLD_DEEPBIND);
	if (library == NULL)
		return -1;
#define RESOLVE(name) if ((loaded_##name = (__typeof__(name) *)dlsym(library, #name)) == NULL) return -1;
	LIBPQ_FUNCTIONS(RESOLVE)
#undef RESOLVE
	return 0;
}

#define PQconnectdbParams loaded_PQconnectdbParams
#define PQstatus loaded_PQstatus
#define PQexec loaded_PQexec
#define PQresultStatus loaded_PQresultStatus
#define PQntuples loaded_PQntuples
#define PQnfields loaded_PQnfields
#define PQgetvalue loaded_PQgetvalue
#define PQclear loaded_PQclear
#define PQerrorMessage loaded_PQerrorMessage
#define PQfinish loaded_PQfinish
#endif

enum { HOST, PORT, USER, DBNAME, APPLICATION_NAME, PARAMETER_COUNT };

int main(int argc, char **argv)
{
	/* libpq skips NULL values, so options left out fall back to PG* and defaults. */
	const char *keywords[PARAMETER_COUNT + 1] = {
		[HOST] = "host", [PORT] = "port", [USER] = "user", [DBNAME] = "dbname",
		[APPLICATION_NAME] = "fallback_application_name",
	};
	const char *values[PARAMETER_COUNT + 1] = {[APPLICATION_NAME] = "pgsqlchk-baseline"};
	int option;

	while ((option = getopt(argc, argv, "h:p:U:d:V")) != -1) {
		switch (option) {
		case 'V': return puts("baseline") == EOF;
		case 'h': values[HOST] = optarg; break;
		case 'p': values[PORT] = optarg; break;
		case 'U': values[USER] = optarg; break;
		case 'd': values[DBNAME] = optarg; break;
		default: return 64; /* EX_USAGE, as pgsqlchk */
		}
	}

	struct stat input;
	int serving = fstat(STDIN_FILENO, &input) == 0 && S_ISSOCK(input.st_mode);
	if (serving)
		read_until("\r\n\r\n", 1000);

#ifdef LIBPQ_AT_RUN_TIME
	if (load_libpq() != 0) {
		fprintf(stderr, "baseline: cannot load libpq: %s\n", dlerror());
		return 2;
	}
#endif
	/* expand_dbname = 1, as pgsqlchk: -d may be a conninfo string or URI. */
	PGconn *connection = PQconnectdbParams(keywords, values, 1);
	char in_recovery = '?';
	if (PQstatus(connection) == CONNECTION_OK) {
		PGresult *result = PQexec(connection, "SELECT pg_catalog.pg_is_in_recovery()");
		if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 &&
		    PQnfields(result) == 1)
			in_recovery = PQgetvalue(result, 0, 0)[0];
		PQclear(result);
	}
	if (in_recovery == '?')
		fprintf(stderr, "baseline: %s", PQerrorMessage(connection));
	/* pgsqlchk also closes the connection before it answers. */
	PQfinish(connection);

	const char *status = "503 Service Unavailable", *body = "role cannot be verified\n";
	int exit_status = 2;
	if (in_recovery == 'f') {
		status = "200 OK", body = "primary\n", exit_status = 0;
	} else if (in_recovery == 't') {
		status = "206 Partial Content", body = "standby\n", exit_status = 1;
	}

	char response[256];
	int length = snprintf(response, sizeof response,
			      "HTTP/1.1 %s\r\n"
			      "Content-Type: text/plain; charset=utf-8\r\n"
			      "Content-Length: %zu\r\n"
			      "Connection: close\r\n"
			      "\r\n"
			      "%s",
			      status, strlen(body), body);
	if (write(STDOUT_FILENO, response, (size_t)length) != length)
		return 2;
	if (serving) {
		shutdown(STDOUT_FILENO, SHUT_WR);
		read_until(NULL, 200);
	}
	return exit_status;
}
