import Testing
@testable import PGSQLChkCore

/// Messages as libpq 15 prints them with `PQERRORS_VERBOSE`, captured from the
/// test cluster.
@Suite("Connection failure classification")
struct ProbeFailureTests {
    @Test("libpq messages map to the reason a DBA can act on", arguments: [
        ("connection to server on socket \"/run/postgresql/.s.PGSQL.1\" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n",
         false, "no response from server"),
        ("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n",
         false, "no response from server"),
        ("could not translate host name \"db.invalid\" to address: Name or service not known\n",
         false, "no response from server"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: fe_sendauth: no password supplied\n",
         true, "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: password authentication failed for user \"monitor\"\nLOCATION:  auth_failed, auth.c:326\n",
         false, "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28000: pg_hba.conf rejects connection for host \"127.0.0.1\", user \"x\", database \"x\", no encryption\n",
         false, "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  3D000: database \"nosuchdb\" does not exist\n",
         false, "not authorized (check the database name and CONNECT privilege)"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  42501: permission denied for database \"app\"\nDETAIL:  User does not have CONNECT privilege.\n",
         false, "not authorized (check the database name and CONNECT privilege)"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  53300: sorry, too many clients already\n",
         false, "too many connections"),
        ("connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  57P03: the database system is starting up\n",
         false, "server is not accepting connections (starting up or shutting down)"),
        ("connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  57P03: le système de bases de données s'arrête\n",
         false, "server is not accepting connections (starting up or shutting down)"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  XX000: something odd\n",
         false, "connection rejected (SQLSTATE XX000)"),
        ("invalid connection option \"bogus\"\n", false, "invalid connection settings"),
        ("connection to server at \"127.0.0.1\", port 5432 failed: server does not support SSL, but SSL was required\n",
         false, "server does not support SSL, but sslmode requires it"),
        ("connection to server at \"db1\" (10.0.0.1), port 5432 failed: SSL error: certificate verify failed\n",
         false, "server certificate verification failed"),
        ("connection to server at \"db1\" (10.0.0.1), port 5432 failed: server certificate for \"db2\" does not match host name \"db1\"\n",
         false, "server certificate verification failed"),
        ("connection to server at \"db1\" (10.0.0.1), port 5432 failed: root certificate file \"/nonexistent/.postgresql/root.crt\" does not exist\nEither provide the file or change sslmode to disable server certificate verification.\n",
         false, "SSL certificate or key file problem"),
        ("connection to server at \"db1\" (10.0.0.1), port 5432 failed: SSL SYSCALL error: EOF detected\n",
         false, "SSL handshake failed"),
        ("invalid integer value \"x\" for connection option \"port\"\n", false, "invalid connection settings"),
    ])
    func classification(message: String, needsPassword: Bool, reason: String) {
        #expect(ConnectionFailureClassifier.classify(message: message, needsPassword: needsPassword).reason == reason)
    }

    @Test("the detail keeps libpq's whole message on one line")
    func detailIsOneLine() {
        let failure = ConnectionFailureClassifier.classify(message: "connection to server failed: FATAL:  53300: sorry\nLOCATION:  x\n", needsPassword: false)
        #expect(failure.detail == "connection to server failed: FATAL:  53300: sorry LOCATION:  x")
    }

    @Test("text that only looks like a severity is not a SQLSTATE", arguments: [
        "FATAL: 53300: one space",
        "FATAL:  5330: short",
        "FATAL:  53300 no colon",
        "FATAL:  sorry: lower",
    ])
    func noSQLSTATE(message: String) {
        #expect(ConnectionFailureClassifier.sqlstate(in: message) == nil)
    }
}
