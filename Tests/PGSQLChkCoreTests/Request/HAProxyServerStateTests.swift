import Testing
@testable import PGSQLChkCore

@Suite("HAProxy's X-Haproxy-Server-State header")
struct HAProxyServerStateTests {
    @Test("every state HAProxy 2.6 sends parses, with the fields the check uses", arguments: [
        ("UP; address=127.0.0.1; port=56433; name=pg_readonly_standbys/pg2; node=lb1; weight=100/200; scur=0/3; qcur=0",
         HAProxyServerState(health: .up, backend: "pg_readonly_standbys", server: "pg2", weight: 100, totalWeight: 200)),
        ("UP 2/3; name=b/s; weight=1/1", HAProxyServerState(health: .goingDown, backend: "b", server: "s", weight: 1, totalWeight: 1)),
        ("DOWN; name=b/s; weight=100/0", HAProxyServerState(health: .down, backend: "b", server: "s", weight: 100, totalWeight: 0)),
        ("DOWN 1/2; name=b/s", HAProxyServerState(health: .goingUp, backend: "b", server: "s")),
        ("NOLB; name=b/s", HAProxyServerState(health: .draining, backend: "b", server: "s")),
        ("NOLB 1/3; name=b/s", HAProxyServerState(health: .draining, backend: "b", server: "s")),
        ("no check; name=b/s", HAProxyServerState(health: .unchecked, backend: "b", server: "s")),
        ("UP", HAProxyServerState(health: .up)),
        ("UP; weight=10/10; throttle=50%; future=field", HAProxyServerState(health: .up, weight: 10, totalWeight: 10)),
        ("UP; address=::1; port=; node=", HAProxyServerState(health: .up)),
    ])
    func parses(header: String, state: HAProxyServerState) {
        #expect(HAProxyServerState(header: header[...]) == state)
    }

    @Test("anything else is not HAProxy's format", arguments: [
        "", "up", "MAINT", "UP 2", "UP 2/", "UP a/b", "UP 1/2/3", "DOWN  1/2", "UP; weight=100", "UP; weight=x/1",
        "UP; weight=-1/2", "UP; name=nobackend", "UP; name=/s", "UP; noequals", "UP; =value",
    ])
    func refuses(header: String) {
        #expect(HAProxyServerState(header: header[...]) == nil)
    }

    @Test("which side of the hysteresis, and whether it carries the whole backend", arguments: [
        ("UP; weight=100/100", true as Bool?, true),
        ("UP 1/3; weight=10/10", true, true),
        ("UP; weight=100/200", true, false),
        ("UP; weight=0/0", true, false),
        ("UP", true, false),
        ("NOLB; weight=100/100", true, false),
        ("DOWN; weight=100/100", false, false),
        ("DOWN 1/2; weight=100/100", false, false),
        ("no check; weight=100/100", nil, false),
    ])
    func rotation(header: String, inRotation: Bool?, onlyUsable: Bool) throws {
        let state = try #require(HAProxyServerState(header: header[...]))
        #expect(state.inRotation == inRotation)
        #expect(state.isOnlyUsableServer == onlyUsable)
    }
}
