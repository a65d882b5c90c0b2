import ArgumentParser
import Classifier
import Glibc
import LogFormats
import Pipeline
import SystemSupport

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run log files through the daemon's parse-and-classify pipeline (audits, benchmarks).",
        discussion:
            "Formats: squid, squid-common, dnsmasq, bind, unbound, json; detected per line unless --format pins one."
    )

    @OptionGroup var source: ListOptions

    @Option(help: ArgumentHelp("Pin the log format instead of detecting it per line.", valueName: "format"))
    var format: LogFormat?

    @Flag(help: "Print each matched request as one JSON line instead of the summary.")
    var json = false

    @Option(name: .customLong("max-line"), help: "Lines longer than this many bytes are counted and skipped.")
    var maxLine = 65536

    @Argument(help: ArgumentHelp("Log files; `-` for standard input.", valueName: "file"))
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one FILE (or - for standard input)") }
    }

    func run() throws {
        let lists = try source.load()
        let holder = GenerationHolder(Generation(number: 1, lists: lists, loadedAt: 0, loadSeconds: 0))
        let output = json ? BufferedOutput(fd: 1) : nil
        let sink = ReplaySink(output: output)
        let pinned = format
        var total = SourceCounters()
        var bytes = 0
        let clock = ContinuousClock()
        let start = clock.now
        for file in files {
            let pipeline = LinePipeline(source: file, format: pinned, holder: holder, sink: sink)
            do {
                let (counters, n) = try Replay.run(path: file, pipeline: pipeline, maxLine: maxLine)
                total.add(counters)
                bytes += n
            } catch {
                output?.flush()
                throw CommandFailure("\(file): cannot read: \(error)", status: 2)
            }
        }
        output?.flush()
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if json { return }
        print(ReplaySummary.render(total, lists: lists, seconds: seconds, bytes: bytes))
    }
}

enum ReplaySummary {
    static func render(_ c: SourceCounters, lists: CompiledLists, seconds: Double, bytes: Int) -> String {
        var out =
            "lines \(c.received)  parsed \(c.parsed)  matched \(c.matched)  ignored \(c.ignored)  malformed "
            + "\(c.malformed)  too long \(c.tooLong)\n"
        let rate = seconds > 0 ? Double(c.received) / seconds : 0
        out += "time \(String(format2: seconds)) s  \(Int(rate)) lines/s  \(bytes / 1_048_576) MiB\n\n"
        out +=
            "format".padding(14) + "parsed".leftPadding(12) + "matched".leftPadding(10) + "ignored".leftPadding(10)
            + "errors".leftPadding(9) + "\n"
        for f in LogFormat.allCases {
            let fc = c.formats[Int(f.rawValue)]
            if fc == FormatCounters() { continue }
            out +=
                f.description.padding(14) + String(fc.parsed).leftPadding(12) + String(fc.matched).leftPadding(10)
                + String(fc.ignored).leftPadding(10) + String(fc.malformed).leftPadding(9) + "\n"
        }
        let unknown = c.formats[LogFormat.allCases.count]
        if unknown.malformed > 0 {
            out +=
                "unknown".padding(14) + "0".leftPadding(12) + "0".leftPadding(10) + "0".leftPadding(10)
                + String(unknown.malformed).leftPadding(9) + "\n"
        }
        if !c.categories.isEmpty {
            out += "\ncategory".padding(23) + "severity".padding(10) + "matched".leftPadding(10) + "\n"
            let severity: (String) -> String = { name in
                lists.categories.first { $0.name == name }?.severity.description ?? ""
            }
            for (name, n) in c.categories.sorted(by: { $0.value > $1.value }) {
                out += Terminal.escape(name).padding(22) + severity(name).padding(10) + String(n).leftPadding(10) + "\n"
            }
        }
        if !c.samples.isEmpty {
            out += "\nfirst malformed lines:\n"
            for s in c.samples { out += "  " + s + "\n" }
        }
        return out
    }
}

extension String {
    init(format2 v: Double) {
        let r = (v * 100).rounded() / 100
        self = String(r)
    }
}
