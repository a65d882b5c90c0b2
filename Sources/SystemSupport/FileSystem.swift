import Glibc

/// Small POSIX helpers: whole-file reads and directory listings, errors as `errno` text.
public enum FileSystem {
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var path: String
        public var errno: Int32
        public var description: String { String(cString: strerror(errno)) }
        public init(path: String, errno: Int32) {
            self.path = path
            self.errno = errno
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

    /// Files in `folder` named `base` or `base.N` (UT1 splits large lists), sorted.
    public static func listFiles(in folder: String, base: String) -> [String] {
        guard let names = try? listDirectory(folder) else { return [] }
        return names.filter { name in
            if name == base { return true }
            guard name.hasPrefix(base + ".") else { return false }
            let suffix = name.dropFirst(base.count + 1)
            return !suffix.isEmpty && suffix.allSatisfy(\.isNumber)
        }.filter { !isDirectory(folder + "/" + $0) }
            .sorted { a, b in a.count != b.count ? a.count < b.count : a < b }
    }

    public static func readBytes(_ path: String) throws(Error) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Error(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Error(path: path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw Error(path: path, errno: EISDIR) }
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
        }
        return result
    }

    public static func readText(_ path: String) throws(Error) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
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
}
