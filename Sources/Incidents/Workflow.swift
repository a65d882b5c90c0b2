import Classifier
import LogFormats

/// The coordinator's workflow: what each action does to an incident's state, and what it
/// records. Every action is an event line appended to the incident log; nothing is edited.
///
///     from \ action   ack           note  assign  escalate   resolve   false-positive  reopen
///     new             acknowledged  =     =       escalated  resolved  false-positive  -
///     acknowledged    -             =     =       escalated  resolved  false-positive  -
///     escalated       -             =     =       escalated  resolved  false-positive  -
///     resolved        -             =     -       -          -         -               acknowledged
///     false-positive  -             =     -       -          -         -               acknowledged
///
/// `=` keeps the state; `-` is refused with a reason.
public enum Workflow {
    public typealias State = IncidentView.State

    public enum Action: String, Sendable, CaseIterable {
        case ack, note, assign, escalate, resolve
        case falsePositive = "false-positive"
        case reopen

        /// Someone has the incident in hand (what stops it being overdue): any action but a
        /// note or an assignment.
        var isResponse: Bool { self != .note && self != .assign }
    }

    public struct Refusal: Error, CustomStringConvertible, Sendable, Equatable {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The state after `action`, or why it is refused.
    public static func next(_ state: State, _ action: Action) -> Result<State, Refusal> {
        let closed = state == .resolved || state == .falsePositive
        switch action {
        case .note:
            return .success(state)
        case .ack:
            if state == .new { return .success(.acknowledged) }
            return .failure(
                Refusal(
                    description: closed
                        ? "it is already closed (\(state.rawValue)); reopen it first"
                        : "it is already acknowledged (\(state.rawValue))"
                )
            )
        case .assign:
            if closed { return .failure(Refusal(description: "it is closed (\(state.rawValue)); reopen it first")) }
            return .success(state)
        case .escalate, .resolve, .falsePositive:
            if closed {
                return .failure(Refusal(description: "it is already closed (\(state.rawValue)); reopen it first"))
            }
            switch action {
            case .escalate: return .success(.escalated)
            case .resolve: return .success(.resolved)
            default: return .success(.falsePositive)
            }
        case .reopen:
            if closed { return .success(.acknowledged) }
            return .failure(
                Refusal(
                    description:
                        "it is open (\(state.rawValue)); only a resolved or false-positive incident can be reopened"
                )
            )
        }
    }

    /// What an incident's workflow events add up to.
    public struct Replay: Sendable {
        public var state: State = .new
        /// The events that took effect, in order, with their action.
        public var applied: [ActionRecord] = []
        /// The first response (anything but a note or an assignment), and the closing.
        public var acknowledgedAt: String?
        public var closedAt: String?
        public var outcome: String?
        public var escalatedTo: [String] = []
    }

    /// Replays workflow events in order through the same table the tool enforces (an event
    /// that does not fit changes nothing); with `before`, only events earlier than that
    /// RFC 3339 time count (a report's state at the end of its period). Other events
    /// (`hits`, `context`) are passed over.
    public static func replay(_ actions: [ActionRecord], before: String? = nil) -> Replay {
        var r = Replay()
        for e in actions {
            if let before, e.time >= before { continue }
            guard case .success(let next) = Self.next(r.state, e.action) else { continue }
            r.applied.append(e)
            if r.acknowledgedAt == nil, e.action.isResponse { r.acknowledgedAt = e.time }
            switch e.action {
            case .escalate: if let to = e.to { r.escalatedTo.append(to) }
            case .resolve:
                r.closedAt = e.time
                r.outcome = e.outcome
            case .falsePositive:
                r.closedAt = e.time
                r.outcome = "false-positive"
            case .reopen:
                r.closedAt = nil
                r.outcome = nil
            default: break
            }
            r.state = next
        }
        return r
    }

    /// Who an incident can be escalated to. Referrals outside school are recorded as such.
    public struct Role: Sendable {
        public var key: String
        public var name: String
        public var referral: Bool
    }

    public static let roles: [Role] = [
        Role(key: "dsl", name: "DSL", referral: false),
        Role(key: "deputy-dsl", name: "deputy DSL", referral: false),
        Role(key: "counsellor", name: "counsellor", referral: false),
        Role(key: "headteacher", name: "headteacher", referral: false),
        Role(key: "it", name: "IT", referral: false),
        Role(key: "social-care", name: "children's social care", referral: true),
        Role(key: "police", name: "police", referral: true),
    ]

    /// A role by key or name, ignoring case, spaces and hyphens ("Deputy DSL", "deputy-dsl").
    public static func role(_ text: String) -> Role? {
        func fold(_ s: String) -> String { s.lowercased().filter { $0.isLetter } }
        return roles.first { fold($0.key) == fold(text) || fold($0.name) == fold(text) }
    }

    /// How a resolved incident ended.
    public enum Outcome: String, CaseIterable, Sendable {
        case noFurtherAction = "no-further-action"
        case pupilSpokenTo = "pupil-spoken-to"
        case parentsInformed = "parents-informed"
        case sanction
        case supportPlan = "support-plan"
        case referredSocialCare = "referred-social-care"
        case referredPolice = "referred-police"
        case filterChanged = "filter-changed"
        case other
    }

    /// The outcomes' names, as the log records them.
    public static var outcomes: [String] { Outcome.allCases.map(\.rawValue) }

    /// What to add to the allowlist so this site stops raising incidents: the file (in the
    /// list root) and the line. The host that was requested, so the exemption is no wider
    /// than the request (a domain line covers its subdomains); a URL rule gets the URL.
    /// Nil, with the reason, for a locked category, which nothing may suppress.
    public static func allowlistLine(for view: IncidentView) -> (file: String, line: String)? {
        if view.record.rule.kind == .url, let url = view.record.url, !url.isEmpty {
            var u = Substring(url)
            for scheme in ["http://", "https://"] where u.hasPrefix(scheme) { u = u.dropFirst(scheme.count) }
            if let q = u.firstIndex(where: { $0 == "?" || $0 == "#" }) { u = u[..<q] }
            return ("allowlist/urls", String(u))
        }
        guard !view.host.isEmpty else { return nil }
        return ("allowlist/domains", view.host)
    }
}
