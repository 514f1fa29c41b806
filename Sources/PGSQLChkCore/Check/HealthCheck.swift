#if canImport(Glibc)
import Glibc
#endif

/// Who the answer is for, decided once per process from stdin.
enum Mode: Equatable, Sendable {
    /// A super-server handed over a check connection: read its request,
    /// answer in its dialect, close cleanly.
    case checkConnection
    /// An admin ran the check: nothing is read, and the answer is printed as
    /// `--output` asks.
    case byHand(OutputFormat)

    /// The bytes that give `verdict` to the asker of `request`: the dialect's
    /// for a check connection (and for `--output http` by hand); a summary
    /// line or JSON by hand.
    func render(_ verdict: Verdict, for request: CheckRequest, in dialect: Dialect) -> [UInt8] {
        switch self {
        case .checkConnection, .byHand(.http): dialect.render(verdict, for: request)
        case .byHand(.summary): Array((StatusDocument.summary(of: verdict) + "\n").utf8)
        case .byHand(.json): Array((StatusDocument.json(of: verdict) + "\n").utf8)
        case .byHand(.cluster): Array(ClusterDocument.table(of: verdict).utf8)
        case .byHand(.none): []
        }
    }
}

/// One check, from the request to the last byte written: the same pipeline
/// for HTTP and the agent, which differ only in their ``Dialect``. The
/// connection, the backstop's timer and the probers are its seams: standard
/// input and output, `SIGALRM` and the servers in production, scripted ones
/// in unit tests. They are existentials, not generic parameters: a generic
/// check's type is built at run time, and checking its three conformances
/// there cost 210,000 instructions a check (callgrind), where the few calls
/// through the existentials cost nothing measurable.
struct HealthCheck {
    /// The part of the deadline kept for writing the answer: the probe gives
    /// up this much earlier, so that its own timeout answer, which names the
    /// phase, is written before the backstop fires.
    static let answerReserve = Milliseconds(10)

    let configuration: Configuration
    let mode: Mode
    let diagnostics: Diagnostics
    /// The whole check's budget, from the process's start.
    let deadline: Deadline
    var connection: any CheckConnection = StandardStreams()
    var alarm: any BackstopAlarm = SignalAlarm()
    var probers: any CheckProbers = LiveProbers()

    /// How long a request may take to arrive: all of the deadline but the
    /// third kept for the probe. A request is never answered as another
    /// question because it came late (one lost segment costs 200 ms or more);
    /// an asker that sends nothing gets the answer to ``Configuration/question``
    /// when this passes, or at once when it closes its side.
    var requestWaitEnd: Deadline {
        deadline.earlier(by: Milliseconds(configuration.timeout.value / 3))
    }

    var probeDeadline: Deadline {
        deadline.earlier(by: min(Self.answerReserve, Milliseconds(configuration.timeout.value / 10)))
    }

    /// When the guard stops waiting for its peers: half the check's budget
    /// after the local probe answered, never past ``probeDeadline``. A peer
    /// that hangs costs at most that share, and is reported as timed out; the
    /// local answer keeps the rest.
    var peersDeadline: Deadline {
        min(probeDeadline, Deadline(after: Milliseconds(configuration.timeout.value / 2)))
    }

    /// Whether the check of `request` runs the stale-primary guard and asks
    /// its peers (`--peers`): the guard on a primary, `/synchronous` and
    /// `/asynchronous` on a standby. Only where the answer depends on them:
    /// a primary's routing answers, which the guard can refuse, and `/status`
    /// and `/metrics`, which report it; `/cluster` and `-o cluster`, which
    /// show every peer. `/health`, `/liveness` and
    /// `/replica` answer the same whatever the peers say (a primary's
    /// `/replica` is 503 anyway), so they never wait for a peer.
    func asksPeers(_ request: CheckRequest) -> Bool {
        guard !configuration.peers.isEmpty else { return false }
        if mode == .byHand(.cluster) { return true }
        switch request.endpoint {
        case .role, .primary, .readOnly, .readiness, .synchronous, .asynchronous, .status, .metrics, .cluster: return true
        case .replica, .health, .liveness: return false
        }
    }

    /// The configuration `request` is probed with: without the peers when
    /// it does not ask them, so that its probe (and its result cache entry)
    /// is an unguarded one.
    private func probeConfiguration(for request: CheckRequest) -> Configuration {
        var probed = configuration
        if !asksPeers(request) { probed.peers = [] }
        return probed
    }

    /// Runs the check and returns the exit status.
    func run() -> Int32 {
        let drain = DrainState.read(path: configuration.maintenanceFile, report: diagnostics.report)
        let dialect = configuration.dialect
        var request = dialect.question(configured: configuration.question, defaults: configuration.requirements)
        var backstop = Backstop(alarm: alarm, mode: mode, dialect: dialect, drain: drain)
        // A check connection's backstop answers the configured question while
        // the request is read, then learns the request; by hand the question
        // is the request, and the backstop is armed once it knows its phases.
        if mode == .checkConnection {
            reportUnarmed(backstop.arm(at: deadline, answering: request, in: [.readingRequest]))
            let received = connection.readRequest(before: requestWaitEnd, isComplete: dialect.isComplete)
            do {
                if let asked = try dialect.request(from: received, defaults: configuration.requirements) { request = asked }
                if let unread = request.unreadServerState {
                    diagnostics.report("ignored \(HAProxyServerState.headerName) \(Text.quoted(unread)): not HAProxy's send-state format")
                }
            } catch {
                diagnostics.report("refused request: \(error.reason)")
                send(dialect.render(refusing: error, sent: received.bytes))
                return ExitCode.refused.rawValue
            }
        }
        // The agent's maxconn counts the asking HAProxy's own sessions back
        // in (ConnectionSlots): they are known by its address.
        request.maxconn?.askerAddress = connection.askerAddress()
        let cache = ProbeCache(configuration: probeConfiguration(for: request), mode: mode, report: diagnostics.report)
        // A check that shares the cache holds only the answer of waiting for
        // it: most are hits, which never enter the probe's phases, so those
        // answers are rendered when a probe starts.
        let sharing = cache.shares(depth(for: request))
        let phases = sharing ? [.awaitingSharedProbe] : probePhases(of: request)
        if mode == .checkConnection {
            backstop.learn(request, phases: phases)
        } else {
            reportUnarmed(backstop.arm(at: deadline, answering: request, in: phases))
        }
        let probed = probers.outcome(through: cache, depth: depth(for: request), maxconn: request.maxconn, before: probeDeadline) {
            if sharing { backstop.learn(request, phases: probePhases(of: request)) }
            return probe(for: request, backstop: backstop)
        }
        let outcome = probed.outcome
        var guardReport: GuardReport?
        var synchrony: Synchrony?
        switch outcome {
        case .failure(let failure):
            diagnostics.report("\(failure.reason): \(failure.detail)")
        case .success(let state) where asksPeers(request):
            guardReport = StalePrimaryGuard.review(state, stateDirectory: configuration.stateDirectory, quorum: configuration.quorum,
                                                   report: diagnostics.report)
            // Only the primary knows which standbys it waits for.
            if state.inRecovery, request.endpoint.asksPrimary {
                synchrony = Synchrony.find(identity: state.identity, timeline: state.timeline, peers: state.peers ?? [])
            }
        case .success:
            break
        }
        var verdict = Verdict(for: request, outcome: outcome, drain: drain, guardReport: guardReport, synchrony: synchrony)
        verdict.probeDuration = probed.probeDuration
        verdict.age = probed.age
        // A standby that misses its limits, or is kept past them, is news; a
        // role that simply does not match the endpoint (/primary on a standby)
        // is every check's answer.
        switch verdict.standing {
        case .kept(let why)?, .fails(let why, _)?: diagnostics.report("\(request.endpoint.rawValue): \(why)")
        case .meets?, nil: break
        }
        if case .withheld(let reason)? = verdict.maxconn, verdict.state != nil {
            diagnostics.report("maxconn left out: \(reason)")
        }
        send(mode.render(verdict, for: request, in: dialect))
        return verdict.exitStatus.rawValue
    }

    /// The phases the probe of `request` may enter, in order: the backstop
    /// holds an answer for each.
    private func probePhases(of request: CheckRequest) -> [CheckPhase] {
        [.resolving, .connecting, .loggingIn, .querying] + (asksPeers(request) ? [.askingPeers] : [])
    }

    private func reportUnarmed(_ armed: Bool) {
        if !armed { diagnostics.report("could not arm the deadline's backstop: \(Errno.current)") }
    }

    /// The local probe and, when the answer needs them, the peers' answers:
    /// a primary's for the stale-primary guard, a standby's for
    /// `/synchronous` and `/asynchronous`. One outcome, so that the result
    /// cache shares both, and fifty HAProxies cost the peers one round each.
    private func probe(for request: CheckRequest, backstop: Backstop) -> Result<NodeState, ProbeFailure> {
        let local = probers.probeNode(configuration.connection, depth: depth(for: request), maxconn: request.maxconn,
                                      position: asksPeers(request), before: probeDeadline, entering: backstop.enter)
        guard asksPeers(request), case .success(var state) = local,
              !state.inRecovery || [.synchrony, .cluster].contains(depth(for: request)) else { return local }
        backstop.enter(.askingPeers)
        state.peers = probers.askPeers(configuration.peers, settings: configuration.connection,
                                       asking: depth(for: request).peerStatement, before: peersDeadline)
        return .success(state)
    }

    /// A hand run that prints a summary or JSON wants every signal, and
    /// `-o cluster` the cluster view; otherwise the request decides.
    func depth(for request: CheckRequest) -> ProbeDepth {
        switch mode {
        case .byHand(.cluster): .cluster
        case .byHand(.summary), .byHand(.json): request.depth == .synchrony ? .synchrony : .replication
        case .checkConnection, .byHand(.http), .byHand(.none): request.depth
        }
    }

    /// Writes the answer, the backstop disarmed first so that the asker never
    /// gets two; a check connection is then closed cleanly.
    func send(_ bytes: [UInt8]) {
        alarm.disarm()
        do {
            try connection.send(bytes, finishing: mode == .checkConnection)
        } catch {
            diagnostics.report("could not write the answer: \(error)")
        }
    }
}
