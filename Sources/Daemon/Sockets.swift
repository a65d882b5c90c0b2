import CShims
import Classifier
import Glibc
import Synchronization
import SystemSupport

/// Unix sockets: bound ourselves, or passed by systemd (`LISTEN_FDS`).
enum Sockets {
    struct Failure: Error, CustomStringConvertible {
        var path: String
        var message: String
        var description: String { "\(path): \(message)" }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The socket files this process made, by path: the device and inode it bound, so that at
    /// stop it removes only a file that is still its own (not one a newer esafetyd made).
    private static let bound = Mutex<[String: (dev: UInt64, ino: UInt64)]>([:])

    /// Removes `path` if it is still the socket this process bound there.
    static func removeIfOurs(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0, let mine = bound.withLock({ $0[path] }),
            UInt64(st.st_dev) == mine.dev, UInt64(st.st_ino) == mine.ino
        else { return }
        unlink(path)
    }

    /// Whether a process is listening on the Unix socket at `path` (a connect succeeds).
    static func answers(_ path: String, type: Int32) -> Bool {
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: bytes) }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// Binds a Unix socket at `path` (removing a stale socket file, never another kind of
    /// file), with `mode` and, if given, `group`. The folder is created 0755 if missing.
    static func bind(
        path: String,
        type: Int32,
        mode: UInt32,
        group: String?,
        backlog: Int32 = 128
    ) throws(Failure) -> Int32 {
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !folder.isEmpty && !FileSystem.isDirectory(folder) {
            if mkdirs(folder) != 0 { throw Failure(path: folder, message: "cannot create folder: \(errnoText())") }
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw Failure(path: path, message: "exists and is not a socket; refusing to replace it")
            }
            // A socket something still listens on belongs to a running process (another
            // esafetyd): taking it over would leave that one deaf. Only a stale one is replaced.
            guard !answers(path, type: type) else {
                throw Failure(
                    path: path,
                    message: "another process is listening here (another esafetyd?); stop it first, or give this one "
                        + "other sockets"
                )
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(path: path, message: "socket: \(errnoText())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw Failure(path: path, message: "path too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        // Bind with a tight umask, then set the mode we want: no window where it is wider.
        let old = umask(0o177)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(old)
        guard rc == 0 else {
            let e = errnoText()
            close(fd)
            throw Failure(path: path, message: "bind: \(e)")
        }
        if let group {
            guard let gr = getgrnam(group) else {
                close(fd)
                unlink(path)
                throw Failure(path: path, message: "no such group \(group)")
            }
            // Only when it is not already the group (a sandbox may deny chown).
            var made = stat()
            let same = lstat(path, &made) == 0 && made.st_gid == gr.pointee.gr_gid
            if !same && chown(path, uid_t.max, gr.pointee.gr_gid) != 0 {
                let e = errnoText()
                close(fd)
                unlink(path)
                throw Failure(path: path, message: "cannot give the socket to group \(group): \(e)")
            }
        }
        chmod(path, mode_t(mode))
        if lstat(path, &st) == 0 {
            let identity = (dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
            bound.withLock { $0[path] = identity }
        }
        if type == Int32(SOCK_STREAM.rawValue) && listen(fd, backlog) != 0 {
            let e = errnoText()
            close(fd)
            unlink(path)
            throw Failure(path: path, message: "listen: \(e)")
        }
        if type == Int32(SOCK_DGRAM.rawValue) {
            // A large receive buffer: datagrams wait in the kernel, not dropped, while we catch up.
            var size: Int32 = 8 << 20
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        setNonBlocking(fd)
        return fd
    }

    static func mkdirs(_ path: String) -> Int32 {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if !FileSystem.isDirectory(current) {
                if mkdir(current, 0o755) != 0 && errno != EEXIST { return -1 }
            }
        }
        return 0
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Sockets passed by systemd socket activation: (fd, name, type).
    static func activated() -> [(fd: Int32, name: String, type: Int32)] {
        guard let pidText = getenv("LISTEN_PID"), Int32(String(cString: pidText)) == getpid(),
            let fdsText = getenv("LISTEN_FDS"), let count = Int32(String(cString: fdsText)), count > 0
        else { return [] }
        let names =
            getenv("LISTEN_FDNAMES").map {
                String(cString: $0).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            } ?? []
        var out: [(Int32, String, Int32)] = []
        for i in 0..<count {
            let fd = 3 + i
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var type: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)
            setNonBlocking(fd)
            out.append((fd, Int(i) < names.count ? names[Int(i)] : "fd\(fd)", type))
        }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        return out
    }

    /// The peer process of a connected Unix stream socket, as `comm[pid]` (uid).
    static func peer(_ fd: Int32) -> (name: String, uid: UInt32) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard esafety_peercred(fd, &pid, &uid, &gid) == 0 else { return ("unknown", UInt32.max) }
        let comm =
            (try? FileSystem.readText("/proc/\(pid)/comm"))?.split(separator: "\n").first.map(String.init) ?? "unknown"
        return ("\(Terminal.escape(comm))[\(pid)]", uid)
    }

    /// Bytes waiting to be read on `fd`.
    static func queued(_ fd: Int32) -> Int {
        var n: Int32 = 0
        return ioctl(fd, UInt(FIONREAD), &n) == 0 ? Int(n) : 0
    }
}
