/// The answer to one check: the HTTP status, the body's text and the exit status.
///
/// This is the only place that maps a node's state to an answer:
///
/// | probe outcome                     | HTTP                        | body            | exit |
/// |-----------------------------------|-----------------------------|-----------------|------|
/// | connected, not in recovery        | 200 OK                      | `primary`       | 0    |
/// | connected, in recovery            | 206 Partial Content         | `standby`       | 1    |
/// | any ``ProbeFailure``              | 503 Service Unavailable     | its ``ProbeFailure/reason`` | 2 |
///
/// HAProxy's read-write listener expects 200 and its read-only listener 206, so
/// a node that cannot prove its role is taken out of both.
public struct Verdict: Equatable, Sendable {
    public var status: HTTPStatus
    public var body: String
    public var exitStatus: Int32

    public init(status: HTTPStatus, body: String, exitStatus: Int32) {
        self.status = status
        self.body = body
        self.exitStatus = exitStatus
    }

    /// Exit status for a bad command line (`EX_USAGE` from sysexits.h), never a health state.
    public static let usageExitStatus: Int32 = 64

    /// The answer for a probe that finished, either way.
    public init(_ outcome: Result<NodeState, ProbeFailure>) {
        switch outcome {
        case .success(let state) where state.inRecovery:
            self.init(status: .partialContent, body: "standby", exitStatus: 1)
        case .success:
            self.init(status: .ok, body: "primary", exitStatus: 0)
        case .failure(let failure):
            self.init(unavailable: failure.reason)
        }
    }

    /// A 503 with `reason` as its body.
    public init(unavailable reason: String) {
        self.init(status: .serviceUnavailable, body: reason, exitStatus: 2)
    }
}
