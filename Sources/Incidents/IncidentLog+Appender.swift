import CShims
import Classifier
import Foundation
import Glibc
import Logging
import Synchronization
import SystemSupport

/// The coordinator's tool appends its workflow events to the log itself, under the file's
/// lock, rather than handing them to esafetyd (the one-writer pattern of OpenBSD's logger).
///
/// Why: the coordinator must be able to act while esafetyd is stopped, crashed or restarting
/// (an overdue critical incident cannot wait for the daemon), so a fallback writer would be
/// needed anyway, and two paths are harder to get right than one. The lock serialises the
/// two writers, the tool seals its lines onto the chain after the last line whoever wrote it,
/// and esafetyd's writer reads the tool's lines (`foreignLine`) and continues the chain from
/// them: one chain, one file, whichever process wrote last. It also keeps esafetyd's control
/// socket read-only for incidents: the daemon, which has no network, takes no writes from it.
extension IncidentLog {
    public struct ActFailure: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// 1: refused (a workflow rule, an unknown id); 2: cannot (permissions, no log).
        public var status: Int32
    }

    /// Appends workflow events to a log the daemon may be writing at the same moment: the
    /// file is locked, the incidents are read as they stand, `decide` returns the event
    /// lines (or refuses), and they are sealed onto the chain after the last line, whoever
    /// wrote it, and fsync'd before the lock is released.
    public static func appendEvents(
        path: String,
        group: String?,
        load: (() -> [IncidentView]?)? = nil,
        _ decide: ([IncidentView]) throws(Workflow.Refusal) -> [ActionRecord]
    ) throws(ActFailure) {
        // O_NOFOLLOW: a link put where the log should be must not send a child's record elsewhere.
        let fd = Glibc.open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let e = errno
            switch e {
            case ENOENT:
                throw ActFailure(
                    description: "\(path): no incident log here (see `incident_log` in esafetyd's configuration)",
                    status: 2
                )
            case ELOOP:
                throw ActFailure(
                    description: "\(path) is a symbolic link, not the incident log; refusing to write through it",
                    status: 2
                )
            case EACCES, EPERM, EROFS:
                throw ActFailure(
                    description:
                        "you may not act on incidents: \(path) can be written only by \(Self.ownerName(path)); "
                        + "as a member of the group \(group ?? "esafety-admin"), run the same command with "
                        + "`sudo -u \(Self.ownerName(path))` in front",
                    status: 2
                )
            default: throw ActFailure(description: "\(path): cannot open: \(String(cString: strerror(e)))", status: 2)
            }
        }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        // A writer killed mid-write (the daemon, or another `esafety incidents`) can leave a
        // partial last line; the events go after the last whole line, not joined to it.
        cutTornTail(fd: fd)
        // The incidents as they stand under the lock: from the caller's index (brought up to
        // date here), or a full read of the log.
        let views: [IncidentView]
        if let indexed = load?() {
            views = indexed
        } else {
            do { views = try IncidentStore.load(path, group: group, context: false) } catch {
                throw ActFailure(description: error.description, status: 2)
            }
        }
        let objects: [String]
        do { objects = try decide(views).map { LogRecord.action($0).text } } catch {
            throw ActFailure(description: error.description, status: 1)
        }
        guard !objects.isEmpty else { return }
        var previous: String
        var first = false
        if size(of: fd) > 0 {
            guard let chain = lastChainValue(fd: fd) else {
                throw ActFailure(
                    description: "\(path): the last line has no chain value; run `esafety verify` before acting",
                    status: 2
                )
            }
            previous = chain
        } else {
            first = true
            previous = chainBefore(emptyLog: path)
        }
        var text: [UInt8] = []
        for object in objects {
            var obj = object
            if first && previous != HashChain.genesis {
                obj = String(decoding: obj.utf8.dropLast(), as: UTF8.self) + ",\"prev\":\"\(previous)\"}"
            }
            first = false
            previous = HashChain.seal(obj, previous: previous, appendingTo: &text)
        }
        let before = size(of: fd)
        let n = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n != text.count {
            let e = n < 0 ? errno : ENOSPC
            if n > 0 { ftruncate(fd, off_t(before)) }
            throw ActFailure(
                description: "\(path): cannot write: \(String(cString: strerror(e))); nothing was recorded",
                status: 2
            )
        }
        fsync(fd)
    }

    /// The account that owns the log (the service account), for the refusal's advice.
    static func ownerName(_ path: String) -> String {
        Identity.owner(of: path).map(Identity.name(of:)) ?? "esafety"
    }
}
