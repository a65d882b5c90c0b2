import Foundation
import IncidentIndex
import Incidents
import Synchronization
import SystemSupport

/// Where the console reads incidents and writes actions: the log's index (brought up to date
/// here at most once a second when this account may write it, as esafetyd also does; read as
/// it stands otherwise), and the log itself for actions, through the same `IncidentLog.act`
/// the tool uses, under the log's lock.
public final class Desk: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// 1: refused (a workflow rule, an unknown id); 2: cannot (no index, permissions).
        public var status: Int32
    }

    public let logPath: String
    public let group: String?
    private struct Held: @unchecked Sendable {
        var index: IncidentIndex?
        var writable = false
        var updated = 0.0
    }
    private let held = Mutex(Held())

    public init(logPath: String, group: String?) { (self.logPath, self.group) = (logPath, group) }

    /// Runs `body` with the index, current to within a second.
    public func read<T>(_ body: (IncidentIndex) throws -> T) throws(Failure) -> T {
        do {
            return try held.withLock { (h: inout Held) throws -> T in
                let now = Clock.now()
                if h.index == nil || now - h.updated >= 1 {
                    if h.index == nil || h.writable {
                        if let writable = try? IncidentIndex(logPath: logPath), (try? writable.update()) != nil {
                            (h.index, h.writable) = (writable, true)
                        } else {
                            (h.index, h.writable) = (IncidentIndex.reading(logPath: logPath), false)
                        }
                    } else if (try? h.index?.isCurrent()) != true {
                        h.index = IncidentIndex.reading(logPath: logPath)
                    }
                    h.updated = now
                }
                guard let index = h.index else {
                    throw Failure(
                        description:
                            "\(IncidentIndex.path(forLog: logPath)): no current incident index (esafetyd keeps it; "
                            + "`esafety index rebuild` makes it)",
                        status: 2
                    )
                }
                return try body(index)
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(error)", status: 2)
        }
    }

    public func incidents(_ q: IncidentIndex.Query) throws(Failure) -> [IncidentView] {
        try read { try $0.incidents(q) }
    }

    /// The incident an id names (the whole id only: the console links by whole ids).
    public func incident(_ id: String) throws(Failure) -> IncidentView? {
        try read { try $0.incidents(idOrPrefix: id).first { $0.id == id } }
    }

    /// One action, as the tool takes it; `by` is the logged-in account.
    public func act(
        _ action: Workflow.Action,
        id: String,
        details: Workflow.Details,
        by: String
    ) throws(Failure) -> (incident: IncidentView, state: Workflow.State) {
        do {
            let result = try IncidentLog.act(
                path: logPath,
                group: group,
                load: { [self] in try? read { try $0.incidents(idOrPrefix: id) } },
                id: id,
                action: action,
                details: details,
                by: by
            )
            held.withLock { $0.updated = 0 }
            return result
        } catch {
            throw Failure(description: error.description, status: error.status)
        }
    }
}
