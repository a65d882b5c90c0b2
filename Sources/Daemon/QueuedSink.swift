import CShims
import Classifier
import Glibc
import LogFormats
import Pipeline
import Synchronization
import SystemSupport
import Threads

/// Runs a sink on its own thread: ingest workers hand matched requests over and go back to
/// reading, and the incident work (de-duplication, policy, context, the record's JSON) runs
/// on another core. Order is kept (one queue, one consumer). The queue is bounded: when the
/// incident thread falls behind by `bound` requests, workers wait, so lines back up into the
/// sockets as they do when classification falls behind; nothing is dropped. The thread
/// looks for work every 5 ms, which adds at most that to an incident's latency.
///
/// A worker copies a match's bytes (client, user, host, URL, method) and hits into the
/// queue's buffers and allocates nothing: the Strings are made on the incident thread,
/// which also frees them, so memory does not pass between threads per match, and no
/// shared object's reference count is touched per match.
public final class QueuedSink: MatchSink, @unchecked Sendable {
    /// One queued item; byte ranges index `Batch.bytes`, a negative length is nil.
    struct Entry {
        enum Kind: UInt8 { case match, lease, request, verdict }
        var kind: Kind
        var action: ProxyAction = .unknown
        var format: LogFormat = .squid
        var lists: UInt16 = 0
        var source: UInt16 = 0
        var time = 0.0
        var generation = 0
        var start: Int32
        var client: Int32 = -1, user: Int32 = -1, host: Int32 = -1, url: Int32 = -1, method: Int32 = -1
        var hitStart: Int32 = 0, hitCount: Int32 = 0
        /// `.request`: its index in `Batch.requests`.
        var request: Int32 = 0
    }

    /// What the workers fill and the incident thread takes in one swap.
    struct Batch {
        var entries: [Entry] = []
        var bytes: [UInt8] = []
        var hits: [Hit] = []
        /// The generations' lists and the sources named by entries (a handful per batch).
        var lists: [CompiledLists] = []
        var sources: [String] = []
        /// Requests handed over already made (`accept(_:)`).
        var requests: [MatchedRequest] = []

        mutating func clear() {
            entries.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true)
            hits.removeAll(keepingCapacity: true)
            lists.removeAll(keepingCapacity: true)
            sources.removeAll(keepingCapacity: true)
            requests.removeAll(keepingCapacity: true)
        }

        mutating func add(_ b: UnsafeRawBufferPointer?) -> Int32 {
            guard let b else { return -1 }
            bytes.append(contentsOf: b)
            return Int32(b.count)
        }

        func string(_ at: inout Int, _ count: Int32) -> String? {
            guard count >= 0 else { return nil }
            defer { at += Int(count) }
            return bytes.withUnsafeBufferPointer {
                String(decoding: UnsafeBufferPointer(rebasing: $0[at..<at + Int(count)]), as: UTF8.self)
            }
        }
    }

    let next: MatchSink
    let bound: Int
    private let state = Mutex<(batch: Batch, idle: Bool, stop: Bool)>((Batch(), false, false))
    private let wakeup = Wakeup()
    private var thread: PosixThread?

    public init(next: MatchSink, bound: Int = 65_536) {
        self.next = next
        self.bound = bound
    }

    public func start() {
        thread = PosixThread(name: "esafety-sink") { [self] in loop() }
    }

    /// A request already made (not the pipeline's path, which calls `accept(raw:)`): queued
    /// in order with the rest.
    public func accept(_ match: MatchedRequest) {
        enqueue { b in
            b.requests.append(match)
            return Entry(kind: .request, start: Int32(b.bytes.count), request: Int32(b.requests.count - 1))
        }
    }

    public func accept(raw m: borrowing RawMatch) {
        let (time, action, format, generation, lists, source) = (
            m.time, m.action, m.format, m.generation, m.lists, m.source
        )
        let (client, user, host, url, method, hits) = (m.client, m.user, m.host, m.url, m.method, m.hits)
        enqueue { b in
            var e = Entry(
                kind: .match,
                action: action,
                format: format,
                time: time,
                generation: generation,
                start: Int32(b.bytes.count)
            )
            e.client = b.add(client)
            e.user = b.add(user)
            e.host = b.add(host)
            e.url = b.add(url)
            e.method = b.add(method)
            e.hitStart = Int32(b.hits.count)
            e.hitCount = Int32(hits.count)
            b.hits.append(contentsOf: hits)
            if let i = b.lists.lastIndex(where: { $0 === lists }) {
                e.lists = UInt16(i)
            } else {
                e.lists = UInt16(b.lists.count)
                b.lists.append(lists)
            }
            if let i = b.sources.lastIndex(of: source) {
                e.source = UInt16(i)
            } else {
                e.source = UInt16(b.sources.count)
                b.sources.append(source)
            }
            return e
        }
    }

    public func lease(client: String, mac: String, name: String?) {
        enqueue { b in
            var e = Entry(kind: .lease, start: Int32(b.bytes.count))
            var (client, mac, name) = (client, mac, name)
            e.client = client.withUTF8 { b.add(UnsafeRawBufferPointer($0)) }
            e.user = mac.withUTF8 { b.add(UnsafeRawBufferPointer($0)) }
            if name != nil { e.host = name!.withUTF8 { b.add(UnsafeRawBufferPointer($0)) } }
            return e
        }
    }

    public func verdict(client: String, host: String, action: ProxyAction, time: Double) {
        enqueue { b in
            var e = Entry(kind: .verdict, action: action, time: time, start: Int32(b.bytes.count))
            var (client, host) = (client, host)
            e.client = client.withUTF8 { b.add(UnsafeRawBufferPointer($0)) }
            e.host = host.withUTF8 { b.add(UnsafeRawBufferPointer($0)) }
            return e
        }
    }

    private func enqueue(_ make: (inout Batch) -> Entry) {
        while true {
            let (accepted, wake) = state.withLock { s -> (Bool, Bool) in
                guard s.batch.entries.count < bound || s.stop else { return (false, false) }
                s.batch.entries.append(make(&s.batch))
                // No wake-up per request (a system call and a context switch each): the
                // incident thread looks every 5 ms, and is woken only when work piles up.
                guard s.idle, s.batch.entries.count >= 4096 else { return (true, false) }
                s.idle = false
                return (true, true)
            }
            if wake { wakeup.signal() }
            if accepted { return }
            usleep(200)  // the incident thread is behind: wait, never drop
        }
    }

    /// Hands over everything queued, then stops the thread.
    public func stop() {
        state.withLock { $0.stop = true }
        wakeup.signal()
        thread?.join()
    }

    private func loop() {
        // Two batches take turns: the workers fill one while this thread empties the other.
        var batch = Batch()
        while true {
            let stop = state.withLock { s -> Bool in
                swap(&batch, &s.batch)
                if batch.entries.isEmpty { s.idle = true }
                return s.stop
            }
            if batch.entries.isEmpty {
                if stop { break }
                wakeup.wait(milliseconds: 5)
                wakeup.drain()
                continue
            }
            for e in batch.entries {
                var at = Int(e.start)
                let client = batch.string(&at, e.client) ?? ""
                switch e.kind {
                case .request:
                    next.accept(batch.requests[Int(e.request)])
                case .verdict:
                    let host = batch.string(&at, e.host) ?? ""
                    next.verdict(client: client, host: host, action: e.action, time: e.time)
                case .lease:
                    let mac = batch.string(&at, e.user) ?? ""
                    next.lease(client: client, mac: mac, name: batch.string(&at, e.host))
                case .match:
                    let user = batch.string(&at, e.user)
                    let host = batch.string(&at, e.host) ?? ""
                    let url = batch.string(&at, e.url)
                    let method = batch.string(&at, e.method)
                    let hits = batch.hits[Int(e.hitStart)..<Int(e.hitStart + e.hitCount)]
                    next.accept(
                        MatchedRequest(
                            time: e.time,
                            client: client,
                            user: user,
                            host: host,
                            url: url,
                            method: method,
                            action: e.action,
                            format: e.format,
                            source: batch.sources[Int(e.source)],
                            hits: hits,
                            lists: batch.lists[Int(e.lists)],
                            generation: e.generation
                        )
                    )
                }
            }
            batch.clear()
        }
    }
}
