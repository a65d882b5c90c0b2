import Central
import Foundation
import IncidentIndex
import Incidents
import Synchronization
import SystemSupport

/// Where the console reads incidents and writes actions: a school's own log (`LocalDesk`) or
/// a trust's central store (`CentralDesk`). Every call carries the account's `Scope`; a
/// school's own log has one site, so it ignores it.
public protocol Desk: Sendable {
    /// The sites an account of this scope may choose among; empty for a school's own log.
    func sites(_ scope: Scope) async throws(DeskFailure) -> [String]
    func incidents(_ q: IncidentIndex.Query, site: String?, _ scope: Scope) async throws(DeskFailure) -> [IncidentView]
    /// The incident a whole id names (of `site`, in a trust's store, where ids are unique per site).
    func incident(_ id: String, site: String?, _ scope: Scope) async throws(DeskFailure) -> IncidentView?
    /// One action, as the tool takes it; `by` is the logged-in account.
    func act(
        _ action: Workflow.Action,
        _ incident: IncidentView,
        details: Workflow.Details,
        by: String,
        _ scope: Scope
    ) async throws(DeskFailure) -> Workflow.State
    /// Open and overdue incidents by severity, and new ones per day and severity in [since, until).
    func dashboard(
        now: String,
        since: String,
        until: String,
        _ scope: Scope
    ) async throws(DeskFailure) -> DashboardCounts
    /// What a report of [since, until) reads.
    func period(since: String, until: String, _ scope: Scope) async throws(DeskFailure) -> [IncidentView]
    /// Shipping health of each site in scope (a trust's store), or nil (a school: esafetyd's status).
    func shipping(_ scope: Scope) async throws(DeskFailure) -> [CentralIncidents.Shipping]?
    /// The incidents that arrived after `cursor`, oldest first, and the cursor after them: written
    /// to a school's log, or shipped to a trust's store whatever their time (a school catching up
    /// after an outage ships old ones). A nil cursor starts from now and returns none.
    func arrivals(after cursor: Arrivals?, _ scope: Scope) async throws(DeskFailure) -> ([IncidentView], Arrivals)
    /// Records, where the incidents are kept, that `by` is shown these (a trust's store:
    /// `esafety.views`, which its schools read); a school's own console has its access log only.
    func recordViews(what: String, by: String, shown: [IncidentView], _ scope: Scope) async throws(DeskFailure)
}

extension Desk {
    public func recordViews(what: String, by: String, shown: [IncidentView], _ scope: Scope) async throws(DeskFailure) {
    }
}

/// Where the live stream has read to: the place of the last incident read from a school's index
/// (its write order), or each site's place in what it has shipped to a trust's store.
public enum Arrivals: Sendable {
    case written(Int64)
    case shipped(CentralIncidents.Place)
}

/// A refusal (1: a workflow rule, an unknown id) or a failure (2: no index, permissions, the
/// store away or too slow), in the tool's words.
public struct DeskFailure: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var status: Int32
    public init(_ description: String, status: Int32) { (self.description, self.status) = (description, status) }
}

/// The sites an account may see (`*`: all the console's store role may see), and the one it has
/// chosen with the site switcher (nil: all of them).
public struct Scope: Sendable, Equatable {
    public var sites: [String]
    public var chosen: String?
    public init(sites: [String], chosen: String? = nil) { (self.sites, self.chosen) = (sites, chosen) }

    /// The narrowing the central store applies: the chosen site, else the account's sites.
    public var narrowing: String { chosen ?? (sites.contains("*") ? "*" : sites.joined(separator: ",")) }

    /// The sites by name (nil: every one the store's role may see), for queries that can use a
    /// site's indexes; the store's narrowing applies either way.
    public var named: [String]? { chosen.map { [$0] } ?? (sites.contains("*") ? nil : sites) }
}

public struct DashboardCounts: Sendable {
    public var open: [String: Int]
    public var overdue: [String: Int]
    public var days: [String: [String: Int]]
}

/// A school's own log: its index (brought up to date here at most once a second when this
/// account may write it, as esafetyd also does; read as it stands otherwise), and the log
/// itself for actions, through the same `IncidentLog.act` the tool uses, under the log's lock.
public final class LocalDesk: Desk {
    public typealias Failure = DeskFailure

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
                        // Far behind (esafetyd building it): left to esafetyd, not done in a request.
                        let answering = IncidentIndex.answering(logPath: logPath)
                        (h.index, h.writable) = (answering?.index, answering?.writable ?? false)
                    } else if (try? h.index?.isCurrent()) != true {
                        h.index = IncidentIndex.reading(logPath: logPath)
                    }
                    h.updated = now
                }
                guard let index = h.index else {
                    let file = IncidentIndex.path(forLog: logPath)
                    throw Failure(
                        FileSystem.exists(file)
                            ? IncidentIndex.behind(logPath: logPath)
                            : "\(file): no incident index (esafetyd keeps it; `esafety index rebuild` makes it)",
                        status: 2
                    )
                }
                return try body(index)
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure("\(error)", status: 2)
        }
    }

    public func sites(_ scope: Scope) throws(Failure) -> [String] { [] }

    public func incidents(_ q: IncidentIndex.Query, site: String?, _ scope: Scope) throws(Failure) -> [IncidentView] {
        try read { try $0.incidents(q) }
    }

    public func incident(_ id: String, site: String?, _ scope: Scope) throws(Failure) -> IncidentView? {
        try read { try $0.incidents(idOrPrefix: id).first { $0.id == id } }
    }

    public func act(
        _ action: Workflow.Action,
        _ incident: IncidentView,
        details: Workflow.Details,
        by: String,
        _ scope: Scope
    ) throws(Failure) -> Workflow.State {
        let id = incident.id
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
            return result.state
        } catch {
            throw Failure(error.description, status: error.status)
        }
    }

    public func dashboard(
        now: String,
        since: String,
        until: String,
        _ scope: Scope
    ) throws(Failure)
        -> DashboardCounts
    {
        try read { index in
            let counts = try index.openCounts(now: now)
            return DashboardCounts(
                open: counts.open,
                overdue: counts.overdue,
                days: try index.perDay(since: since, until: until)
            )
        }
    }

    public func period(since: String, until: String, _ scope: Scope) throws(Failure) -> [IncidentView] {
        try read { try $0.incidents(reportFrom: since, until: until) }
    }

    public func shipping(_ scope: Scope) throws(Failure) -> [CentralIncidents.Shipping]? { nil }

    /// Those written after the cursor's place in the index's write order, oldest first, at most
    /// 2,000 a poll: a flood larger than that is announced over the next polls, never passed over
    /// (the newest 50 were once read each poll, and more than 2,000 in a second were never
    /// announced). An index made again from the log renumbers its places: when it then holds
    /// fewer than the cursor's place, the stream starts again from its end; when more, those past
    /// the old place are announced (once), though not new.
    public func arrivals(after cursor: Arrivals?, _ scope: Scope) throws(Failure) -> ([IncidentView], Arrivals) {
        let last = try read { try $0.lastWritten() }
        guard case .written(let place)? = cursor, place <= last else { return ([], .written(last)) }
        let (fresh, next) = try read { try $0.incidents(writtenAfter: place, limit: 2000) }
        return (fresh, .written(next))
    }
}
