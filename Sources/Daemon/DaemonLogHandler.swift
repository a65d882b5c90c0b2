import Classifier
import Glibc
import LogFormats
import Logging
import SystemSupport

/// esafetyd's own log, one line per event on standard error.
///
/// Under systemd (`JOURNAL_STREAM` names the descriptor standard error is), each line
/// starts with its syslog priority (`<2>` for critical, `<4>` for warning...), which
/// journald keeps as the entry's priority, so `journalctl -p err` and whatever watches
/// the journal see a failing incident log for what it is; the journal has its own
/// timestamps, so the line has none. Elsewhere the line starts with an RFC 3339 time
/// and the level. Control characters in messages and values are escaped, so nothing
/// logged can start a line (or a priority) of its own.
public struct DaemonLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let journal: Bool

    public init(label: String) {
        self.label = label
        self.journal = Self.isJournal(fd: 2, environment: getenv("JOURNAL_STREAM").map { String(cString: $0) })
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = Self.format(
            level: event.level,
            label: label,
            message: event.message.description,
            metadata: metadata.merging(event.metadata ?? [:]) { $1 },
            source: event.source,
            journal: journal,
            time: Clock.now()
        )
        line.withUTF8 { b in
            var at = 0
            while at < b.count {
                let n = write(2, b.baseAddress! + at, b.count - at)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                at += n
            }
        }
    }

    /// One line: `<priority>level label: key=value ... [source] message` for the journal,
    /// `time level label: ...` otherwise.
    static func format(
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata,
        source: String,
        journal: Bool,
        time: Double
    ) -> String {
        var line = journal ? "<\(priority(level))>" : Clock.rfc3339(time) + " "
        line += "\(level) \(label):"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        line += " [\(source)] \(message)"
        return Terminal.escape(line) + "\n"
    }

    /// syslog(3) priorities, as sd-daemon(3) prefixes them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Whether `fd` is the stream systemd connected to the journal: `JOURNAL_STREAM` is
    /// `device:inode` of that stream (systemd.exec(5)), and is inherited by children whose
    /// standard error went elsewhere, so the descriptor itself is compared.
    static func isJournal(fd: Int32, environment value: String?) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }
}
