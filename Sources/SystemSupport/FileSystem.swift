import Glibc

/// Small POSIX helpers: whole-file reads and directory listings, errors as `errno` text.
public enum FileSystem {
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var path: String
        public var errno: Int32
        /// Said instead of the errno's text when there is more to say.
        public var reason: String?
        public var description: String { reason ?? String(cString: strerror(errno)) }
        public init(path: String, errno: Int32, reason: String? = nil) {
            self.path = path
            self.errno = errno
            self.reason = reason
        }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    /// Creates `path` and any missing parents with `mode` (existing folders are left as they
    /// are); 0, or -1 with errno set.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o750) -> Int32 {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if !isDirectory(current) {
                if mkdir(current, mode) != 0 && errno != EEXIST { return -1 }
            }
        }
        return 0
    }

    public static func listDirectory(_ path: String) throws(Error) -> [String] {
        guard let dir = opendir(path) else { throw Error(path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Files in `folder` named `base` or `base.N` (UT1 splits large lists), sorted; a folder
    /// that cannot be read is an error, never an empty list.
    public static func listFiles(in folder: String, base: String) throws(Error) -> [String] {
        try listFiles(named: base, among: listDirectory(folder), in: folder)
    }

    /// The same, from names already listed.
    public static func listFiles(named base: String, among names: [String], in folder: String) -> [String] {
        names.filter { name in
            if name == base { return true }
            guard name.hasPrefix(base + ".") else { return false }
            let suffix = name.dropFirst(base.count + 1)
            return !suffix.isEmpty && suffix.allSatisfy(\.isNumber)
        }.filter { !isDirectory(folder + "/" + $0) }
            .sorted { a, b in a.count != b.count ? a.count < b.count : a < b }
    }

    /// What a file that is not a regular file is, for the error that names it.
    public static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a folder"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    /// A regular file's bytes (a symlink to one is followed). Anything else (a FIFO, which
    /// would block for ever, a device such as /dev/zero, which never ends) and a file over
    /// `limit` bytes is an error naming it, before anything is read.
    public static func readBytes(_ path: String, limit: Int = Int.max) throws(Error) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; reads of a regular file
        // ignore it.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw Error(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Error(path: path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw Error(path: path, errno: EISDIR) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw Error(path: path, errno: EINVAL, reason: "\(kind(st.st_mode)), not a regular file")
        }
        guard Int(st.st_size) <= limit else {
            throw Error(path: path, errno: EFBIG, reason: "larger than \(limit) bytes (\(st.st_size))")
        }
        // One read into storage sized from fstat; keep reading if the file grew.
        var size = max(Int(st.st_size), 0)
        var result = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            while initialized < size {
                let n = read(fd, buffer.baseAddress! + initialized, size - initialized)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    break
                }
                initialized += n
            }
        }
        size = result.count
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Error(path: path, errno: errno)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            guard result.count <= limit else {
                throw Error(path: path, errno: EFBIG, reason: "larger than \(limit) bytes")
            }
        }
        return result
    }

    public static func readText(_ path: String, limit: Int = Int.max) throws(Error) -> String {
        String(decoding: try readBytes(path, limit: limit), as: UTF8.self)
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync,
    /// rename. `mode` is applied to the new file.
    public static func writeAtomically(
        _ path: String,
        bytes: UnsafeRawBufferPointer,
        mode: mode_t = 0o644
    ) throws(Error) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Error(path: tmp, errno: errno) }
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                unlink(tmp)
                throw Error(path: path, errno: e)
            }
            offset += n
        }
        if fsync(fd) != 0 {
            let e = errno
            close(fd)
            unlink(tmp)
            throw Error(path: path, errno: e)
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw Error(path: path, errno: e)
        }
    }

    /// Gives an open file to `group` only when it is not already its group: under a sandbox
    /// that denies `fchown` (systemd's `~@privileged`), the file the service creates already
    /// has its primary group, and nothing is asked of the kernel. False when the group does not
    /// exist or the change failed.
    @discardableResult
    public static func setGroup(fd: Int32, _ group: String) -> Bool {
        guard let gr = getgrnam(group) else { return false }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_gid == gr.pointee.gr_gid { return true }
        return fchown(fd, uid_t.max, gr.pointee.gr_gid) == 0
    }
}
