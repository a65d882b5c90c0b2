import Classifier
import Foundation
import Glibc
import Pipeline

// One copy of each helper the test targets share: where the repository and the built
// executables are, temporary folders, running a built binary or a real peer, reading lines
// and JSON, polling until something holds, and Unix sockets.

/// The repository's root, found from this file's path.
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The folder holding the built executables (beside the test bundle).
public let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent
}()

/// A failure of the test's own set-up (a program missing, a daemon that did not start).
public struct TestFailure: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// A temporary folder, removed when released.
public final class TempDir: Sendable {
    public let path: String
    public init() {
        // Short paths: Unix socket paths are limited to 107 bytes.
        path = "/tmp/esd-" + String(UUID().uuidString.prefix(8))
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func write(_ relative: String, _ text: String) {
        let full = path + "/" + relative
        try! FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try! Data(text.utf8).write(to: URL(fileURLWithPath: full))
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Copies an executable for other accounts to run, written through a close-on-exec
/// descriptor: a copy made with an inheritable one (FileManager's) can still be open in a
/// child another test is starting at that moment, and running it fails with ETXTBSY.
public func copyExecutable(_ source: String, to target: String) throws {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
    let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    guard fd >= 0 else { throw TestFailure(message: "cannot create \(target)") }
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw TestFailure(message: "cannot write \(target)") }
    fchmod(fd, 0o755)
}

/// A fresh path in /tmp (short, for Unix sockets); the caller removes what it creates.
public func tempPath() -> String { "/tmp/esi-" + String(UUID().uuidString.prefix(8)) }

/// A file's lines (empty when it cannot be read).
public func lines(_ path: String) -> [String] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

/// One JSON object, as the test reads it (empty when it is not one).
public func json(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
}

/// Polls `condition` every `interval` seconds until it holds or `timeout` seconds pass;
/// whether it held. For waiting on another process, where a fixed sleep is either too short
/// on a busy machine or wastes time on an idle one.
@discardableResult
public func poll(timeout: Double = 10, interval: Double = 0.02, until condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        usleep(UInt32(interval * 1e6))
    }
}

/// A program a test runs (a real peer or tool), or a failure naming the Debian package that
/// has it (`scripts/test` and `.ci/run` install them all).
@discardableResult
public func requireExecutable(_ path: String, package: String) throws -> String {
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestFailure(message: "\(path) is missing (apt-get install \(package)); .ci/run installs it")
    }
    return path
}

public struct RunResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a built executable to completion, with optional standard input; its output and
/// errors apart.
public func run(
    _ executable: String,
    _ arguments: [String],
    stdin: String? = nil,
    cwd: String? = nil
) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(
        fileURLWithPath: executable.hasPrefix("/") ? executable : buildDirectory + "/" + executable
    )
    process.arguments = arguments
    if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return RunResult(
        status: process.terminationStatus,
        stdout: String(decoding: o, as: UTF8.self),
        stderr: String(decoding: e, as: UTF8.self)
    )
}

/// Connects to a Unix stream socket.
public func connectUnix(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard rc == 0 else {
        close(fd)
        throw TestFailure(message: "connect \(path): \(String(cString: strerror(errno)))")
    }
    return fd
}

public func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    bytes.withUnsafeBytes { raw in
        while off < raw.count {
            let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
            if n <= 0 {
                if errno == EINTR { continue }
                return
            }
            off += n
        }
    }
}

public func sendDatagram(_ path: String, _ message: String) {
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
    var m = message
    _ = m.withUTF8 { buf in
        withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}

/// A child process started with posix_spawn and reaped with waitpid (Foundation's
/// `Process.waitUntilExit` can miss the exit of a child that ends at once).
public final class Child: @unchecked Sendable {
    public let pid: pid_t
    private let outputFD: Int32

    /// Starts `path` with `args`; standard output and error go to a pipe (`capture`) or /dev/null.
    /// `environment` is added to this process's environment for the child only (tests
    /// run in parallel: a `setenv` here would reach other tests' children too).
    public init(
        _ path: String,
        _ args: [String],
        capture: Bool = false,
        cwd: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var fds: [Int32] = [-1, -1]
        if capture {
            guard pipe(&fds) == 0 else { throw TestFailure(message: "pipe failed") }
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
        guard rc == 0 else { throw TestFailure(message: "cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
        self.outputFD = fds[0]
    }

    /// Reads all output (if captured) and waits for the exit status.
    public func wait() -> (Int32, String) {
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

    public func stop(_ signal: Int32 = SIGTERM) {
        kill(pid, signal)
        _ = wait()
    }

    /// Runs a command to completion.
    /// Runs a command to completion: its status and its output and errors together.
    public static func run(
        _ path: String,
        _ args: [String],
        environment: [String: String] = [:]
    ) throws -> (Int32, String) {
        try Child(path, args, capture: true, environment: environment).wait()
    }
}

/// A matched request as the pipeline hands it to a sink (one category, a domain rule).
public func match(
    _ host: String,
    url: String? = nil,
    user: String? = "pupil1",
    client: String = "10.1.2.3",
    time: Double,
    category: String = "gambling",
    severity: String = "medium",
    locked: Bool = false
) -> MatchedRequest {
    MatchedRequest(
        time: time,
        client: client,
        user: user,
        host: host,
        url: url,
        method: "GET",
        action: .allowed,
        format: .squid,
        source: "ingest:squid",
        categories: [
            MatchDetail(
                name: category,
                severity: Severity(name: severity)!,
                locked: locked,
                kind: .domain,
                file: "Blocklists/\(category)/domains",
                line: 3,
                rule: host
            )
        ],
        generation: 1
    )
}

/// A list root in a fresh temporary folder, removed when the value is released.
public final class TempLists: Sendable {
    public let root: String

    public init(_ files: [String: String], function: String = #function) {
        root = NSTemporaryDirectory() + "esafety-tests-" + UUID().uuidString
        for (path, text) in files {
            let full = root + "/" + path
            try! FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try! Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    public func write(_ path: String, bytes: [UInt8]) {
        let full = root + "/" + path
        try! FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try! Data(bytes).write(to: URL(fileURLWithPath: full))
    }

    public func load() throws -> CompiledLists { try ListLoader.load(roots: [root]) }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// A local certificate authority in `dir` (`ca.pem`, `ca.key`), a second one nobody trusts
/// (`other-ca.pem`), and `NAME.pem`/`NAME.key` signed by the first for `subjectAltName`
/// (e.g. `DNS:localhost`, `IP:127.0.0.1`), made with the real openssl; valid for a day.
public func makeLocalCertificates(in dir: String, name: String, subjectAltName: String) throws {
    let openssl = try requireExecutable("/usr/bin/openssl", package: "openssl")
    func ssl(_ args: [String]) throws {
        let (code, out) = try Child.run(openssl, args)
        guard code == 0 else { throw TestFailure(message: "openssl \(args.first ?? ""): \(out)") }
    }
    for ca in ["ca", "other-ca"] {
        try ssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=\(ca)", "-keyout",
            "\(dir)/\(ca).key", "-out", "\(dir)/\(ca).pem",
        ])
    }
    try ssl([
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-keyout", "\(dir)/\(name).key", "-out",
        "\(dir)/\(name).csr",
    ])
    try "subjectAltName=\(subjectAltName)\n".write(toFile: "\(dir)/\(name).ext", atomically: true, encoding: .utf8)
    try ssl([
        "x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "\(dir)/\(name).ext", "-out", "\(dir)/\(name).pem",
    ])
}
