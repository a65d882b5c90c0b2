import Classifier
import Glibc
import LogFormats
import Synchronization
import SystemSupport

/// `esafety replay`: log files through the same pipeline as the daemon.
public enum Replay {
    /// Reads `path` (`-` for standard input) in large chunks and runs every line through
    /// `pipeline`. Errors name the file.
    public static func run(
        path: String,
        pipeline: LinePipeline,
        maxLine: Int = 65536
    ) throws(FileSystem.Error) -> (SourceCounters, Int) {
        let fd: Int32 = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystem.Error(path: path, errno: errno) }
        defer { if fd != 0 { close(fd) } }
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        var total = 0
        var skipping = false
        var counters = SourceCounters()
        let now = Double(time(nil))
        while true {
            let n = read(fd, buffer.baseAddress! + filled, capacity - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.Error(path: path, errno: errno)
            }
            if n == 0 { break }
            total += n
            filled += n
            var start = 0
            if skipping {
                // Finish skipping an over-long line.
                if let nl = memchr(buffer.baseAddress!, 0x0A, filled) {
                    start = buffer.baseAddress!.distance(to: UnsafeMutableRawPointer(nl)) + 1
                    skipping = false
                } else {
                    filled = 0
                    continue
                }
            }
            let used = pipeline.processLines(
                UnsafeRawBufferPointer(rebasing: buffer[start..<filled]),
                arrival: now,
                maxLine: maxLine
            )
            let consumed = start + used
            let rest = filled - consumed
            if rest >= maxLine || rest == capacity {
                pipeline.countTooLong()
                skipping = true
                filled = 0
            } else {
                if rest > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + consumed, rest) }
                filled = rest
            }
        }
        if filled > 0 && !skipping {
            // A last line without a newline is still a line.
            pipeline.refreshGeneration()
            pipeline.processRecords(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]), arrival: now)
        }
        counters.add(pipeline.takeCounters())
        return (counters, total)
    }
}

/// `esafety replay`'s sink: writes each match as a JSON line, or nothing (the counts per
/// category come with the pipeline's counters).
public final class ReplaySink: MatchSink, @unchecked Sendable {
    private let output: BufferedOutput?

    public init(output: BufferedOutput?) { self.output = output }

    public func accept(_ m: MatchedRequest) { output?.write(m.json + "\n") }

    public func accept(raw: borrowing RawMatch) {
        // Without JSON output nothing of the match is needed.
        if output != nil { accept(raw.request) }
    }

    /// A resolver's block line for a match already written: `{"verdict": "blocked", ...}`.
    public func verdict(client: String, host: String, action: ProxyAction, time: Double) {
        guard let output else { return }
        var j = JSONText()
        j.beginObject()
        j.field("verdict", .string(action.description))
        if let blocker = action.blocker { j.field("blocked_by", .string(blocker)) }
        j.field("time", .string(Clock.rfc3339(time)))
        j.field("client", .string(client))
        j.field("host", .string(host))
        j.endObject()
        output.write(j.text + "\n")
    }
}

/// Buffered writes to a file descriptor (standard output), flushed at 64 KiB and on `flush`.
public final class BufferedOutput: @unchecked Sendable {
    private var buffer: [UInt8] = []
    private let fd: Int32

    public init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    public func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    public func flush() {
        var offset = 0
        buffer.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 {
                    if errno == EINTR { continue }
                    break
                }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}

extension MatchedRequest {
    /// One JSON object: `time`, `client`, `user`, `host`, `url`, `method`, `action`,
    /// `format`, `source`, `generation`, `categories`.
    public var json: String {
        var j = JSONText()
        j.beginObject()
        j.field("time", .string(Clock.rfc3339(time)))
        j.field("client", .string(client))
        j.field("user", user)
        j.field("host", .string(host))
        j.field("url", url)
        j.field("method", method)
        j.field("action", .string(action.description))
        if let blocker = action.blocker { j.field("blocked_by", .string(blocker)) }
        j.field("format", .string(format.description))
        j.field("source", .string(source))
        j.field("generation", .int(generation))
        j.key("categories")
        j.beginArray()
        for c in categories { c.write(to: &j) }
        j.endArray()
        j.endObject()
        return j.text
    }
}
