import Foundation
@testable import Classifier

/// A list root in a fresh temporary folder, removed when the value is released.
final class TempLists: Sendable {
    let root: String

    init(_ files: [String: String], function: String = #function) {
        root = NSTemporaryDirectory() + "esafety-tests-" + UUID().uuidString
        for (path, text) in files {
            let full = root + "/" + path
            try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
            try! Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func write(_ path: String, bytes: [UInt8]) {
        let full = root + "/" + path
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try! Data(bytes).write(to: URL(fileURLWithPath: full))
    }

    func load() throws -> CompiledLists { try ListLoader.load(roots: [root]) }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// Category names a target classifies to (effective matches), sorted.
func categories(_ lists: CompiledLists, _ target: String) -> [String] {
    lists.classify(target: target).categories.map(\.name).sorted()
}

/// The repository's root, found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The folder holding the built executables (beside the test bundle).
let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent
}()

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a built executable with arguments and optional standard input.
func run(_ executable: String, _ arguments: [String], stdin: String? = nil, cwd: String? = nil) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: buildDirectory + "/" + executable)
    process.arguments = arguments
    if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                     stderr: String(decoding: e, as: UTF8.self))
}
