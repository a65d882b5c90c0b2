import LogFormats

/// Pairs a resolver's block line with its query line, so that a blocked lookup is one request
/// (blocked), never two. Resolvers log the query first and the block after it (unbound and
/// BIND `rpz`, dnsmasq `config`, Pi-hole `gravity blocked`); when only the block line is
/// logged, it is the request. Kept per pipeline (one source's lines, in order): the last
/// `capacity` DNS lines, by hashes of name and client, within `window` seconds of log time.
struct ResolverPairing {
    struct Entry {
        var name: UInt64 = 0
        /// 0: the line did not name its client (dnsmasq `config` without `log-queries=extra`).
        var client: UInt64 = 0
        var time = 0.0
        var isBlock = false
        var paired = true
        /// A query that matched a category: its client and normalised host are in the slot's
        /// `texts` (`clientLength` bytes, then the host), for the verdict.
        var matched = false
        var clientLength = 0
    }

    static let capacity = 64
    static let window = 10.0
    /// Plain values only: scanning the ring copies no reference.
    var ring = [Entry](repeating: Entry(), count: capacity)
    /// Per slot, a matched query's client and normalised host, kept as bytes in buffers reused
    /// slot by slot: Strings are made only for a verdict, not for every matched lookup.
    var texts = [[UInt8]](repeating: [], count: capacity)
    /// The most a slot's buffer keeps between lines (an address and a host are far shorter).
    static let keptCapacity = 1024
    var next = 0
    /// The log time of the latest block line not yet paired (queries look back only then).
    var lastBlock = -Double.infinity

    /// FNV-1a over the name, lower-cased, without a trailing dot.
    static func hash(name b: UnsafeRawBufferPointer) -> UInt64 {
        var end = b.count
        if end > 0, b[end - 1] == UInt8(ascii: ".") { end -= 1 }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<end {
            var c = b[i]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            h = (h ^ UInt64(c)) &* 0x100_0000_01b3
        }
        return h
    }

    static func hash(client b: UnsafeRawBufferPointer) -> UInt64 {
        guard !b.isEmpty else { return 0 }
        var h: UInt64 = 0x84_2222_5cbf_29ce
        for c in b { h = (h ^ UInt64(c)) &* 0x100_0000_01b3 }
        return h | 1
    }

    /// A query line: true when it is the query of a block line already counted (absorbed).
    /// Only a block line that named this same client may absorb it: one that names nobody
    /// (dnsmasq without `extra`, Pi-hole) cannot say whose lookup it was, and absorbing another
    /// pupil's query there would lose that pupil's request.
    mutating func absorbQuery(name: UInt64, client: UInt64, time: Double) -> Bool {
        guard client != 0, time - lastBlock <= Self.window else { return false }
        var k = next
        for _ in 0..<Self.capacity {
            k = k == 0 ? Self.capacity - 1 : k - 1
            let e = ring[k]
            guard e.isBlock, !e.paired, e.name == name, e.client == client,
                abs(time - e.time) <= Self.window
            else { continue }
            ring[k].paired = true
            return true
        }
        return false
    }

    /// A block line: the query line it answers, if one was seen (marked paired; its slot).
    mutating func pairBlock(name: UInt64, client: UInt64, time: Double) -> Int? {
        var k = next
        for _ in 0..<Self.capacity {
            k = k == 0 ? Self.capacity - 1 : k - 1
            let e = ring[k]
            guard !e.isBlock, !e.paired, e.name == name, client == 0 || e.client == client,
                abs(time - e.time) <= Self.window
            else { continue }
            ring[k].paired = true
            return k
        }
        return nil
    }

    /// The client and host of the matched query in slot `k`.
    func matched(_ k: Int) -> (client: String, host: String)? {
        guard ring[k].matched else { return nil }
        return texts[k].withUnsafeBufferPointer {
            (
                String(decoding: UnsafeBufferPointer(rebasing: $0[..<ring[k].clientLength]), as: UTF8.self),
                String(decoding: UnsafeBufferPointer(rebasing: $0[ring[k].clientLength...]), as: UTF8.self)
            )
        }
    }

    /// Remembers a line; a matched query's client and normalised host are copied.
    mutating func remember(
        _ e: Entry,
        client: UnsafeRawBufferPointer? = nil,
        host: UnsafeRawBufferPointer? = nil
    ) {
        ring[next] = e
        if e.matched, let client, let host {
            // A buffer grown by one long line (a hostile client field) is not kept for the
            // short ones after it: each slot holds at most `keptCapacity` between long lines.
            if texts[next].capacity > Self.keptCapacity && client.count + host.count <= Self.keptCapacity {
                texts[next] = []
            }
            texts[next].removeAll(keepingCapacity: true)
            texts[next].append(contentsOf: client)
            texts[next].append(contentsOf: host)
            ring[next].clientLength = client.count
        } else {
            ring[next].matched = false
        }
        next = next + 1 == Self.capacity ? 0 : next + 1
        if e.isBlock { lastBlock = e.time }
    }
}
