import ArgumentParser
import Classifier
import Incidents
import LogFormats
import Reports

// The closed sets of values the command line takes, parsed by ArgumentParser itself: an
// unknown value is a usage error (one line, exit 2) that lists the values allowed.

extension Severity: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public var defaultValueDescription: String { description }
    public static var allValueStrings: [String] { allCases.reversed().map(\.description) }
}

extension LogFormat: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public var defaultValueDescription: String { description }
    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension ReportFormat: ExpressibleByArgument {}

extension Workflow.Outcome: ExpressibleByArgument {}

/// The one way a command fails: a message (printed as `esafety: error: ...`, control
/// characters escaped) and an exit status; no message when the command has said why itself.
struct CommandFailure: Error {
    var message: String?
    var status: Int32

    init(_ message: String?, status: Int32) { (self.message, self.status) = (message, status) }
}
