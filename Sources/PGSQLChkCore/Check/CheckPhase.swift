/// What a check is doing, so that a timeout names the step that was really
/// running, whether a poll loop or the backstop notices it.
enum CheckPhase: String, CaseIterable, Sendable {
    /// Waiting for the asker's request.
    case readingRequest = "waiting for the request"
    /// Waiting for the check that holds the result cache's lock to finish
    /// its probe (``ResultCache``).
    case awaitingSharedProbe = "waiting for another check's probe"
    /// The host name lookup: the local node's in libpq's synchronous start
    /// (with the service and password files), which no poll loop can
    /// interrupt; a peer's on a thread of its own (``HostLookup``), which
    /// the peers' poll loop waits for and abandons at its deadline.
    case resolving = "looking up the server's host name"
    /// Waiting for the TCP or unix-socket connection.
    case connecting = "connecting"
    /// Authentication and the server's start-up messages.
    case loggingIn = "logging in"
    /// The role or replication statement's round trip.
    case querying = "querying"
    /// The questions to the peers: a primary's for the stale-primary guard, a
    /// standby's for `/synchronous` and `/asynchronous`.
    case askingPeers = "asking the peers"
}
