import CShims
import Glibc

/// `sd_notify` without libsystemd: datagrams to `$NOTIFY_SOCKET` (a path, or an abstract
/// name starting with `@`). Does nothing when the daemon is not run by systemd.
public struct SystemdNotify: Sendable {
    let path: String?

    public init() {
        path = getenv("NOTIFY_SOCKET").map { String(cString: $0) }
    }

    var isActive: Bool { path != nil }

    /// Sends `state` (`READY=1`, `RELOADING=1\nMONOTONIC_USEC=...`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=...`).
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard let path, !path.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        var message = state
        return message.withUTF8 { m in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, m.baseAddress, m.count, Int32(MSG_NOSIGNAL), $0, length) >= 0
                }
            }
        }
    }

    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    public func stopping() { send("STOPPING=1") }

    /// Half of `$WATCHDOG_USEC` in seconds, when systemd asked for a watchdog for us.
    var watchdogInterval: Double? {
        guard let v = getenv("WATCHDOG_USEC"), let usec = Double(String(cString: v)), usec > 0 else { return nil }
        if let p = getenv("WATCHDOG_PID"), let pid = Int32(String(cString: p)), pid != getpid() { return nil }
        return usec / 2e6
    }
}
