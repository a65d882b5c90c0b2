import Foundation
import Glibc
import Synchronization
import SystemSupport

/// A folder of alerts waiting to be delivered. esafetyd (sandboxed: no network, no setgid
/// programs) puts each alert here; `esafety alerts deliver`, started by systemd when the folder
/// is not empty (`esafety-alert.path`), runs the configured command for each and removes it.
/// One file per alert and command: its first line is the command's name, the rest the
/// incident record. Files are written in `FOLDER.tmp` and renamed in, so the folder only ever
/// holds whole alerts (and `DirectoryNotEmpty=` fires only for them); alerts whose every
/// attempt failed are moved to `FOLDER.failed`, kept for the admin and named in the report.
public struct AlertSpool: Sendable {
    public let folder: String
    public init(folder: String) { self.folder = folder }

    var staging: String { folder + ".tmp" }
    public var failedFolder: String { folder + ".failed" }

    /// Puts one alert in the spool; nil, or why it could not.
    public func put(_ payload: String, command: String, incident: String) -> String? {
        for d in [folder, staging] where !FileSystem.isDirectory(d) {
            if FileSystem.makeDirectories(d, mode: 0o750) != 0 { return "\(d): cannot create the alert spool" }
        }
        let safe = String(incident.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || $0 == "-" })
        let serial = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        let name = "\(Int(Clock.now() * 1000))-\(getpid())-\(serial)-\(safe).alert"
        let bytes = Array((command + "\n" + payload + "\n").utf8)
        let written = bytes.withUnsafeBytes { b -> String? in
            do {
                try FileSystem.writeAtomically(staging + "/" + name, bytes: b, mode: 0o640)
                return nil
            } catch {
                return "\(error)"
            }
        }
        if let written { return written }
        guard rename(staging + "/" + name, folder + "/" + name) == 0 else {
            return "\(folder): cannot move the alert in: \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// The alerts waiting, oldest first.
    public func waiting() -> [String] {
        ((try? FileSystem.listDirectory(folder)) ?? []).filter { $0.hasSuffix(".alert") && !$0.hasPrefix(".") }.sorted()
    }

    /// One spooled alert: the command's name and the record.
    public func read(_ name: String) -> (command: String, payload: String)? {
        guard let text = try? FileSystem.readText(folder + "/" + name, limit: 1 << 20),
            let nl = text.firstIndex(of: "\n")
        else { return nil }
        return (String(text[..<nl]), String(text[text.index(after: nl)...]).trimmingCharacters(in: .newlines))
    }

    /// Runs each waiting alert's command (with the settings' timeout, retries and backoff)
    /// until the spool is empty; `record` is told each outcome. Returns how many failed.
    public func deliver(
        commands: [AlertDispatcher.Command],
        timeout: Double,
        retries: Int,
        backoff: Double,
        record: (_ command: String, _ ok: Bool, _ error: String?, _ incident: String) -> Void
    ) -> Int {
        var failed = 0
        while true {
            let names = waiting()
            guard !names.isEmpty else { return failed }
            for name in names {
                let incident = String(name.split(separator: "-", maxSplits: 3).last ?? "").replacingOccurrences(
                    of: ".alert",
                    with: ""
                )
                guard let (commandName, payload) = read(name) else {
                    moveToFailed(name)
                    failed += 1
                    record("unknown", false, "\(name): unreadable alert file", incident)
                    continue
                }
                guard let command = commands.first(where: { $0.name == commandName }) else {
                    moveToFailed(name)
                    failed += 1
                    record(commandName, false, "no alert command named \(commandName) in the configuration", incident)
                    continue
                }
                var error: String? = nil
                for attempt in 0...retries {
                    error = ChildProcess.run(command.argv, input: payload, timeout: timeout)
                    if error == nil { break }
                    if attempt < retries { usleep(useconds_t(min(backoff * Double(1 << attempt), 300) * 1_000_000)) }
                }
                if let error {
                    moveToFailed(name)
                    failed += 1
                    record(command.name, false, "\(error) after \(retries + 1) attempt(s)", incident)
                } else {
                    unlink(folder + "/" + name)
                    record(command.name, true, nil, incident)
                }
            }
        }
    }

    func moveToFailed(_ name: String) {
        if !FileSystem.isDirectory(failedFolder) { _ = FileSystem.makeDirectories(failedFolder, mode: 0o750) }
        if rename(folder + "/" + name, failedFolder + "/" + name) != 0 { unlink(folder + "/" + name) }
    }

    /// Unique names within one process.
    static let counter = Atomic<Int>(0)
}
