import ArgumentParser
import Central
import Classifier
import Daemon
import Foundation
import Glibc
import IncidentIndex
import Incidents
import LogFormats
import Reports
import SystemSupport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The e-safety report for a day or period: incidents, responses, monitoring health.",
        discussion: """
            Reads only the incident log (and its rotations) and esafetyd's counters file, so it
            runs after a restart, on a copy of the files, or on another machine. Without --date
            or --since, the report is for yesterday (local time).
            """
    )

    @OptionGroup var log: LogOption
    @OptionGroup var central: CentralSource
    @Option(help: ArgumentHelp("The day (YYYY-MM-DD, local time).", valueName: "date")) var date: String?
    @Option(help: ArgumentHelp("Start of the period (YYYY-MM-DD or RFC 3339).", valueName: "time")) var since: String?
    @Option(
        help: ArgumentHelp("End of the period, exclusive (YYYY-MM-DD or RFC 3339). Default: now.", valueName: "time")
    ) var until: String?
    @Option(help: "text (fits in an email), html (one self-contained file), json, or csv (one row per new incident).")
    var format = ReportFormat.text
    @Option(help: ArgumentHelp("Write the report here (mode 0640) instead of standard output.", valueName: "file"))
    var out: String?
    @Flag(help: "Replace people with \"person 1\", \"person 2\"... and hide client addresses (for governors).")
    var anonymise = false
    @Option(help: ArgumentHelp("esafetyd's counters file. Default: the configured one.", valueName: "file"))
    var counters: String?
    @Option(help: "A source quiet for longer than this many minutes is reported as a silent period.") var silence = 30
    @Option(help: "The report's title (e.g. the school's name).") var title = "E-safety report"

    func validate() throws {
        if date != nil && (since != nil || until != nil) {
            throw ValidationError("give --date, or --since and --until, not both")
        }
        if let date, ReportPeriod.localMidnight(date) == nil {
            throw ValidationError("--date must be YYYY-MM-DD, not '\(date)'")
        }
        for (name, value) in [("--since", since), ("--until", until)] {
            if let value, ReportPeriod.time(value) == nil {
                throw ValidationError("\(name) must be YYYY-MM-DD or an RFC 3339 time, not '\(value)'")
            }
        }
        guard silence > 0 else { throw ValidationError("--silence must be a positive number of minutes") }
    }

    func run() throws {
        guard let period = ReportPeriod(date: date, since: since, until: until, now: Clock.now()) else {
            throw CommandFailure("the period is empty: --until must be after --since", status: 2)
        }
        let (start, end) = (period.since, period.until)
        let log = try self.log.resolve()
        let views: [IncidentView]
        var counterRows: [CounterRecord] = []
        let database = try central.database()
        if let database {
            // The trust's store: the incidents this role may see (of one site with --site).
            // The monitoring counters and the chain's check are each school's own.
            let (site, since, until) = (central.site, Clock.rfc3339(start), Clock.rfc3339(end))
            views = try central.run(database) { box in
                let views = try await CentralIncidents.period(
                    box.connection,
                    site: site,
                    since: since,
                    until: until,
                    logger: box.logger
                )
                return try await box.recorded(
                    "report",
                    views.map { ($0.site ?? "", $0) },
                    detail: "\(since) to \(until)"
                )
                .map(\.view)
            }
        } else {
            views = try log.reportViews(since: start, until: end)
            let countersPath = counters ?? log.configuration.countersPath
            counterRows = IncidentStore.withRotations(countersPath).compactMap { try? FileSystem.readText($0) }
                .joined().split(separator: "\n").compactMap(CounterRecord.init(line:))
        }
        var options = Report.Options(since: start, until: end)
        options.anonymise = anonymise
        options.silence = Double(silence) * 60
        options.utcOffset = ReportPeriod.offset(at: start)
        options.title = title
        var report = Report(views: views, counters: counterRows, options: options)
        if format != .csv && database == nil { report.integrity = Report.Integrity(log: log.path) }
        let text = report.rendered(as: format)
        if let out {
            var t = text
            do {
                try t.withUTF8 { try FileSystem.writeAtomically(out, bytes: UnsafeRawBufferPointer($0), mode: 0o640) }
            } catch {
                throw CommandFailure("\(out): cannot write the report: \(error)", status: 2)
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
