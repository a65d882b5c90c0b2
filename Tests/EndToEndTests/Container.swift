import Foundation
import Glibc
import TestSupport

/// A minimal Debian 12 booted with its own systemd in a container (systemd-nspawn), for
/// installing esafety as a school would and checking it as the real users. The root file
/// system is made once by mmdebstrap and kept in a cache folder; each container boots a copy.
/// This checkout is inside at /src (read-only), this build's binaries at /opt/esafety-build,
/// and the Swift runtime they link to at /opt/swift (read-only, as on this machine).
final class Container: @unchecked Sendable {
    static let packages = [
        "systemd", "systemd-sysv", "dbus", "sudo", "libpcre2-8-0", "libssl3", "libsqlite3-0", "publicsuffix",
        "logrotate",
    ]
    /// The cache's name changes with the package list, so a changed list builds a new one.
    static var cache: String {
        "/var/cache/esafety-tests/bookworm-" + String(packages.joined(separator: ",").hashValueStable, radix: 16)
    }

    let root: String
    let nspawn: Child
    /// The container's PID 1 (its systemd), as this machine sees it.
    let leader: pid_t

    /// Makes the cached root file system if it is not there (mmdebstrap: about 20 s).
    static func rootfs() throws -> String {
        let cache = Self.cache
        if FileManager.default.fileExists(atPath: cache + "/usr/lib/systemd/systemd") { return cache }
        let mmdebstrap = try requireExecutable("/usr/bin/mmdebstrap", package: "mmdebstrap")
        let partial = cache + ".partial-\(getpid())"
        try? FileManager.default.createDirectory(
            atPath: (cache as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        // Twice: the first download on a new machine can meet a mirror's hiccup.
        var (code, out) = (Int32(1), "")
        for _ in 0..<2 where code != 0 {
            try? FileManager.default.removeItem(atPath: partial)
            (code, out) = try Child.run(
                mmdebstrap,
                ["--variant=minbase", "--include=" + packages.joined(separator: ","), "bookworm", partial]
            )
        }
        guard code == 0 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw TestFailure(message: "mmdebstrap failed (\(code)): \(out.suffix(2000))")
        }
        if rename(partial, cache) != 0 {
            // Another run made it first.
            try? FileManager.default.removeItem(atPath: partial)
        }
        return cache
    }

    init() throws {
        _ = try requireExecutable("/usr/bin/systemd-nspawn", package: "systemd-container")
        let source = try Self.rootfs()
        root = "/var/tmp/esafety-container-" + String(UUID().uuidString.prefix(8))
        let (code, out) = try Child.run("/bin/cp", ["-a", source, root])
        guard code == 0 else { throw TestFailure(message: "cannot copy the root file system: \(out)") }
        let machine = "esafety-" + String(UUID().uuidString.prefix(6)).lowercased()
        nspawn = try Child(
            "/usr/bin/systemd-nspawn",
            [
                "--register=no", "--keep-unit", "--quiet", "--machine=\(machine)", "-D", root, "-b",
                "--bind-ro=\(repositoryRoot):/src", "--bind-ro=\(buildDirectory):/opt/esafety-build",
                "--bind-ro=/opt/swift",
            ],
            capture: true
        )
        // The container's systemd is nspawn's child: the one named systemd (nspawn forks a
        // helper first, which exits once it has started the container; entering that one fails).
        var found: pid_t = 0
        let deadline = Date().addingTimeInterval(30)
        while found == 0 && Date() < deadline {
            let children =
                (try? String(contentsOfFile: "/proc/\(nspawn.pid)/task/\(nspawn.pid)/children", encoding: .utf8)) ?? ""
            found =
                children.split(separator: " ").compactMap { pid_t($0) }.first {
                    let name = (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? ""
                    return name.trimmingCharacters(in: .whitespacesAndNewlines) == "systemd"
                } ?? 0
            if found == 0 { usleep(50_000) }
        }
        leader = found
        guard found != 0 else {
            nspawn.stop(SIGKILL)
            throw TestFailure(message: "the container did not start")
        }
        // Booted when systemd says so (running, or degraded: a unit this minimal system cannot run).
        var state = ""
        let booted = Date().addingTimeInterval(60)
        while Date() < booted {
            state = (try? run("systemctl is-system-running --wait").1) ?? ""
            if state.contains("running") || state.contains("degraded") { break }
            usleep(200_000)
        }
        guard state.contains("running") || state.contains("degraded") else {
            throw TestFailure(message: "the container's systemd did not finish booting: \(state)")
        }
    }

    /// Runs a shell command inside, as root: its status and output (standard error too).
    @discardableResult
    func run(_ command: String) throws -> (Int32, String) {
        try Child.run(
            "/usr/bin/nsenter",
            ["-t", "\(leader)", "-a", "--", "/bin/sh", "-c", command]
        )
    }

    /// Runs a command inside as `user` (a login's groups, no environment from root).
    @discardableResult
    func run(_ command: String, as user: String) throws -> (Int32, String) {
        try run("runuser -u \(user) -- /bin/sh -c '\(command.replacingOccurrences(of: "'", with: "'\\''"))'")
    }

    deinit {
        _ = try? run("systemctl poweroff --no-block")
        let deadline = Date().addingTimeInterval(20)
        while kill(nspawn.pid, 0) == 0 && Date() < deadline { usleep(100_000) }
        nspawn.stop(SIGKILL)
        _ = try? Child.run("/bin/rm", ["-rf", "--one-file-system", root])
    }
}

extension String {
    /// FNV-1a: the same on every run (Swift's `hashValue` is seeded per process).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
