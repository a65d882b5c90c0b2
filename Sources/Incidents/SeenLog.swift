import Glibc

/// One person's categorised requests kept as context, oldest first, as bytes in one buffer
/// of its own: keeping a request copies its host and URL in (no object per request, no
/// copy-on-write check), and cutting the oldest moves bytes (no reference count of a request
/// kept an hour ago, cold in memory, is touched). Requests come out as `IncidentSink.Seen`
/// values only when a `context` event is written. The buffer is the log's alone (not
/// copyable), freed with it.
///
/// Each request: its time (8 bytes), the lengths of its category (2), host (4) and URL (4;
/// all ones for none), then those bytes.
struct SeenLog: ~Copyable {
    private var base: UnsafeMutableRawPointer? = nil
    private var used = 0
    /// The buffer's size; `capacity` to tests.
    private(set) var capacity = 0
    /// Requests kept.
    private(set) var count = 0

    private static let header = 18
    private static let noURL = UInt32.max

    init() {}

    deinit { free(base) }

    var isEmpty: Bool { count == 0 }

    /// The bytes kept.
    private var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: used) }

    /// The oldest request's time.
    var firstTime: Double? {
        guard count > 0, let base else { return nil }
        return Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)))
    }

    mutating func append(time: Double, category: String, host: String, url: String?) {
        Self.withBytes(category) { c in
            Self.withBytes(host) { h in
                if let url {
                    Self.withBytes(url) { append(time: time, category: c, host: h, url: $0) }
                } else {
                    append(time: time, category: c, host: h, url: nil)
                }
            }
        }
    }

    /// A string's UTF-8 read in place (a copy, to make it contiguous, only for one that is
    /// not: `withUTF8` needs a mutable copy, three retains and releases per request).
    @inline(__always)
    private static func withBytes(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if s.utf8.withContiguousStorageIfAvailable(body) != nil { return }
        var copy = s
        copy.withUTF8(body)
    }

    private mutating func append(
        time: Double,
        category: UnsafeBufferPointer<UInt8>,
        host: UnsafeBufferPointer<UInt8>,
        url: UnsafeBufferPointer<UInt8>?
    ) {
        // (A category's name is far below this bound; a longer one is cut. A line, and so a
        // host or URL, is far below 4 GB.)
        let c = min(category.count, Int(UInt16.max))
        let (h, u) = (host.count, url?.count ?? 0)
        let need = used + Self.header + c + h + u
        if need > capacity {
            let grown = max(need, capacity * 2, 256)
            guard let moved = realloc(base, grown) else { fatalError("out of memory keeping a request as context") }
            (base, capacity) = (moved, grown)
        }
        let at = base! + used
        at.storeBytes(of: time.bitPattern.littleEndian, as: UInt64.self)
        (at + 8).storeBytes(of: UInt16(c).littleEndian, as: UInt16.self)
        (at + 10).storeBytes(of: UInt32(h).littleEndian, as: UInt32.self)
        (at + 14).storeBytes(of: (url == nil ? Self.noURL : UInt32(u)).littleEndian, as: UInt32.self)
        if c > 0 { memcpy(at + Self.header, category.baseAddress!, c) }
        if h > 0 { memcpy(at + Self.header + c, host.baseAddress!, h) }
        if u > 0 { memcpy(at + Self.header + c + h, url!.baseAddress!, u) }
        used = need
        count += 1
    }

    /// Drops the first `end` bytes (whole requests, `n` of them).
    private mutating func drop(_ n: Int, bytes end: Int) {
        guard n > 0, let base else { return }
        if end < used { memmove(base, base + end, used - end) }
        used -= end
        count -= n
        shrink()
    }

    /// A buffer grown by a few long requests (URLs of many KB) is not kept at that size for
    /// the short ones after: past 16 KB, when under a quarter is used, it is halved or more.
    private mutating func shrink() {
        guard capacity > 16_384, used < capacity / 4 else { return }
        let smaller = max(used * 2, 256)
        guard let moved = realloc(base, smaller) else { return }
        (base, capacity) = (moved, smaller)
    }

    /// One request's place: its time, and where its parts and the next request start.
    private struct Place {
        var time: Double
        var category: Range<Int>
        var host: Range<Int>
        var url: Range<Int>?
        var next: Int
    }

    private static func place(at offset: Int, in b: UnsafeRawBufferPointer) -> Place {
        let time = Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
        let c = Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: offset + 8, as: UInt16.self)))
        let h = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset + 10, as: UInt32.self)))
        let u = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset + 14, as: UInt32.self))
        let start = offset + Self.header
        let url = u == Self.noURL ? nil : (start + c + h)..<(start + c + h + Int(u))
        return Place(
            time: time,
            category: start..<(start + c),
            host: (start + c)..<(start + c + h),
            url: url,
            next: url?.upperBound ?? start + c + h
        )
    }

    /// Where the `n`th request starts (`n == count`: the end).
    private func offset(of n: Int) -> Int {
        var at = 0
        for _ in 0..<n { at = Self.place(at: at, in: bytes).next }
        return at
    }

    /// Removes the oldest `n` requests.
    mutating func removeFirst(_ n: Int) {
        let n = min(n, count)
        drop(n, bytes: offset(of: n))
    }

    /// Removes requests from the front, up to `limit` of them, while their time is `expired`;
    /// returns how many.
    @discardableResult
    mutating func removeFirst(upTo limit: Int, while expired: (Double) -> Bool) -> Int {
        var (n, at) = (0, 0)
        while n < min(limit, count) {
            let p = Self.place(at: at, in: bytes)
            guard expired(p.time) else { break }
            (n, at) = (n + 1, p.next)
        }
        drop(n, bytes: at)
        return n
    }

    /// Removes every request whose time is `expired`; returns how many.
    @discardableResult
    mutating func removeAll(where expired: (Double) -> Bool) -> Int {
        guard let base else { return 0 }
        // The requests kept move down over those removed, in order.
        var (removed, read, write) = (0, 0, 0)
        for _ in 0..<count {
            let p = Self.place(at: read, in: bytes)
            if expired(p.time) {
                removed += 1
            } else {
                if write != read { memmove(base + write, base + read, p.next - read) }
                write += p.next - read
            }
            read = p.next
        }
        (used, count) = (write, count - removed)
        shrink()
        return removed
    }

    /// The requests from the `from`th up to (not including) the `to`th, as values: those whose
    /// time `include` takes, up to `limit` of them.
    func requests(
        from: Int = 0,
        to: Int? = nil,
        limit: Int = .max,
        where include: (Double) -> Bool = { _ in true }
    ) -> [IncidentSink.Seen] {
        let (from, to) = (max(0, from), min(count, to ?? count))
        guard from < to else { return [] }
        let b = bytes
        func text(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: b[r]), as: UTF8.self) }
        var out: [IncidentSink.Seen] = []
        var at = offset(of: from)
        for _ in from..<to where out.count < limit {
            let p = Self.place(at: at, in: b)
            if include(p.time) {
                out.append(
                    IncidentSink.Seen(
                        time: p.time,
                        host: text(p.host),
                        category: text(p.category),
                        url: p.url.map(text)
                    )
                )
            }
            at = p.next
        }
        return out
    }
}
