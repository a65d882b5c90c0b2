import Foundation
import Glibc
import TestSupport

@testable import Daemon

/// A running `esafetyd` on sockets in a temporary folder.
final class DaemonProcess: @unchecked Sendable {
    let dir: TempDir
    let child: Child
    var socket: String { dir.path + "/in.sock" }
    var datagram: String { dir.path + "/in.dgram" }
    var control: String { dir.path + "/ctl.sock" }
    private var exited: (Int32, String)?

    init(
        lists: [String],
        extra: [String] = [],
        dir: TempDir = TempDir(),
        wrapper: [String] = [],
        environment: [String: String] = [:]
    ) throws {
        self.dir = dir
        let program = wrapper.first ?? (buildDirectory + "/esafetyd")
        let prefix = wrapper.isEmpty ? [] : Array(wrapper.dropFirst()) + [buildDirectory + "/esafetyd"]
        child = try Child(
            program,
            prefix + [
                "--socket", dir.path + "/in.sock", "--datagram-socket", dir.path + "/in.dgram",
                "--control-socket", dir.path + "/ctl.sock", "--incident-log", dir.path + "/incidents.jsonl",
                "--workers", "2",
            ] + lists.flatMap { ["--lists", $0] } + extra,
            capture: true,
            environment: environment.merging(["STATE_DIRECTORY": dir.path + "/state"]) { a, _ in a }
        )
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

    typealias Failure = TestFailure

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

    deinit {
        if exited == nil {
            // A wrapper (strace) may leave esafetyd running when it is killed: its children first.
            let children =
                (try? String(contentsOfFile: "/proc/\(child.pid)/task/\(child.pid)/children", encoding: .utf8))
            for pid in children?.split(separator: " ").compactMap({ pid_t($0) }) ?? [] { kill(pid, SIGKILL) }
            kill(child.pid, SIGKILL)
            _ = child.wait()
        }
    }
}
