import Classifier
import Glibc
import LogFormats
import Pipeline
import Synchronization
import SystemSupport

/// What the daemon has seen, for `esafety status`: counters per source, connections,
/// reloads. Workers add their counters after each batch; one lock, taken briefly.
public final class IngestStats: Sendable {
    public struct Connection: Sendable {
        public var id: Int
        public var socket: String
        public var peer: String
        var connectedAt: Double
        public var lines = 0
        public var bytes = 0
        /// Bytes waiting in the kernel's socket buffer at the last read (we are behind).
        public var queued = 0
        /// Reads in a row that filled the whole buffer.
        var fullReads = 0
    }

    public struct Reload: Sendable {
        public var at: Double
        public var ok: Bool
        public var generation: Int
        public var message: String
        public var seconds: Double
    }

    struct State {
        var sources: [String: SourceCounters] = [:]
        var connections: [Int: Connection] = [:]
        var closedConnections = 0
        var reloads: [Reload] = []
        var lastReload: Reload?
    }

    private let state = Mutex(State())
    let startedAt: Double
    /// Stream connections turned away: over `max_connections`, or out of file descriptors.
    let refusedConnections = Atomic<Int>(0)

    public init() { startedAt = Clock.now() }

    public func add(source: String, _ counters: SourceCounters) {
        state.withLock { $0.sources[source, default: SourceCounters()].add(counters) }
    }

    public func opened(_ c: Connection) { state.withLock { $0.connections[c.id] = c } }

    public func update(connection id: Int, lines: Int, bytes: Int, queued: Int, fullReads: Int) {
        state.withLock {
            guard var c = $0.connections[id] else { return }
            c.lines += lines
            c.bytes += bytes
            c.queued = queued
            c.fullReads = fullReads
            $0.connections[id] = c
        }
    }

    public func closed(connection id: Int) {
        state.withLock {
            if $0.connections.removeValue(forKey: id) != nil { $0.closedConnections += 1 }
        }
    }

    func recordReload(_ r: Reload) {
        state.withLock {
            $0.lastReload = r
            $0.reloads.append(r)
            if $0.reloads.count > 20 { $0.reloads.removeFirst($0.reloads.count - 20) }
        }
    }

    /// Everything, copied under the lock.
    public func snapshot() -> (
        sources: [String: SourceCounters], connections: [Connection], closed: Int,
        categories: [String: Int], lastReload: Reload?, reloads: [Reload]
    ) {
        let s = state.withLock { $0 }
        // Matches by category over all sources: the sum of each source's.
        var categories: [String: Int] = [:]
        for c in s.sources.values { categories.merge(c.categories, uniquingKeysWith: +) }
        return (
            s.sources, s.connections.values.sorted { $0.id < $1.id }, s.closedConnections, categories, s.lastReload,
            s.reloads
        )
    }

    var totals: SourceCounters {
        state.withLock { s in
            var t = SourceCounters()
            for c in s.sources.values { t.add(c) }
            return t
        }
    }
}
