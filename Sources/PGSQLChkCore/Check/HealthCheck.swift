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
}

/// One check, from the request to the last byte written: the same pipeline
/// for HTTP and the agent, which differ only in their ``Dialect``.
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

    /// How long a request may take to arrive: all of the deadline but the
    /// third kept for the probe. A request is never answered as another
    /// question because it came late (one lost segment costs 200 ms or more);
    /// a peer that sends nothing gets the answer to ``Configuration/question``
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
    /// and `/metrics`, which report it. `/health`, `/liveness` and
    /// `/replica` answer the same whatever the peers say (a primary's
    /// `/replica` is 503 anyway), so they never wait for a peer.
    func guarded(_ request: CheckRequest) -> Bool {
        guard !configuration.peers.isEmpty else { return false }
        switch request.endpoint {
        case .role, .primary, .readOnly, .readiness, .synchronous, .asynchronous, .status, .metrics: return true
        case .replica, .health, .liveness: return false
        }
    }

    /// The configuration `request` is probed with: without the peers when
    /// it does not ask them, so that its probe (and its result cache entry)
    /// is an unguarded one.
    private func probeConfiguration(for request: CheckRequest) -> Configuration {
        var probed = configuration
        if !guarded(request) { probed.peers = [] }
        return probed
    }

    /// Runs the check and returns the exit status.
    func run() -> Int32 {
        let drain = DrainState.read(path: configuration.maintenanceFile, report: diagnostics.report)
        let dialect = configuration.dialect
        var request = dialect.question(configured: configuration.question, defaults: configuration.requirements)
        let armed = Backstop.arm(at: deadline, answering: timeoutAnswer(to: request, drain: drain, phase: .readingRequest),
                                 exitStatus: .unavailable, finishesConnection: mode == .checkConnection)
        if !armed {
            diagnostics.report("could not arm the deadline's backstop: \(Errno.current)")
        }
        if mode == .checkConnection {
            let received = CheckPeer.readRequest(before: requestWaitEnd, isComplete: dialect.isComplete)
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
        request.maxconn?.peer = CheckPeer.peerAddress()
        let cache = ProbeCache(configuration: probeConfiguration(for: request), mode: mode, report: diagnostics.report)
        if cache.applies {
            Backstop.update(answering: timeoutAnswer(to: request, drain: drain, phase: .awaitingSharedProbe), exitStatus: .unavailable)
        }
        let probed = cache.outcome(depth: depth(for: request), maxconn: request.maxconn, before: probeDeadline) {
            probe(for: request, drain: drain)
        }
        let outcome = probed.outcome
        var guardReport: GuardReport?
        var synchrony: Synchrony?
        switch outcome {
        case .failure(let failure):
            diagnostics.report("\(failure.reason): \(failure.detail)")
        case .success(let state) where guarded(request):
            guardReport = StalePrimaryGuard.review(state, stateDirectory: configuration.stateDirectory, report: diagnostics.report)
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
        send(render(verdict, for: request))
        return verdict.exitStatus.rawValue
    }

    /// The local probe and, when the answer needs them, the peers' answers:
    /// a primary's for the stale-primary guard, a standby's for
    /// `/synchronous` and `/asynchronous`. One outcome, so that the result
    /// cache shares both, and fifty HAProxies cost the peers one round each.
    private func probe(for request: CheckRequest, drain: DrainState) -> Result<NodeState, ProbeFailure> {
        let local = RoleProbe.run(configuration.connection, depth: depth(for: request), maxconn: request.maxconn,
                                  position: guarded(request), before: probeDeadline) { phase in
            Backstop.update(answering: timeoutAnswer(to: request, drain: drain, phase: phase), exitStatus: .unavailable)
        }
        guard guarded(request), case .success(var state) = local, !state.inRecovery || depth(for: request) == .synchrony else { return local }
        Backstop.update(answering: timeoutAnswer(to: request, drain: drain, phase: .askingPeers), exitStatus: .unavailable)
        state.peers = PeerProbe.ask(configuration.peers, settings: configuration.connection,
                                    listingStandbys: depth(for: request) == .synchrony, before: peersDeadline)
        return .success(state)
    }

    /// A hand run that prints a summary or JSON wants every signal; otherwise
    /// the request decides.
    private func depth(for request: CheckRequest) -> ProbeDepth {
        switch mode {
        case .byHand(.summary), .byHand(.json): request.depth == .synchrony ? .synchrony : .replication
        case .checkConnection, .byHand(.http), .byHand(.none): request.depth
        }
    }

    /// What the backstop writes if the deadline passes during `phase`: the
    /// answer this request would get from a timeout then, drain file included.
    private func timeoutAnswer(to request: CheckRequest, drain: DrainState, phase: CheckPhase) -> [UInt8] {
        render(Verdict(for: request, outcome: .failure(.timedOut(phase: phase)), drain: drain), for: request)
    }

    /// The dialect's bytes for a check connection (and for `--output http`
    /// by hand); a summary line or JSON by hand.
    private func render(_ verdict: Verdict, for request: CheckRequest) -> [UInt8] {
        switch mode {
        case .checkConnection, .byHand(.http): configuration.dialect.render(verdict, for: request)
        case .byHand(.summary): Array((StatusDocument.summary(of: verdict) + "\n").utf8)
        case .byHand(.json): Array((StatusDocument.json(of: verdict) + "\n").utf8)
        case .byHand(.none): []
        }
    }

    private func send(_ bytes: [UInt8]) {
        HealthCheckCommand.send(bytes, finishing: mode == .checkConnection, diagnostics: diagnostics)
    }
}
