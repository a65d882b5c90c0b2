import SystemSupport

extension Workflow {
    /// What an action carries besides who acts and when, named as the tool's options and the
    /// console's form fields name them: `text` (a note), `to`, `reason`, `outcome`, `action`.
    public struct Details: Sendable, Equatable {
        public var text: String?
        public var to: String?
        public var reason: String?
        public var outcome: String?
        public var action: String?

        public init(
            text: String? = nil,
            to: String? = nil,
            reason: String? = nil,
            outcome: String? = nil,
            action: String? = nil
        ) {
            (self.text, self.to, self.reason, self.outcome, self.action) = (text, to, reason, outcome, action)
        }
    }

    /// Checks what `action` needs, as both the tool and the console require it, and writes it
    /// into the event; the refusal says what is missing.
    public static func fill(
        _ record: inout ActionRecord,
        _ action: Action,
        _ d: Details
    ) -> Refusal? {
        func given(_ s: String?) -> String? {
            guard let s, !s.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            return s
        }
        switch action {
        case .ack:
            return nil
        case .note:
            guard let text = given(d.text) else { return Refusal(description: "the note is empty") }
            record.note = text
        case .assign:
            guard let to = given(d.to) else { return Refusal(description: "say who it is assigned to") }
            record.to = to
        case .escalate:
            guard let to = given(d.to), let role = Workflow.role(to) else {
                return Refusal(
                    description: "unknown role '\(d.to ?? "")'; one of: \(roles.map(\.key).joined(separator: ", "))"
                )
            }
            let reason = given(d.reason)
            if role.referral, reason == nil {
                return Refusal(description: "a referral to \(role.name) needs a reason: the record must say why")
            }
            (record.to, record.referral, record.reason) = (role.name, role.referral ? role.name : nil, reason)
        case .resolve:
            guard let outcome = given(d.outcome), Outcome(rawValue: outcome) != nil else {
                return Refusal(description: "the outcome must be one of: \(outcomes.joined(separator: ", "))")
            }
            guard let done = given(d.action) else { return Refusal(description: "say what was done") }
            (record.outcome, record.actionTaken) = (outcome, done)
        case .falsePositive:
            guard let reason = given(d.reason) else { return Refusal(description: "say why it is a false positive") }
            record.reason = reason
        case .reopen:
            guard let reason = given(d.reason) else { return Refusal(description: "say why it is reopened") }
            record.reason = reason
        }
        return nil
    }
}

extension IncidentLog {
    /// One workflow action, as the tool and the console both take it: the incident an id (or
    /// a prefix of 8+ characters) names is found under the log's lock, the transition checked
    /// against its state there, the details checked, and one event appended. Returns the
    /// incident as it was and its state now.
    public static func act(
        path: String,
        group: String?,
        load: (() -> [IncidentView]?)? = nil,
        id: String,
        action: Workflow.Action,
        details: Workflow.Details,
        by: String,
        account: String? = nil
    ) throws(ActFailure) -> (incident: IncidentView, state: Workflow.State) {
        var found: IncidentView?
        try appendEvents(path: path, group: group, load: load) {
            (views: [IncidentView]) throws(Workflow.Refusal) -> [ActionRecord] in
            let v: IncidentView
            switch IncidentStore.find(id, in: views) {
            case .success(let view): v = view
            case .failure(let refusal):
                throw Workflow.Refusal(description: "\(refusal.description) in \(path) or its rotations")
            }
            if case .failure(let refusal) = Workflow.next(v.state, action) {
                throw Workflow.Refusal(description: "cannot \(action.rawValue) \(v.id): \(refusal.description)")
            }
            var record = ActionRecord(action, id: v.id, time: Clock.rfc3339(Clock.now()), by: by, account: account)
            if let refusal = Workflow.fill(&record, action, details) { throw refusal }
            found = v
            return [record]
        }
        guard let v = found else { throw ActFailure(description: "no incident \(id)", status: 1) }
        return (v, (try? Workflow.next(v.state, action).get()) ?? v.state)
    }
}
