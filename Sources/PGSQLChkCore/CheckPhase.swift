/// What a check is doing, so that a timeout names the step that was really
/// running, whether a poll loop or the backstop notices it.
enum CheckPhase: String, CaseIterable, Sendable {
    /// Waiting for the peer's request.
    case readingRequest = "waiting for the request"
    /// libpq's synchronous start: the host name lookup (and the service and
    /// password files), which no poll loop can interrupt.
    case resolving = "looking up the server's host name"
    /// Waiting for the TCP or unix-socket connection.
    case connecting = "connecting"
    /// Authentication and the server's start-up messages.
    case loggingIn = "logging in"
    /// The role or replication statement's round trip.
    case querying = "querying"
    /// The stale-primary guard's questions to the peers (a primary with `--peers`).
    case askingPeers = "asking the peers"
}
