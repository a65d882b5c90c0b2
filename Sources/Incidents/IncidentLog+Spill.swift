import Foundation
import Glibc
import Logging
import SystemSupport

/// Records that could not be written when esafetyd stops (a full disk) are not dropped: they
/// go to a spill file (`incidents.spill` in the state folder, else `LOG.spill` beside the log),
/// one record a line, not yet sealed, and the next start queues them before anything else and
/// removes the file once they are in the log. If no spill file can be written either, a
/// critical line in esafetyd's own log says exactly how many records were lost.
extension IncidentLog {
    var spillPaths: [String] {
        (spillDirectory.map { [$0 + "/incidents.spill"] } ?? []) + [path + ".spill"]
    }

    /// At stop: saves what is still queued (and a count of records already dropped).
    func spillLeftovers() {
        let (queue, lost, dropped) = state.withLock { s -> ([([UInt8], Durability)], Int, DroppedIncidents) in
            defer {
                s.queue.removeAll()
                s.lost = 0
                s.dropped = DroppedIncidents()
            }
            return (s.queue, s.lost, s.dropped)
        }
        guard !queue.isEmpty || lost > 0 else { return }
        var text: [UInt8] = []
        if lost > 0 {
            text += Self.lostEvent(count: lost, dropped: dropped, reason: health.withLock { $0.lastError }) + [0x0A]
        }
        for (object, _) in queue { text += object + [0x0A] }
        for target in spillPaths {
            // Appended to any spill a failed earlier start left, never over it.
            let fd = Glibc.open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode)
            guard fd >= 0 else { continue }
            let before = Self.size(of: fd)
            let ok = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
            // A spill cut short (the disk filled again) is taken back whole: no torn record.
            if !ok { ftruncate(fd, off_t(before)) }
            close(fd)
            if ok {
                logger.critical(
                    "stopping with incidents the log could not take; saved, to be written at the next start",
                    metadata: ["spill": "\(target)", "records": "\(queue.count)", "lost.before": "\(lost)"]
                )
                return
            }
        }
        logger.critical(
            "INCIDENTS LOST AT STOP: the incident log and every spill file could not be written",
            metadata: [
                "incidents.lost": "\(queue.count + lost)", "spill": "\(spillPaths)",
                "error": "\(health.withLock { $0.lastError ?? "" })",
            ]
        )
    }

    /// At open: queues the records of any spill file, first, to be sealed into the chain.
    func takeSpill() {
        var records: [[UInt8]] = []
        var paths: [String] = []
        for p in spillPaths {
            guard let bytes = try? FileSystem.readBytes(p, limit: 1 << 30) else { continue }
            paths.append(p)
            // Whole lines only: a last line without its newline was never finished.
            let whole = bytes.lastIndex(of: 0x0A).map { bytes[...$0] } ?? []
            for line in whole.split(separator: 0x0A) where line.first == UInt8(ascii: "{") {
                records.append(Array(line))
            }
        }
        guard !paths.isEmpty else { return }
        if records.isEmpty {
            for p in paths { unlink(p) }
            return
        }
        state.withLock { s in s.queue.insert(contentsOf: records.map { ($0, Durability.now) }, at: 0) }
        spilled = paths
        logger.notice(
            "records saved at the last stop are queued first",
            metadata: ["spill": "\(paths)", "records": "\(records.count)"]
        )
    }
}
