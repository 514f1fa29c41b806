#if canImport(Glibc)
import Glibc
#endif

/// Asks every peer for its ``NodePosition`` at once: one non-blocking libpq
/// connection each, all driven by one `poll()` loop, so the slowest peer
/// costs its own wait and never the sum of all waits. A peer's host name is
/// looked up first on a thread of its own (``HostLookup``), waited for in
/// the same loop, because libpq would resolve it synchronously and a
/// nameserver that never answers would hold the check. A peer not done by
/// `deadline` is reported as timed out in the phase it was in.
enum PeerProbe {
    /// `statement`: ``Statement/position``, or one that adds to it
    /// (``ProbeDepth/peerStatement``).
    static func ask(_ peers: [PeerAddress], settings: ConnectionSettings, asking statement: Statement = .position,
                    before deadline: Deadline) -> [PeerReport] {
        var reports = peers.map { PeerReport(peer: $0, outcome: .failure(.timedOut(phase: .resolving))) }
        var inquiries: [Inquiry] = []
        var lookups: [(index: Int, lookup: HostLookup)] = []
        func connect(_ index: Int, at addresses: [String] = []) {
            do {
                inquiries.append(Inquiry(index: index, statement: statement,
                                         connection: try PostgresConnection.start(settings.reaching(peers[index], at: addresses))))
            } catch {
                reports[index].outcome = .failure(error)
            }
        }
        for (index, peer) in peers.enumerated() {
            if !HostLookup.isNeeded(for: peer.host) {
                connect(index)
            } else if let lookup = HostLookup(peer.host) {
                lookups.append((index, lookup))
            } else {
                reports[index].outcome = .failure(.noResponse(detail: "could not start looking up \(peer.host): \(Errno.current)"))
            }
        }
        while true {
            for inquiry in inquiries where inquiry.outcome == nil && inquiry.connection.socket < 0 {
                inquiry.outcome = .failure(.noResponse(detail: "libpq has no socket"))
            }
            let active = inquiries.filter { $0.outcome == nil }
            if active.isEmpty, lookups.isEmpty { break }
            var descriptors = lookups.map { pollfd(fd: $0.lookup.descriptor, events: Int16(POLLIN), revents: 0) }
                + active.map { pollfd(fd: $0.connection.socket, events: $0.events, revents: 0) }
            guard deadline.remaining().value > 0 else { break }
            let ready = POSIX.retryingInterrupted { poll(&descriptors, nfds_t(descriptors.count), Int32(deadline.remaining().value)) }
            if ready < 0 {
                let detail = "poll failed while asking the peers: errno \(errno)"
                active.forEach { $0.outcome = .failure(.noResponse(detail: detail)) }
                lookups.forEach { reports[$0.index].outcome = .failure(.noResponse(detail: detail)) }
                lookups = []
                break
            }
            for (inquiry, descriptor) in zip(active, descriptors.dropFirst(lookups.count)) where descriptor.revents != 0 {
                inquiry.advance(readable: descriptor.revents & Int16(POLLIN) != 0)
            }
            let finished = zip(lookups, descriptors).filter { $0.1.revents != 0 }.map(\.0)
            lookups.removeAll { pending in finished.contains { $0.lookup === pending.lookup } }
            for (index, lookup) in finished {
                switch lookup.addresses() {
                case .success(let addresses): connect(index, at: addresses)
                case .failure(let failure): reports[index].outcome = .failure(failure)
                }
            }
        }
        // Lookups still running stay reported as timed out while resolving.
        for inquiry in inquiries {
            reports[inquiry.index].outcome = inquiry.outcome ?? .failure(.timedOut(phase: inquiry.phase))
        }
        return reports
    }

    /// One peer's connection and how far it has got.
    private final class Inquiry {
        enum Stage {
            case connecting(events: Int16)
            case sending
            case receiving
        }

        let index: Int
        let statement: Statement
        let connection: PostgresConnection
        var stage = Stage.connecting(events: Int16(POLLOUT))
        var outcome: Result<NodePosition, ProbeFailure>?
        var results: QueryResults

        init(index: Int, statement: Statement, connection: consuming PostgresConnection) {
            self.index = index
            self.statement = statement
            results = QueryResults(statement: statement)
            self.connection = connection
        }

        var events: Int16 {
            switch stage {
            case .connecting(let events): events
            case .sending: Int16(POLLIN | POLLOUT)
            case .receiving: Int16(POLLIN)
            }
        }

        var phase: CheckPhase {
            switch stage {
            case .connecting: connection.loginPhase
            case .sending, .receiving: .querying
            }
        }

        private func finishIfAnswered() throws(ProbeFailure) {
            if connection.takeResults(into: &results) {
                outcome = .success(try NodePosition(row: try results.firstRow()))
            }
        }

        /// One step, after `poll()` said the socket is ready.
        func advance(readable: Bool) {
            do throws(ProbeFailure) {
                switch stage {
                case .connecting:
                    if let events = try connection.continueConnecting() {
                        stage = .connecting(events: events)
                    } else {
                        try connection.send(statement)
                        stage = .sending
                    }
                case .sending:
                    guard try connection.flush(readable: readable, answering: statement) else { return }
                    stage = .receiving
                    // The answer may have been taken in while flushing.
                    try finishIfAnswered()
                case .receiving:
                    try connection.receive(answering: statement)
                    try finishIfAnswered()
                }
            } catch {
                outcome = .failure(error)
            }
        }
    }
}
