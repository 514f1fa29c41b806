/// Where a check's knowledge of the nodes comes from: the local probe, the
/// peers, and the result cache that shares them. ``LiveProbers`` asks the
/// servers; unit tests drive ``HealthCheck`` with answers of their own.
protocol CheckProbers {
    /// The local node's state (``RoleProbe/run(_:depth:maxconn:position:before:entering:)``);
    /// `entering` hears of each phase as it starts.
    func probeNode(_ settings: ConnectionSettings, depth: ProbeDepth, maxconn: MaxconnRequest?, position: Bool,
                   before deadline: Deadline, entering: (CheckPhase) -> Void) -> Result<NodeState, ProbeFailure>
    /// The peers' answers (``PeerProbe/ask(_:settings:asking:before:)``).
    func askPeers(_ peers: [PeerAddress], settings: ConnectionSettings, asking statement: Statement, before deadline: Deadline) -> [PeerReport]
    /// The outcome through `cache` (``ProbeCache/outcome(depth:maxconn:before:probe:)``),
    /// which calls `probe` only when no fresh entry answers.
    func outcome(through cache: ProbeCache, depth: ProbeDepth, maxconn: MaxconnRequest?, before deadline: Deadline,
                 probe: () -> Result<NodeState, ProbeFailure>) -> ResultCache.Answer
}

/// The servers themselves, and the result cache on disk.
struct LiveProbers: CheckProbers {
    func probeNode(_ settings: ConnectionSettings, depth: ProbeDepth, maxconn: MaxconnRequest?, position: Bool,
                   before deadline: Deadline, entering: (CheckPhase) -> Void) -> Result<NodeState, ProbeFailure> {
        RoleProbe.run(settings, depth: depth, maxconn: maxconn, position: position, before: deadline, entering: entering)
    }

    func askPeers(_ peers: [PeerAddress], settings: ConnectionSettings, asking statement: Statement, before deadline: Deadline) -> [PeerReport] {
        PeerProbe.ask(peers, settings: settings, asking: statement, before: deadline)
    }

    func outcome(through cache: ProbeCache, depth: ProbeDepth, maxconn: MaxconnRequest?, before deadline: Deadline,
                 probe: () -> Result<NodeState, ProbeFailure>) -> ResultCache.Answer {
        cache.outcome(depth: depth, maxconn: maxconn, before: deadline, probe: probe)
    }
}
