// libFuzzer targets for everything that reads untrusted bytes. Built by scripts/fuzz with
// `--sanitize=fuzzer` and `-DFUZZING` (libFuzzer then supplies `main`); the target is chosen
// by the environment variable ESAFETY_FUZZ_TARGET:
//
//   lines      the line parser and the syslog envelope, every format (a log line from anyone)
//   json       the JSON-lines format pinned (its scanner, escapes, numbers)
//   listline   one line of a list file, each kind (domains, urls, expressions)
//   metadata   a category's meta.toml
//   snapshot   a compiled snapshot (the checksum made to match, so the decoder's own checks
//              are what is tested), then a lookup with what it loaded
//   config     esafetyd's YAML configuration
//   control    the control socket's status answer, as the tool decodes it
//   record     a line of the incident log, as every reader decodes it
//
// A crash here becomes a regression test in the module's test target.
import Foundation

@testable import Classifier
@testable import Daemon
@testable import Incidents
@testable import LogFormats
@testable import SystemSupport

#if FUZZING
let target = ProcessInfo.processInfo.environment["ESAFETY_FUZZ_TARGET"] ?? "lines"
nonisolated(unsafe) let parser = LineParser()  // libFuzzer calls in one thread
let lists: CompiledLists = {
    // A small fixed list set, for snapshot round trips.
    let dir = NSTemporaryDirectory() + "esafety-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir + "/gambling", withIntermediateDirectories: true)
    try? FileManager.default.createDirectory(atPath: dir + "/self-harm", withIntermediateDirectories: true)
    try? "bet.example\n*.wild.example\n".write(toFile: dir + "/gambling/domains", atomically: false, encoding: .utf8)
    try? "example.com/bad\n".write(toFile: dir + "/gambling/urls", atomically: false, encoding: .utf8)
    try? "hurt[+ ]myself\n".write(toFile: dir + "/self-harm/expressions", atomically: false, encoding: .utf8)
    return try! ListLoader.load(roots: [dir])
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch target {
    case "lines":
        _ = parser.parse(bytes)
        for f in LogFormat.allCases { _ = parser.parse(bytes, format: f) }
    case "json":
        _ = parser.parse(bytes, format: .json)
    case "listline":
        var scratch: [UInt8] = []
        let line = UnsafeBufferPointer(start: data, count: size)
        for kind in ListFileKind.allCases { ListLine.parse(line, kind: kind, scratch: &scratch) { _ in } }
    case "metadata":
        _ = try? Category.parseMetadata(String(decoding: bytes, as: UTF8.self), file: "fuzz", defaultName: "fuzz")
    case "snapshot":
        var b = Snapshot.encode(lists)
        // The input replaces the payload from a position it chooses, then the checksum is made
        // to match: the decoder's own checks are what stand between it and a crash.
        if size > 2 {
            let at = 32 + Int(data[0]) * 256 % max(1, b.count - 32)
            for (i, v) in bytes.dropFirst(1).enumerated() where at + i < b.count { b[at + i] = v }
            let sum = b.withUnsafeBytes { Snapshot.checksum(UnsafeRawBufferPointer(rebasing: $0[32...])) }
            withUnsafeBytes(of: sum.littleEndian) { b.replaceSubrange(24..<32, with: $0) }
        }
        if let loaded = try? Snapshot.decode(b, path: "fuzz") {
            for t in ["bet.example", "a.wild.example", "http://example.com/bad/x", "https://x.example/?q=hurt+myself"] {
                _ = loaded.classify(target: t)
            }
        }
    case "config":
        if let c = try? DaemonConfiguration.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz") {
            _ = c.policy.group(client: "10.0.0.1", user: "pupil")
        }
    case "control":
        _ = try? StatusReport(json: String(decoding: bytes, as: UTF8.self)).text
    case "record":
        let text = String(decoding: bytes, as: UTF8.self)
        let record = LogRecord(line: text)
        // The byte reader (incidents, hits) and the decoder read every line alike.
        precondition(record == LogRecord(decoding: text), "read by bytes unlike the decoder: \(text)")
        // What the index and the forwarder keep of an incident, read by position, likewise.
        if let fields = IncidentFields(line: text), case .incident(let r)? = record {
            precondition(fields == IncidentFields(r), "fields read by position unlike the record: \(text)")
        }
        if let r = record { _ = r.bytes }
        _ = IncidentStore.fold(String(decoding: bytes, as: UTF8.self))
    default:
        fatalError("unknown ESAFETY_FUZZ_TARGET \(target)")
    }
    return 0
}
#else
/// Without `-DFUZZING` (an ordinary build) this only says how to run the targets.
@main
enum FuzzHelp {
    static func main() {
        print("esafety-fuzz: libFuzzer targets; run scripts/fuzz [SECONDS] [TARGET...]")
    }
}
#endif
