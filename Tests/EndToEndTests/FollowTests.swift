import Foundation
import Glibc
import TestSupport
import Testing

/// `esafety follow` between a growing access.log and a real esafetyd: every line once.
@Suite("Following a log file into esafetyd", .serialized)
struct FollowTests {
    /// A Squid line for pupil `i` visiting a self-harm site: one incident per pupil, so the
    /// incident log says which lines arrived and whether any arrived twice.
    static func line(_ i: Int) -> String {
        "1795255200.000 5 10.9.\(i / 250).\(i % 250) TCP_MISS/200 10 GET http://harm.example/p\(i) u\(i) "
            + "HIER_DIRECT/1.2.3.4 text/html\n"
    }

    static func append(_ path: String, _ range: Range<Int>, pause: useconds_t = 0) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        for i in range {
            let bytes = Array(line(i).utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if pause > 0 { usleep(pause) }
        }
        close(fd)
    }

    /// The pupils with an incident in the log, and how many incident lines each has.
    static func incidents(_ dir: TempDir) -> [String: Int] {
        var users: [String: Int] = [:]
        for l in lines(dir.path + "/incidents.jsonl") where l.contains("\"event\":\"incident\"") {
            if let u = json(l)["user"] as? String { users[u, default: 0] += 1 }
        }
        return users
    }

    /// The hits events that counted a second visit (a line sent twice within one esafetyd).
    static func repeats(_ dir: TempDir) -> Int {
        lines(dir.path + "/incidents.jsonl").filter { $0.contains("\"event\":\"hits\"") }.count
    }

    func follower(_ dir: TempDir, _ files: [String], fromStart: Bool = false) throws -> Child {
        try Child(
            buildDirectory + "/esafety",
            ["follow", "--socket", dir.path + "/in.sock", "--state", dir.path + "/follow"] + files
                + (fromStart ? ["--from-start"] : []),
            capture: true
        )
    }

    @Test(
        "old lines are not sent; lines written while esafetyd restarts and across a rotation arrive exactly once; a restarted follower resumes"
    )
    func restartsAndRotation() throws {
        let lists = TempLists(["self-harm/domains": "harm.example\n"])
        let dir = TempDir()
        let log = dir.path + "/access.log"
        // Lines from before the follower's first start: history, not new incidents.
        Self.append(log, 9000..<9003)
        var daemon: DaemonProcess? = try DaemonProcess(lists: [lists.root], dir: dir)
        var follow = try follower(dir, [log])
        usleep(300_000)
        Self.append(log, 0..<200)
        #expect(poll(timeout: 20) { Self.incidents(dir).count == 200 }, "\(Self.incidents(dir).count) of 200")
        // Lines keep coming while esafetyd stops and starts again.
        let writer = Thread { Self.append(log, 200..<500, pause: 2000) }
        writer.start()
        usleep(150_000)
        _ = daemon?.stop()
        daemon = nil
        usleep(400_000)
        daemon = try DaemonProcess(lists: [lists.root], dir: dir)
        #expect(poll(timeout: 20) { Self.incidents(dir).count >= 400 })
        // logrotate's default: the file is renamed and a new one created.
        #expect(rename(log, log + ".1") == 0)
        Self.append(log, 500..<700)
        #expect(poll(timeout: 30) { Self.incidents(dir).count == 700 }, "\(Self.incidents(dir).count) of 700")
        // The follower stops (saving its place); lines come and the file rotates meanwhile.
        follow.stop()
        Self.append(log, 700..<710)
        #expect(rename(log, log + ".1") == 0)
        Self.append(log, 710..<720)
        follow = try follower(dir, [log])
        #expect(poll(timeout: 20) { Self.incidents(dir).count == 720 }, "\(Self.incidents(dir).count) of 720")
        usleep(300_000)
        follow.stop()
        _ = daemon?.stop()
        let users = Self.incidents(dir)
        #expect(users.count == 720)
        #expect(users.values.allSatisfy { $0 == 1 }, "a line sent twice became a second incident")
        #expect(Self.repeats(dir) == 0, "a line sent twice counted as a second visit")
        #expect((9000..<9003).allSatisfy { users["u\($0)"] == nil }, "old lines were sent as new")
    }

    @Test("esafetyd killed with SIGKILL: every line still arrives (at least once), none is lost")
    func killed() throws {
        let lists = TempLists(["self-harm/domains": "harm.example\n"])
        let dir = TempDir()
        let log = dir.path + "/access.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        var daemon: DaemonProcess? = try DaemonProcess(lists: [lists.root], dir: dir)
        let follow = try follower(dir, [log])
        usleep(300_000)
        let writer = Thread { Self.append(log, 0..<400, pause: 1000) }
        writer.start()
        usleep(200_000)
        daemon?.signal(SIGKILL)
        _ = daemon?.waitExit()
        daemon = nil
        usleep(300_000)
        daemon = try DaemonProcess(lists: [lists.root], dir: dir)
        #expect(poll(timeout: 30) { Self.incidents(dir).count == 400 }, "\(Self.incidents(dir).count) of 400")
        follow.stop()
        _ = daemon?.stop()
    }

    @Test("a file that is not there, or not a regular file, is a one-line error")
    func badFile() throws {
        let dir = TempDir()
        let (code, out) = try Child.run(
            buildDirectory + "/esafety",
            ["follow", "--socket", dir.path + "/in.sock", "--state", dir.path + "/f", dir.path + "/missing.log"]
        )
        #expect(code == 1)
        #expect(out.contains("missing.log: cannot open: No such file or directory"), "\(out)")
        let fifo = dir.path + "/fifo"
        mkfifo(fifo, 0o600)
        let (code2, out2) = try Child.run(
            buildDirectory + "/esafety",
            ["follow", "--socket", dir.path + "/in.sock", "--state", dir.path + "/f", fifo]
        )
        #expect(code2 == 1)
        #expect(out2.contains("not a regular file"), "\(out2)")
    }
}
