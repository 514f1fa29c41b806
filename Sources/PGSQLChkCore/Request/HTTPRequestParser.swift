/// Reads the HTTP request head HAProxy (or curl, or a person with nc) sent.
enum HTTPRequestParser {
    /// Whether `bytes` hold a whole HTTP request head: a blank line (CRLF CRLF,
    /// or bare LF LF from hand-typed requests) after the request line. Empty
    /// lines before the request line do not count (RFC 9112, section 2.2).
    static func isHeadComplete(_ bytes: [UInt8]) -> Bool {
        let carriageReturn: UInt8 = 13, lineFeed: UInt8 = 10
        var previousLineFeed = false
        var requestLineStarted = false
        for byte in bytes where byte != carriageReturn {
            if byte == lineFeed {
                if previousLineFeed, requestLineStarted { return true }
                previousLineFeed = true
            } else {
                previousLineFeed = false
                requestLineStarted = true
            }
        }
        return false
    }

    /// Parses what the asker sent into a ``CheckRequest``, with `defaults` as the limits.
    ///
    /// Returns nil when nothing was sent at all: the caller answers its own
    /// question, so plain TCP probes keep working. Anything else must be one
    /// HTTP/1.x request line (`GET`, `HEAD` or `OPTIONS`), then well-formed
    /// header lines, ended by a blank line unless the asker closed its side
    /// after the request line, all in ASCII. `X-Haproxy-Server-State`
    /// (``HAProxyServerState``) is read when it parses, and otherwise, a
    /// value with non-ASCII bytes too, kept aside as
    /// ``CheckRequest/unreadServerState``, never refused: HAProxy would mark
    /// the server DOWN for a 400 caused by its own header (a server name it
    /// copies byte for byte).
    static func parse(_ received: ReceivedRequest, defaults: StandbyRequirements) throws(RequestError) -> CheckRequest? {
        var head = received.bytes[...]
        // One empty line before the request line is tolerated (RFC 9112, section 2.2).
        if head.starts(with: [13, 10]) { head = head.dropFirst(2) } else if head.first == 10 { head = head.dropFirst() }
        guard !head.isEmpty else {
            if received.end == .waitEnded || received.end == .askerClosed, received.bytes.isEmpty { return nil }
            throw received.end == .waitEnded ? .requestTimeout : .incompleteRequestLine
        }
        guard isASCII(head) else { throw .notASCII }
        switch received.end {
        case .complete, .askerClosed:
            break
        case .limitReached:
            throw .headTooLarge
        case .waitEnded:
            throw .requestTimeout
        }
        // Split bytes, not Characters: CR LF is a single Character in Swift.
        let lines = head.split(separator: 10, omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == 13 ? $0.dropLast() : $0, as: UTF8.self) }
        guard lines.count > 1 else { throw .incompleteRequestLine }
        let requestLine = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2] == "HTTP/1.1" || requestLine[2] == "HTTP/1.0" else {
            throw .malformedRequestLine
        }
        let method = requestLine[0]
        guard ["GET", "HEAD", "OPTIONS"].contains(method) else {
            throw .methodNotAllowed(method: String(method))
        }
        let target = method == "OPTIONS" && requestLine[1] == "*" ? "/" : String(requestLine[1])
        var request = try CheckRequest.parse(target: target, defaults: defaults)
        request.omitsBody = method == "HEAD"
        var serverStates: [Substring] = []
        for line in lines.dropFirst() {
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line[..<colon].contains(" ") else {
                throw .malformedHeader
            }
            let name = line[..<colon].lowercased()
            var value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            if request.format == .text, name == "accept", value.lowercased().containsText("application/json") {
                request.format = .json
            }
            if name == HAProxyServerState.headerName.lowercased() { serverStates.append(value) }
        }
        // HAProxy sends the header once; two are no answer to "which state".
        if let value = serverStates.first {
            if serverStates.count == 1, value.utf8.allSatisfy({ $0 < 0x80 }), let state = HAProxyServerState(header: value) {
                request.serverState = state
            } else {
                request.unreadServerState = serverStates.joined(separator: ", ")
            }
        }
        return request
    }

    /// Whether every line of `head` is ASCII, but for the value of an
    /// `X-Haproxy-Server-State` header line (its name is ASCII, and after the
    /// request line), which ``parse(_:defaults:)`` sets aside instead.
    private static func isASCII(_ head: ArraySlice<UInt8>) -> Bool {
        let name = HAProxyServerState.headerName.lowercased() + ":"
        return head.split(separator: 10, omittingEmptySubsequences: false).enumerated().allSatisfy { index, line in
            line.allSatisfy { $0 < 0x80 }
                || index > 0 && String(decoding: line.prefix(name.utf8.count), as: UTF8.self).lowercased() == name
        }
    }
}
