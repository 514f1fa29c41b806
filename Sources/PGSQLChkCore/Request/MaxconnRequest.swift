/// What an `agent-send` line asks of the `maxconn` the agent advertises
/// (``ConnectionSlots/maxconn(for:)``): `maxconn=auto` adds it to the usual
/// reply, `maxconn=only` makes it the whole reply; `maxconn_role=app` caps
/// it by that role's CONNECTION LIMIT, `check_slots=N` keeps N slots for the
/// checks instead of the check role's own CONNECTION LIMIT.
struct MaxconnRequest: Equatable, Sendable {
    /// `maxconn=only`: the reply is `maxconn:N` alone, or an empty line,
    /// which HAProxy 2.6 takes as "no status change" (measured): the HTTP
    /// check alone decides UP and DOWN, with its `fall`. The agent's `down`
    /// would take the server DOWN at the first failed probe.
    var alone = false
    /// `maxconn_role=`: the role HAProxy's clients log in as.
    var clientRole: String?
    /// `check_slots=`: the slots kept free for the checks; nil keeps the
    /// check role's CONNECTION LIMIT.
    var checkSlots: Int?
    /// The address of the HAProxy that asks, at the other end of the check
    /// connection: its own sessions are what the value limits, so they are
    /// not subtracted.
    var askerAddress: String?

    /// The agent-send parameters that ask for `maxconn`.
    static let parameters = ["maxconn", "maxconn_role", "check_slots"]

    /// The request that `parameters` (name and value, each once, all among
    /// ``parameters``) make; nil when there are none. The others need
    /// `maxconn=`, so that a line without it never half-asks.
    static func parse(_ parameters: [(name: String, value: String)]) throws(RequestError) -> MaxconnRequest? {
        guard !parameters.isEmpty else { return nil }
        var request = MaxconnRequest()
        var switchedOn = false
        for (name, value) in parameters {
            switch name {
            case "maxconn":
                guard value == "auto" || value == "only" else {
                    throw .invalidValue(parameter: name, value: value, expected: "expected auto or only")
                }
                request.alone = value == "only"
                switchedOn = true
            case "maxconn_role":
                guard !value.isEmpty else { throw .invalidValue(parameter: name, value: value, expected: "expected a role name") }
                request.clientRole = value
            default:
                guard let slots = Int(value), slots >= 0 else {
                    throw .invalidValue(parameter: name, value: value, expected: "expected a number of connections such as 5")
                }
                request.checkSlots = slots
            }
        }
        guard switchedOn else {
            let (name, value) = parameters[0]
            throw .invalidValue(parameter: name, value: value, expected: "only with maxconn=auto or maxconn=only")
        }
        return request
    }
}
