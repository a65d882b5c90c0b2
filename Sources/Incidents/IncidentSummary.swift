import Classifier

/// What a list prints of an incident, and nothing else: its time, severity, group, person,
/// category and site, its latest hit count, its workflow state and its id. The index keeps
/// these beside a pupil's history (a covering index), so a list of thousands reads them in
/// order from one place and decodes no record; a full read of the log makes them from the
/// incident it folded (`init(_:)`), so both print the same line.
public struct IncidentSummary: Sendable, Equatable {
    public var time: String
    public var severity: Severity?
    public var group: String
    public var person: String
    public var category: String
    public var host: String
    public var hits: Int
    public var state: IncidentView.State
    public var id: String

    public init(
        time: String,
        severity: Severity?,
        group: String,
        person: String,
        category: String,
        host: String,
        hits: Int,
        state: IncidentView.State,
        id: String
    ) {
        (self.time, self.severity, self.group, self.person) = (time, severity, group, person)
        (self.category, self.host, self.hits, self.state, self.id) = (category, host, hits, state, id)
    }

    public init(_ v: IncidentView) {
        self.init(
            time: v.time,
            severity: v.severity,
            group: v.group,
            person: v.person,
            category: v.category,
            host: v.host,
            hits: v.hits,
            state: v.state,
            id: v.id
        )
    }
}
