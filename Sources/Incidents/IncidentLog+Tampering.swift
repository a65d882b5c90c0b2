import CShims
import Classifier
import Foundation
import Glibc
import Logging
import Synchronization
import SystemSupport

/// What esafetyd does when the log is changed behind its back: a deleted file's lines are
/// copied out (it is still open), and `truncated` and `lost` events record what happened.
extension IncidentLog {
    /// Copies a deleted log (still open) to `LOG.recovered-<UTC time>` beside it, with the
    /// log's mode and group; returns that path, or nil when the copy failed.
    func recoverDeleted() -> String? {
        let stamp = Clock.rfc3339(Clock.now()).filter { $0 != "-" && $0 != ":" }.prefix(15)  // 20261121T201500
        let target = "\(path).recovered-\(stamp)Z"
        let out = Glibc.open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard out >= 0 else { return nil }
        defer { close(out) }
        fchmod(out, mode)
        if let group { FileSystem.setGroup(fd: out, group) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n == 0 { break }
            guard n > 0, buffer.withUnsafeBytes({ write(out, $0.baseAddress, n) }) == n else { return nil }
            offset += off_t(n)
        }
        return fsync(out) == 0 ? target : nil
    }

    /// `{"event":"lost","count":N}`: medium, low and info records the bounded queue could not
    /// keep while the log could not be written (`error`, the last write's failure); the first
    /// line written when writing resumes, once, with the exact count.
    static func lostEvent(
        count: Int,
        dropped: DroppedIncidents = DroppedIncidents(),
        reason error: String? = nil
    )
        -> [UInt8]
    {
        LogRecord.lost(
            LostRecord(
                time: Clock.rfc3339(Clock.now()),
                count: count,
                reason: "the incident log could not be written (\(error ?? "unknown error")) and the queue was full: "
                    + "the medium, low and info records beyond it were dropped (critical and high ones never are)"
                    + (dropped.isEmpty
                        ? "" : "; the incidents among them are in `incidents`, per person, category and severity"),
                incidents: dropped.summaries.isEmpty ? nil : dropped.summaries,
                untallied: dropped.untallied > 0 ? dropped.untallied : nil
            )
        ).bytes
    }

    /// `{"event":"truncated",...}`: esafetyd found the file shorter than it left it, or
    /// deleted; `last_chain` is the chain value of the last line it had written there, and
    /// `recovered` the copy it saved of a deleted file. `esafety verify` fails at this line.
    static func truncatedEvent(
        size: Int64,
        expected: Int64,
        lastChain: String,
        recovered: String?,
        reason: String
    ) -> [UInt8] {
        LogRecord.truncated(
            TruncatedRecord(
                time: Clock.rfc3339(Clock.now()),
                size: Int(size),
                expectedSize: Int(expected),
                lastChain: lastChain,
                recovered: recovered,
                reason: reason
            )
        ).bytes
    }
}
