import Classifier
import Daemon
import Foundation
import LogFormats

/// End to end: a client streams a file into a running esafetyd over its Unix socket;
/// lines counted in (by the client) and out (by esafetyd's status) must agree.
enum SocketBenchmark {
    /// One figure of esafetyd's status, or -1 when it does not answer.
    static func statusValue(_ control: String, _ key: KeyPath<StatusReport, Int>) -> Int {
        guard let answer = try? ControlClient.send("status", to: control, timeout: 10),
            let status = try? StatusReport(json: answer)
        else { return -1 }
        return status[keyPath: key]
    }

    static func peakRSS(_ pid: Int32) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
        return 0
    }

    static func run(ut1: String, work: String, hosts: [String]) {
        print("\n## End to end through the socket (esafetyd, 2 workers; the client on the same 2 cores)")
        let bin = (CommandLine.arguments[0] as NSString).deletingLastPathComponent
        guard FileManager.default.isExecutableFile(atPath: bin + "/esafetyd") else {
            print("esafetyd not built")
            return
        }
        let dir = "/tmp/esb-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        print("format    lines       seconds  lines/s   lost  SIGHUPs  generations  esafetyd peak RSS")
        for (format, lines, hup) in [
            ("dnsmasq", 10_000_000, false), ("squid", 10_000_000, false), ("squid", 10_000_000, true),
        ] {
            let path = work + "/socket-\(format).log"
            if !FileManager.default.fileExists(atPath: path) {
                ReplayBenchmark.generate(format: format, lines: lines, hosts: hosts, to: path)
            }
            let daemon = Process()
            daemon.executableURL = URL(fileURLWithPath: bin + "/esafetyd")
            daemon.arguments = [
                "--lists", ut1, "--socket", dir + "/in.sock", "--datagram-socket", dir + "/in.dgram",
                "--control-socket", dir + "/ctl.sock", "--workers", "2", "--log-level", "warning",
            ]
            daemon.standardError = FileHandle.nullDevice
            try! daemon.run()
            while statusValue(dir + "/ctl.sock", \.generation) < 1 { usleep(50_000) }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let p = Array((dir + "/in.sock").utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: p) }
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            let input = open(path, O_RDONLY)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var sentLines = 0
            let start = Date()
            var lastHup = start
            var hups = 0
            while true {
                let n = read(input, &buffer, buffer.count)
                if n <= 0 { break }
                for i in 0..<n where buffer[i] == 0x0A { sentLines += 1 }
                var off = 0
                while off < n {
                    let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + off, n - off) }
                    if w <= 0 { break }
                    off += w
                }
                if hup, Date().timeIntervalSince(lastHup) >= 1 {
                    kill(daemon.processIdentifier, SIGHUP)
                    hups += 1
                    lastHup = Date()
                }
            }
            close(input)
            close(fd)
            var received = 0
            while received < sentLines {
                received = statusValue(dir + "/ctl.sock", \.linesReceived)
                if received < sentLines { usleep(10_000) }
                if Date().timeIntervalSince(start) > 600 { break }
            }
            let seconds = Date().timeIntervalSince(start)
            let generation = statusValue(dir + "/ctl.sock", \.generation)
            let rss = peakRSS(daemon.processIdentifier)
            kill(daemon.processIdentifier, SIGTERM)
            daemon.waitUntilExit()
            print(
                "\(format.padding(toLength: 9, withPad: " ", startingAt: 0)) \(sentLines)  \(fmt(seconds, 2))  "
                    + "\(mega(Double(sentLines) / seconds))  \(sentLines - received)  \(hups)  \(generation)  \(rss) "
                    + "MiB"
            )
        }
    }
}
