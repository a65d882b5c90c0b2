import CShims
import Classifier
import Foundation
import Glibc
import Logging
import Synchronization
import SystemSupport

/// Rotation and chain continuity: where the chain stands before a new or emptied file, the
/// last chain value of a file, lines another writer appended, the value saved beside the log,
/// and the head written to esafetyd's own log.
extension IncidentLog {
    /// Where the chain stands before an empty log (just rotated): the rotated file's last
    /// line, else the value saved at the last reopen or close, else the start.
    static func chainBefore(emptyLog path: String) -> String {
        if let previous = lastChainValue(ofFile: path + ".1") { return previous }
        if let saved = try? FileSystem.readText(path + ".chain"), saved.count == 64, saved.allSatisfy(\.isHexDigit) {
            return saved
        }
        return HashChain.genesis
    }

    /// Lines another writer appended since our last write: passed to `foreignLine`, and the
    /// chain continues from the last of them. At most 1 MiB is read at a time.
    func readForeignLines() {
        let size = Self.size(of: fd)
        guard size > expectedSize, fd >= 0 else { return }
        let n = Int(min(size - expectedSize, 1 << 20))
        var bytes = [UInt8](repeating: 0, count: n)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n, off_t(expectedSize)) }
        guard got > 0, let lastNewline = bytes[0..<got].lastIndex(of: 0x0A) else { return }
        let text = String(decoding: bytes[0...lastNewline], as: UTF8.self)
        for line in text.split(separator: "\n") {
            foreignLine?(line)
            if let (_, chain) = HashChain.split(line) {
                lastChain = chain
                firstLineInFile = false
            }
        }
        expectedSize += Int64(lastNewline + 1)
    }

    /// The chain value of a file's last complete line, if it has one.
    static func lastChainValue(ofFile path: String) -> String? {
        let rfd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard rfd >= 0 else { return nil }
        defer { close(rfd) }
        return lastChainValue(fd: rfd)
    }

    static func lastChainValue(fd rfd: Int32) -> String? {
        var st = stat()
        guard fstat(rfd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 else { return nil }
        let size = Int(st.st_size)
        let n = min(size, 1 << 16)
        var tail = [UInt8](repeating: 0, count: n)
        guard tail.withUnsafeMutableBytes({ pread(rfd, $0.baseAddress, n, off_t(size - n)) }) == n else { return nil }
        var end = n
        while end > 0 && tail[end - 1] != 0x0A { end -= 1 }
        guard end > 0 else { return nil }
        var start = end - 1
        while start > 0 && tail[start - 1] != 0x0A { start -= 1 }
        return HashChain.split(Substring(String(decoding: tail[start..<(end - 1)], as: UTF8.self)))?.chain
    }

    /// Saves the chain value beside the log, so a file that is empty after rotation still
    /// continues the chain (written when the file is reopened and when the log closes).
    func saveChain() {
        var chain = lastChain
        chain.withUTF8 {
            try? FileSystem.writeAtomically(path + ".chain", bytes: UnsafeRawBufferPointer($0), mode: mode)
        }
    }

    /// Writes the chain's head to esafetyd's own log (the journal, which the service
    /// account cannot edit): hourly, before a reopen and at exit, when it moved. A hash
    /// chain cannot show that lines were removed from its end; `esafety verify --head`
    /// with a value from the journal can.
    func noteHead(_ noted: inout (chain: String, at: Double)) {
        noted.at = Clock.monotonic()
        guard lastChain != noted.chain else { return }
        noted.chain = lastChain
        logger.notice(
            "incident log chain head",
            metadata: ["incidents.file": "\(path)", "incidents.chain": "\(lastChain)"]
        )
    }
}
