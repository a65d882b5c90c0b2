import Glibc

/// One person's categorised requests kept as context, oldest first, as bytes in one buffer:
/// keeping a request copies its host and URL in (no object per request), and cutting the
/// oldest moves bytes (no reference count of a request kept an hour ago, cold in memory, is
/// touched). Requests come out as `IncidentSink.Seen` values only when a `context` event is
/// written.
///
/// Each request: its time (8 bytes), the lengths of its category (2), host (4) and URL (4;
/// all ones for none), then those bytes.
struct SeenLog {
    private(set) var bytes: [UInt8] = []
    /// Requests kept.
    private(set) var count = 0

    private static let header = 18
    private static let noURL = UInt32.max

    var isEmpty: Bool { count == 0 }

    /// The oldest request's time.
    var firstTime: Double? {
        guard count > 0 else { return nil }
        return bytes.withUnsafeBytes { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
    }

    mutating func append(time: Double, category: String, host: String, url: String?) {
        var (category, host, url) = (category, host, url)
        category.withUTF8 { c in
            host.withUTF8 { h in
                if url == nil {
                    append(time: time, category: c, host: h, url: nil)
                } else {
                    url!.withUTF8 { append(time: time, category: c, host: h, url: $0) }
                }
            }
        }
    }

    private mutating func append(
        time: Double,
        category: UnsafeBufferPointer<UInt8>,
        host: UnsafeBufferPointer<UInt8>,
        url: UnsafeBufferPointer<UInt8>?
    ) {
        // (A category's name and a host are far below these bounds; a longer one is cut.)
        func cut(_ b: UnsafeBufferPointer<UInt8>, _ limit: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(b)[..<min(b.count, limit)])
        }
        let c = cut(category, Int(UInt16.max))
        let h = cut(host, Int(Int32.max))
        let u = url.map { cut($0, Int(Int32.max)) }
        withUnsafeBytes(of: time.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(c.count).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(h.count).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: (u.map { UInt32($0.count) } ?? Self.noURL).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: c)
        bytes.append(contentsOf: h)
        if let u { bytes.append(contentsOf: u) }
        count += 1
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
        bytes.withUnsafeBytes { b in
            var at = 0
            for _ in 0..<n { at = Self.place(at: at, in: b).next }
            return at
        }
    }

    /// Removes the oldest `n` requests.
    mutating func removeFirst(_ n: Int) {
        guard n > 0 else { return }
        if n >= count {
            bytes.removeAll(keepingCapacity: true)
            count = 0
            return
        }
        bytes.removeSubrange(0..<offset(of: n))
        count -= n
    }

    /// Removes requests from the front, up to `limit` of them, while their time is `expired`;
    /// returns how many.
    @discardableResult
    mutating func removeFirst(upTo limit: Int, while expired: (Double) -> Bool) -> Int {
        let (n, end) = bytes.withUnsafeBytes { b -> (Int, Int) in
            var (n, at) = (0, 0)
            while n < min(limit, count) {
                let p = Self.place(at: at, in: b)
                guard expired(p.time) else { break }
                (n, at) = (n + 1, p.next)
            }
            return (n, at)
        }
        if n > 0 {
            bytes.removeSubrange(0..<end)
            count -= n
        }
        return n
    }

    /// Removes every request whose time is `expired`; returns how many.
    @discardableResult
    mutating func removeAll(where expired: (Double) -> Bool) -> Int {
        let n = count
        let (removed, end) = bytes.withUnsafeMutableBytes { b -> (Int, Int) in
            // The requests kept move down over those removed, in order.
            var (removed, read, write) = (0, 0, 0)
            for _ in 0..<n {
                let p = Self.place(at: read, in: UnsafeRawBufferPointer(b))
                if expired(p.time) {
                    removed += 1
                } else {
                    if write != read {
                        memmove(b.baseAddress! + write, b.baseAddress! + read, p.next - read)
                    }
                    write += p.next - read
                }
                read = p.next
            }
            return (removed, write)
        }
        bytes.removeSubrange(end...)
        count -= removed
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
        let start = offset(of: from)
        var out: [IncidentSink.Seen] = []
        bytes.withUnsafeBytes { b in
            func text(_ r: Range<Int>) -> String {
                String(decoding: UnsafeRawBufferPointer(rebasing: b[r]), as: UTF8.self)
            }
            var at = start
            for _ in from..<to where out.count < limit {
                let p = Self.place(at: at, in: b)
                if include(p.time) {
                    let seen = IncidentSink.Seen(
                        time: p.time,
                        host: text(p.host),
                        category: text(p.category),
                        url: p.url.map(text)
                    )
                    out.append(seen)
                }
                at = p.next
            }
        }
        return out
    }
}
