import Testing
@testable import PGSQLChkCore

@Suite("Passwords never reach the log")
struct RedactionTests {
    @Test("URIs and password= values are masked, the rest kept", arguments: [
        ("invalid URI query parameter: \"postgresql://user:SECRET@[::1/postgres\"",
         "invalid URI query parameter: \"postgresql://user:***@[::1/postgres\""),
        ("postgres://a:SE/CR@ET@db1:5432/x and more", "postgres://a:***@db1:5432/x and more"),
        ("postgresql://db1/app?user=u&password=SECRET&sslmode=require", "postgresql://db1/app?user=u&password=***&sslmode=require"),
        ("missing \"=\" after \"host=db1 password=SECRET port\" in connection info string",
         "missing \"=\" after \"host=db1 password=*** port\" in connection info string"),
        ("host=db1 password = 'SE CR\\'ET' user=u", "host=db1 password = *** user=u"),
        ("password authentication failed for user \"monitor\"", "password authentication failed for user \"monitor\""),
        ("postgresql://monitor@db1/postgres", "postgresql://monitor@db1/postgres"),
        ("connection to server at \"127.0.0.1\", port 5432 failed", "connection to server at \"127.0.0.1\", port 5432 failed"),
    ])
    func masked(text: String, expected: String) {
        #expect(Redaction.redactingPasswords(text) == expected)
    }
}
