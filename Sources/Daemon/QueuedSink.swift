import Classifier
import CShims
import LogFormats
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a sink on its own thread: ingest workers hand matched requests over and go back to
/// reading, and the incident work (de-duplication, policy, context, the record's JSON) runs
/// on another core. Order is kept (one queue, one consumer). The queue is bounded: when the
/// incident thread falls behind by `bound` requests, workers wait, so lines back up into the
/// sockets as they do when classification falls behind; nothing is dropped. The thread
/// looks for work every 5 ms, which adds at most that to an incident's latency.
final class QueuedSink: MatchSink, @unchecked Sendable {
    enum Item { case match(MatchedRequest), lease(String, String) }

    let next: MatchSink
    let bound: Int
    private let state = Mutex<(items: [Item], idle: Bool, stop: Bool)>(([], false, false))
    private let wakeup = Wakeup()
    private var thread: PosixThread?

    init(next: MatchSink, bound: Int = 65_536) {
        self.next = next
        self.bound = bound
    }

    func start() {
        thread = PosixThread(name: "esafety-sink") { [self] in loop() }
    }

    func accept(_ match: MatchedRequest) { enqueue(.match(match)) }
    func lease(client: String, mac: String) { enqueue(.lease(client, mac)) }

    private func enqueue(_ item: Item) {
        while true {
            let (accepted, wake) = state.withLock { s -> (Bool, Bool) in
                guard s.items.count < bound || s.stop else { return (false, false) }
                s.items.append(item)
                // No wake-up per request (a system call and a context switch each): the
                // incident thread looks every 5 ms, and is woken only when work piles up.
                guard s.idle, s.items.count >= 4096 else { return (true, false) }
                s.idle = false
                return (true, true)
            }
            if wake { wakeup.signal() }
            if accepted { return }
            usleep(200)  // the incident thread is behind: wait, never drop
        }
    }

    /// Hands over everything queued, then stops the thread.
    func stop() {
        state.withLock { $0.stop = true }
        wakeup.signal()
        thread?.join()
    }

    private func loop() {
        var batch: [Item] = []
        while true {
            let stop = state.withLock { s -> Bool in
                swap(&batch, &s.items)
                if batch.isEmpty { s.idle = true }
                return s.stop
            }
            if batch.isEmpty {
                if stop { break }
                wakeup.wait(milliseconds: 5)
                wakeup.drain()
                continue
            }
            for item in batch {
                switch item {
                case .match(let m): next.accept(m)
                case .lease(let c, let mac): next.lease(client: c, mac: mac)
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
