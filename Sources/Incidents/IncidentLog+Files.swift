import CShims
import Classifier
import Foundation
import Glibc
import Logging
import Synchronization
import SystemSupport

/// The incident log's file as bytes: sizes, partial last lines (a writer killed mid-write),
/// and where the whole lines end. Only regular files count; anything else reads as empty.
extension IncidentLog {
    /// Removes a partial last line (a writer killed mid-write: `kill -9` can stop a write
    /// of several pages part way). Only under the file's lock, when no writer is mid-write.
    /// The bytes removed (0 when the file ends in a newline).
    @discardableResult
    static func cutTornTail(fd: Int32) -> Int {
        let size = size(of: fd)
        var last: UInt8 = 0
        guard size > 0, pread(fd, &last, 1, off_t(size - 1)) == 1, last != 0x0A else { return 0 }
        let torn = tornTail(fd: fd)
        guard torn > 0, ftruncate(fd, off_t(size - Int64(torn))) == 0 else { return 0 }
        return torn
    }

    /// Where the whole lines of a log end (its size less any partial last line), reading
    /// only its tail; 0 when it cannot be read.
    static func endOfWholeLines(_ path: String) -> Int {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        return Int(size(of: fd)) - tornTail(fd: fd)
    }

    /// Bytes after the last newline of a regular file (a line whose write was cut short).
    static func tornTail(fd: Int32) -> Int {
        let size = Int(size(of: fd))
        let n = min(size, 1 << 20)
        guard n > 0 else { return 0 }
        var tail = [UInt8](repeating: 0, count: n)
        guard tail.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, n, off_t(size - n)) }) == n else { return 0 }
        guard let lastNewline = tail.lastIndex(of: 0x0A) else { return n }
        return n - lastNewline - 1
    }

    /// An open regular file's size, and whether it has no name left (deleted); nil for
    /// anything else (a device such as /dev/full).
    static func fileState(of fd: Int32) -> (size: Int64, deleted: Bool)? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return (Int64(st.st_size), st.st_nlink == 0)
    }

    static func size(of fd: Int32) -> Int64 {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : 0
    }
}
