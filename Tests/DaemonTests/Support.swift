import Foundation
@testable import Daemon

/// A temporary folder, removed when released.
final class TempDir: Sendable {
    let path: String
    init() {
        // Short paths: Unix socket paths are limited to 107 bytes.
        path = "/tmp/esd-" + String(UUID().uuidString.prefix(8))
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func write(_ relative: String, _ text: String) {
        let full = path + "/" + relative
        try! FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: full))
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent
}()

/// A running `esafetyd` on sockets in a temporary folder.
final class DaemonProcess: @unchecked Sendable {
    let dir: TempDir
    let process = Process()
    let stderr = Pipe()
    var socket: String { dir.path + "/in.sock" }
    var datagram: String { dir.path + "/in.dgram" }
    var control: String { dir.path + "/ctl.sock" }

    init(lists: [String], extra: [String] = [], dir: TempDir = TempDir()) throws {
        self.dir = dir
        process.executableURL = URL(fileURLWithPath: buildDirectory + "/esafetyd")
        process.arguments = ["--socket", dir.path + "/in.sock", "--datagram-socket", dir.path + "/in.dgram",
                             "--control-socket", dir.path + "/ctl.sock", "--incident-log", dir.path + "/incidents.jsonl",
                             "--workers", "2"] + lists.flatMap { ["--lists", $0] } + extra
        var env = ProcessInfo.processInfo.environment
        env["STATE_DIRECTORY"] = dir.path + "/state"
        process.environment = env
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Ready when the control socket answers.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if (try? ControlClient.send("ping", to: control, timeout: 2)) != nil { return }
            if !process.isRunning { break }
            usleep(50_000)
        }
        throw Failure(message: "esafetyd did not start: " + String(decoding: stderr.fileHandleForReading.availableData, as: UTF8.self))
    }

    struct Failure: Error, CustomStringConvertible { var message: String; var description: String { message } }

    func status() throws -> [String: Any] {
        let answer = try ControlClient.send("status", to: control)
        return try JSONSerialization.jsonObject(with: Data(answer.utf8)) as! [String: Any]
    }

    /// Waits until `lines_received` reaches `count` (workers publish counters after each batch).
    func waitForLines(_ count: Int, timeout: Double = 60) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        var s = try status()
        while (s["lines_received"] as! Int) < count && Date() < deadline {
            usleep(50_000)
            s = try status()
        }
        return s
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// SIGTERM, then the exit status and everything esafetyd logged.
    func stop() -> (Int32, String) {
        signal(SIGTERM)
        process.waitUntilExit()
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, log)
    }

    deinit { if process.isRunning { process.terminate(); process.waitUntilExit() } }
}

/// Connects to a Unix stream socket.
func connectUnix(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { close(fd); throw DaemonProcess.Failure(message: "connect \(path): \(String(cString: strerror(errno)))") }
    return fd
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    bytes.withUnsafeBytes { raw in
        while off < raw.count {
            let n = write(fd, raw.baseAddress! + off, raw.count - off)
            if n <= 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }
}

func sendDatagram(_ path: String, _ message: String) {
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
    var m = message
    _ = m.withUTF8 { buf in
        withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
