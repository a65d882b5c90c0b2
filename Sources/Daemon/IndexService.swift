import Foundation
import IncidentIndex
import Logging
import ServiceLifecycle
import Synchronization
import SystemSupport
import Threads

/// Keeps the incident log's index current while esafetyd writes the log: once a second it
/// reads what was appended (by esafetyd or by the tool's actions) into the index, on a thread
/// of its own, so the incident path never waits for SQLite. The coordinators' tools then
/// read the index instead of the whole log. Stops after the log's writer (services stop in
/// reverse order), so the last lines are indexed too.
///
/// The thread (`esafety-index`) runs at the lowest priority (nice `niceness`, 19) under ingest
/// and the incident path: the index is derived from the log, so under a flood that fills both
/// cores it waits and catches up after, rather than take CPU from classification (at nice 5 it
/// still took about a sixth of the CPU in a flood, and the flood's throughput a seventh less:
/// BENCHMARKS.md). On an idle machine, as at a school's ordinary load, it runs at once. An
/// update is blocking SQLite work of up to seconds, so it is not run on Swift's concurrency
/// pool either, where it would hold one of its few threads.
struct IndexService: Service {
    let logPath: String
    let logger: Logger
    var niceness: Int32 = 19

    func run() async throws {
        let index: IncidentIndex
        do { index = try IncidentIndex(logPath: logPath) } catch {
            logger.warning(
                "no incident index: the tools will read the whole log",
                metadata: ["error": "\(error.description)"]
            )
            try? await gracefulShutdown()
            return
        }
        let stop = StopRequest()
        let (logger, niceness) = (self.logger, self.niceness)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let thread = PosixThread(name: "esafety-index") {
                    // On Linux a thread's nice value is its own: ingest and the incident thread keep theirs.
                    PosixThread.setNice(niceness)
                    var failing = false
                    while true {
                        let last = stop.requested
                        do {
                            // In steps of 20,000 lines, each committed: a stop asked for during a
                            // long first read (minutes for millions of incidents) is answered
                            // within a step, and the next start goes on from there.
                            let u = try index.update(step: 20_000, shouldStop: { stop.requested })
                            if u.rebuilt {
                                logger.notice(
                                    "incident index rebuilt from the log",
                                    metadata: ["incidents": "\(u.incidents)"]
                                )
                            }
                            if failing { logger.notice("incident index updating again") }
                            failing = false
                        } catch {
                            if !failing {
                                logger.error("incident index not updated", metadata: ["error": "\(error)"])
                            }
                            failing = true
                        }
                        // After the stop, one more update: the lines written last are indexed too
                        // (one step of them; any more, after a flood, at the next start).
                        if last { break }
                        stop.wakeup.wait(milliseconds: 1000)
                        _ = stop.wakeup.drain()
                    }
                    done.resume()
                }
                thread.detach()
                Task {
                    try? await gracefulShutdown()
                    stop.request()
                }
            }
        } onCancel: {
            stop.request()
        }
    }
}

/// Set once, when the service is asked to stop; wakes the thread from its wait.
private final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)
    let wakeup = Wakeup()

    var requested: Bool { flag.load(ordering: .acquiring) }

    func request() {
        flag.store(true, ordering: .releasing)
        wakeup.signal()
    }
}
