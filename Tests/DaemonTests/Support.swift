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

/// A program a test runs (a real peer or tool), or a failure naming the Debian package that
/// has it (`.ci/run` installs them all).
@discardableResult
func requireExecutable(_ path: String, package: String) throws -> String {
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw DaemonProcess.Failure(message: "\(path) is missing (apt-get install \(package)); .ci/run installs it")
    }
    return path
}

/// A running `esafetyd` on sockets in a temporary folder.
final class DaemonProcess: @unchecked Sendable {
    let dir: TempDir
    let child: Child
    var socket: String { dir.path + "/in.sock" }
    var datagram: String { dir.path + "/in.dgram" }
    var control: String { dir.path + "/ctl.sock" }
    private var exited: (Int32, String)?

    init(lists: [String], extra: [String] = [], dir: TempDir = TempDir(), wrapper: [String] = [],
         environment: [String: String] = [:]) throws {
        self.dir = dir
        let program = wrapper.first ?? (buildDirectory + "/esafetyd")
        let prefix = wrapper.isEmpty ? [] : Array(wrapper.dropFirst()) + [buildDirectory + "/esafetyd"]
        child = try Child(program, prefix + ["--socket", dir.path + "/in.sock", "--datagram-socket", dir.path + "/in.dgram",
                           "--control-socket", dir.path + "/ctl.sock", "--incident-log", dir.path + "/incidents.jsonl",
                           "--workers", "2"] + lists.flatMap { ["--lists", $0] } + extra, capture: true,
                          environment: environment.merging(["STATE_DIRECTORY": dir.path + "/state"]) { a, _ in a })
        // Ready when the control socket answers.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if (try? ControlClient.send("ping", to: control, timeout: 2)) != nil { return }
            if kill(child.pid, 0) != 0 { break }
            usleep(50_000)
        }
        kill(child.pid, SIGKILL)
        let (_, log) = child.wait()
        exited = (-1, log)
        throw Failure(message: "esafetyd did not start: " + log)
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

    func signal(_ sig: Int32) { kill(child.pid, sig) }

    /// Waits for esafetyd to exit: its status and everything it logged.
    func waitExit() -> (Int32, String) {
        if let exited { return exited }
        let r = child.wait()
        exited = r
        return r
    }

    /// SIGTERM, then the exit status and everything esafetyd logged.
    func stop() -> (Int32, String) {
        if exited == nil { signal(SIGTERM) }
        return waitExit()
    }

    deinit { if exited == nil { kill(child.pid, SIGKILL); _ = child.wait() } }
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
            let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
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

/// A child process started with posix_spawn and reaped with waitpid (Foundation's
/// `Process.waitUntilExit` can miss the exit of a child that ends at once).
final class Child: @unchecked Sendable {
    let pid: pid_t
    private let outputFD: Int32

    /// Starts `path` with `args`; standard output and error go to a pipe (`capture`) or /dev/null.
    /// `environment` is added to this process's environment for the child only (tests
    /// run in parallel: a `setenv` here would reach other tests' children too).
    init(_ path: String, _ args: [String], capture: Bool = false, cwd: String? = nil, environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var fds: [Int32] = [-1, -1]
        if capture {
            guard pipe(&fds) == 0 else { throw DaemonProcess.Failure(message: "pipe failed") }
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
            posix_spawn_file_actions_addclose(&actions, fds[0])
            posix_spawn_file_actions_addclose(&actions, fds[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        _ = cwd  // callers pass folders as arguments instead
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        // A clean signal state: test threads may block or ignore signals the child needs.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
        if capture { close(fds[1]) }
        guard rc == 0 else { throw DaemonProcess.Failure(message: "cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
        self.outputFD = fds[0]
    }

    /// Reads all output (if captured) and waits for the exit status.
    func wait() -> (Int32, String) {
        var out: [UInt8] = []
        if outputFD >= 0 {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(outputFD, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                out += buf[0..<n]
            }
            close(outputFD)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: out, as: UTF8.self))
    }

    func stop(_ signal: Int32 = SIGTERM) {
        kill(pid, signal)
        _ = wait()
    }

    /// Runs a command to completion.
    static func run(_ path: String, _ args: [String]) throws -> (Int32, String) {
        try Child(path, args, capture: true).wait()
    }
}
