/// What an HTTP answer's body holds.
enum BodyFormat: Sendable {
    /// The verdict's line: the role, or why not.
    case text
    /// The JSON status document (``StatusDocument``).
    case json
    /// Prometheus's text exposition format (``MetricsDocument``).
    case prometheus
    /// The cluster view as JSON (``ClusterDocument``).
    case cluster

    /// The format an endpoint answers in unless the request asks otherwise.
    init(for endpoint: Endpoint) {
        switch endpoint {
        case .status: self = .json
        case .metrics: self = .prometheus
        case .cluster: self = .cluster
        default: self = .text
        }
    }
}

/// What a check asks: which question, with which limits, in which form.
struct CheckRequest: Equatable, Sendable {
    /// The question: which role or condition to answer for.
    var endpoint: Endpoint = .role
    /// The limits a standby must meet to count as serving.
    var requirements = StandbyRequirements()
    /// HEAD: the same status and headers, no body.
    var omitsBody = false
    /// What the body holds: the verdict's line, the JSON status document
    /// (`Accept: application/json`, or `/status`), or Prometheus metrics.
    var format = BodyFormat.text
    /// The agent's `maxconn=auto` and its parameters; nil when not asked.
    var maxconn: MaxconnRequest?

    /// The request's limits with `replication_state=streaming` added: a
    /// standby that is not streaming is neither ready nor in the primary's
    /// synchronous set.
    var streamingRequirements: StandbyRequirements {
        var streaming = requirements
        streaming.requiresStreaming = true
        return streaming
    }
    /// HAProxy's view of this server (`http-check send-state`), which picks
    /// the limit or its rejoin threshold; nil without the header.
    var serverState: HAProxyServerState?
    /// An `X-Haproxy-Server-State` value that did not parse, for the
    /// diagnostics: the check answers as if the header were absent, since a
    /// 400 would take a healthy server DOWN over a header HAProxy itself sent.
    var unreadServerState: String?

    /// Whether answering needs more than the role: a JSON document, or a
    /// standby limit on an endpoint that checks standby limits; the
    /// connection slots as well for the agent's `maxconn`.
    var depth: ProbeDepth {
        switch endpoint {
        case _ where maxconn != nil:
            .connectionSlots
        case .status, .metrics, .readiness:
            .replication
        case .synchronous, .asynchronous:
            .synchrony
        case .cluster:
            .cluster
        case .role, .replica, .readOnly:
            format != .text || requirements.limitsAnything ? .replication : .role
        case .primary, .health, .liveness:
            format != .text ? .replication : .role
        }
    }
}

extension CheckRequest {
    /// Parses a request target such as `/replica?lag=16MB&replication_state=streaming`
    /// on top of `defaults` (the command line's and environment's limits).
    ///
    /// The absolute form (`http://db1:23267/replica`) is read as its path and
    /// query (RFC 9112, section 3.2.2). Path, names and values are
    /// percent-decoded once, after splitting, so `%26` never splits a query.
    /// A value that does not parse is an error naming the parameter: a typo
    /// must never switch a check off.
    static func parse(target: String, defaults: StandbyRequirements) throws(RequestError) -> CheckRequest {
        let origin = originForm(of: target)
        let pathEnd = origin.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? origin.endIndex
        let path = try decoded(origin[..<pathEnd])
        guard let endpoint = Endpoint(path: path) else {
            throw .unknownEndpoint(path: path)
        }
        var query = Substring()
        if pathEnd < origin.endIndex, origin[pathEnd] == "?" {
            query = origin[origin.index(after: pathEnd)...].prefix { $0 != "#" }
        }
        return try CheckRequest(endpoint: endpoint, query: query, defaults: defaults)
    }

    /// A request for `endpoint` with the limits `query` (`lag=16MB&...`) sets
    /// on top of `defaults`; the agent's `agent-send` line is such a query,
    /// and only it may ask for `maxconn` (`acceptsMaxconn`).
    init(endpoint: Endpoint, query: Substring, defaults: StandbyRequirements, acceptsMaxconn: Bool = false) throws(RequestError) {
        self.init(endpoint: endpoint, requirements: defaults, format: BodyFormat(for: endpoint))
        var seen: [String] = []
        var maxconnParameters: [(name: String, value: String)] = []
        for pair in query.split(separator: "&") {
            let rawName = pair.prefix { $0 != "=" }
            let name = try Self.decoded(rawName)
            let value = try Self.decoded(pair.dropFirst(rawName.count + 1))
            guard !seen.contains(name) else {
                throw .repeatedParameter(name: name)
            }
            seen.append(name)
            if acceptsMaxconn, MaxconnRequest.parameters.contains(name) {
                maxconnParameters.append((name, value))
            } else {
                try requirements.apply(parameter: name, value: value)
            }
        }
        maxconn = try MaxconnRequest.parse(maxconnParameters)
    }

    /// `/replica?lag=1` from `http://host:port/replica?lag=1`; any other target as it is.
    private static func originForm(of target: String) -> Substring {
        let scheme = target.prefix { $0 != ":" }
        guard scheme.count < target.count, ["http", "https"].contains(scheme.lowercased()),
              target.dropFirst(scheme.count).hasPrefix("://")
        else { return Substring(target) }
        let authorityAndRest = target.dropFirst(scheme.count + 3)
        let rest = authorityAndRest.drop { $0 != "/" && $0 != "?" && $0 != "#" }
        return rest.first == "/" ? rest : "/" + rest
    }

    private static func decoded(_ text: Substring) throws(RequestError) -> String {
        guard let decoded = Text.percentDecoded(text) else { throw .invalidPercentEncoding(text: String(text)) }
        return decoded
    }
}
