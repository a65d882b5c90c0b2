import Classifier
import Glibc

/// Follows an incident log as it grows, for `esafety incidents tail -f`: each call reads what
/// was appended since the last; when logrotate replaces the file (another inode) or it
/// becomes shorter, it starts again from the top of the new file.
///
/// The offset is always just after a whole line: a partial last line (one being written, or
/// left by a writer killed mid-write and cut by the next) is read again once it is
/// complete, never joined to what replaces it.
public struct IncidentFollower {
    public let path: String
    private var offset: Int
    private var inode: ino_t

    /// Starts at the end of the file's whole lines (what is there now has been shown).
    public init(path: String) {
        self.path = path
        offset = IncidentLog.endOfWholeLines(path)
        var st = stat()
        inode = stat(path, &st) == 0 ? st.st_ino : 0
    }

    /// The incidents whose lines were completed since the last call, in order.
    public mutating func poll() -> [IncidentView] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        if st.st_ino != inode || Int(st.st_size) < offset {
            offset = 0
            inode = st.st_ino
        }
        let size = Int(st.st_size)
        guard size > offset else { return [] }
        var data = [UInt8](repeating: 0, count: size - offset)
        let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n > 0 else { return [] }
        guard let last = data[0..<n].lastIndex(of: 0x0A) else { return [] }
        offset += last + 1
        return IncidentStore.fold(String(decoding: data[...last], as: UTF8.self))
    }
}
