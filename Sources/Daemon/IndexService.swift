import Foundation
import IncidentIndex
import Logging
import ServiceLifecycle
import SystemSupport
import Threads

/// Keeps the incident log's index current while esafetyd writes the log: once a second it
/// reads what was appended (by esafetyd or by the tool's actions) into the index, on a thread
/// of its own, so the incident path never waits for SQLite. The coordinators' tools then
/// read the index instead of the whole log. Stops after the log's writer (services stop in
/// reverse order), so the last lines are indexed too.
struct IndexService: Service {
    let logPath: String
    let logger: Logger

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
        var failing = false
        func update() {
            do {
                let u = try index.update()
                if u.rebuilt {
                    logger.notice("incident index rebuilt from the log", metadata: ["incidents": "\(u.incidents)"])
                }
                if failing { logger.notice("incident index updating again") }
                failing = false
            } catch {
                if !failing { logger.error("incident index not updated", metadata: ["error": "\(error.description)"]) }
                failing = true
            }
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            update()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
        update()
    }
}
