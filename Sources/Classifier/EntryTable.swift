import Glibc

/// Where a list entry came from: category, list file and line.
///
/// Eight bytes, stored once per (entry, category). The top bit of `lineAndFlags` marks an
/// entry that matches subdomains only (`*.example.com`).
@frozen
public struct Rule: Sendable, Equatable, BitwiseCopyable {
    public var category: UInt16
    public var file: UInt16
    var lineAndFlags: UInt32

    static let subdomainsOnlyFlag: UInt32 = 1 << 31

    public init(category: UInt16, file: UInt16, line: UInt32, subdomainsOnly: Bool = false) {
        self.category = category
        self.file = file
        self.lineAndFlags = (line & ~Self.subdomainsOnlyFlag) | (subdomainsOnly ? Self.subdomainsOnlyFlag : 0)
    }

    public var line: Int { Int(lineAndFlags & ~Self.subdomainsOnlyFlag) }
    var subdomainsOnly: Bool { lineAndFlags & Self.subdomainsOnlyFlag != 0 }
}

/// Hashing shared by the builder and the lookups: FNV-1a per byte, finished with
/// MurmurHash3's fmix64. Domain keys are hashed from the last byte to the first, so a
/// lookup extends one running hash label by label from the right.
public enum KeyHash {
    public static let seed: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always)
    public static func step(_ h: UInt64, _ byte: UInt8) -> UInt64 {
        (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    @inline(__always)
    public static func finish(_ h: UInt64) -> UInt64 {
        var k = h
        k ^= k >> 33
        k &*= 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k &*= 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }

    /// Hash of `bytes` read right to left (domain keys).

    public static func reversed(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = seed
        var i = bytes.count
        while i > 0 {
            i -= 1
            h = step(h, bytes[i])
        }
        return finish(h)
    }

    /// Hash of `bytes` read left to right (URL keys).

    public static func forward(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = seed
        for b in bytes { h = step(h, b) }
        return finish(h)
    }
}

/// An immutable table from keys (domains, or host+path URL prefixes) to the rules that
/// list them: every distinct key stored once, whatever the number of categories.
///
/// Layout (flat buffers, no nodes): an open-addressing slot array of
/// `fingerprint << 32 | keyIndex + 1`, a byte pool of keys, and per key a range of
/// `Rule`s. About 10.7 bytes of slots per key at the 0.75 load factor, plus 8 bytes of
/// offsets, the key's bytes, and 8 bytes per rule.
///
/// `@unchecked Sendable`: the buffers are written once in `init` and only read after;
/// the class owns and frees them. A class, not a struct, so that lookups through a
/// `let` reference never retain five arrays per call.
public final class EntryTable: @unchecked Sendable {
    let slots: UnsafeMutableBufferPointer<UInt64>
    let keyOffsets: UnsafeMutableBufferPointer<UInt32>  // keyCount + 1
    let pool: UnsafeMutableBufferPointer<UInt8>
    let ruleStart: UnsafeMutableBufferPointer<UInt32>  // keyCount + 1
    let rulesBuffer: UnsafeMutableBufferPointer<Rule>
    public let keyCount: Int

    init(slots: [UInt64], keyOffsets: [UInt32], pool: [UInt8], ruleStart: [UInt32], rules: [Rule]) {
        func own<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
            _ = b.initialize(from: a)
            return UnsafeMutableBufferPointer(rebasing: b[0..<a.count])
        }
        self.slots = own(slots)
        self.keyOffsets = own(keyOffsets)
        self.pool = own(pool)
        self.ruleStart = own(ruleStart)
        self.rulesBuffer = own(rules)
        self.keyCount = keyOffsets.count - 1
    }

    /// Takes ownership of buffers allocated with `UnsafeMutableBufferPointer.allocate`
    /// (the snapshot loader copies file sections straight into them).
    init(
        owning slots: UnsafeMutableBufferPointer<UInt64>,
        keyOffsets: UnsafeMutableBufferPointer<UInt32>,
        pool: UnsafeMutableBufferPointer<UInt8>,
        ruleStart: UnsafeMutableBufferPointer<UInt32>,
        rules: UnsafeMutableBufferPointer<Rule>
    ) {
        self.slots = slots
        self.keyOffsets = keyOffsets
        self.pool = pool
        self.ruleStart = ruleStart
        self.rulesBuffer = rules
        self.keyCount = keyOffsets.count - 1
    }

    deinit {
        slots.baseAddress?.deallocate()
        keyOffsets.baseAddress?.deallocate()
        pool.baseAddress?.deallocate()
        ruleStart.baseAddress?.deallocate()
        rulesBuffer.baseAddress?.deallocate()
    }

    /// The rules, as an array (for serialisation and tools; not the hot path).
    public var rules: [Rule] { Array(rulesBuffer) }
    var slotArray: [UInt64] { Array(slots) }
    var keyOffsetArray: [UInt32] { Array(keyOffsets) }
    var poolArray: [UInt8] { Array(pool) }
    var ruleStartArray: [UInt32] { Array(ruleStart) }

    /// The slot index where the probe for `hash` starts.
    @inline(__always)
    func home(_ hash: UInt64) -> Int { Int(hash.multipliedFullWidth(by: UInt64(slots.count)).high) }

    /// Finds the key with hash `hash` (from `KeyHash`) whose bytes equal `key`.
    /// - Complexity: O(1) expected; one slot cache line, one key compare on a hit.
    @inline(__always)
    public func find(hash: UInt64, key: UnsafeBufferPointer<UInt8>) -> Int? {
        find(hash: hash, from: home(hash), key: key)
    }

    @inline(__always)
    func find(hash: UInt64, from start: Int, key: UnsafeBufferPointer<UInt8>) -> Int? {
        let fingerprint = UInt32(truncatingIfNeeded: hash)
        var i = start
        while true {
            let slot = slots[i]
            if slot == 0 { return nil }
            if UInt32(truncatingIfNeeded: slot >> 32) == fingerprint {
                let k = Int(UInt32(truncatingIfNeeded: slot)) - 1
                if keyEquals(k, key) { return k }
            }
            i += 1
            if i == slots.count { i = 0 }
        }
    }

    @inline(__always)
    func keyEquals(_ k: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = Int(keyOffsets[k])
        let end = Int(keyOffsets[k + 1])
        guard end - start == key.count else { return false }
        guard let a = pool.baseAddress, let b = key.baseAddress else { return key.isEmpty }
        return memcmp(a + start, b, key.count) == 0
    }

    /// The rules of key `k`, as a range of indices into `rules`.
    @inline(__always)
    func ruleRange(_ k: Int) -> Range<Int> { Int(ruleStart[k])..<Int(ruleStart[k + 1]) }

    /// The text of key `k`.
    public func key(_ k: Int) -> String {
        String(
            decoding: UnsafeBufferPointer(rebasing: pool[Int(keyOffsets[k])..<Int(keyOffsets[k + 1])]),
            as: UTF8.self
        )
    }

    /// The key that holds rule `r` (binary search over `ruleStart`).
    func keyIndex(ofRule r: Int) -> Int {
        var lo = 0
        var hi = keyCount
        while lo + 1 < hi {
            let mid = (lo + hi) / 2
            if Int(ruleStart[mid]) <= r { lo = mid } else { hi = mid }
        }
        return lo
    }

    /// Bytes held by the table (for `bytes per domain`).
    public var memoryBytes: Int {
        slots.count * 8 + keyOffsets.count * 4 + pool.count + ruleStart.count * 4 + rulesBuffer.count * 8
    }
}

/// Collects keys and rules, then compiles an `EntryTable`. Keys are appended to one
/// byte pool; `compile` sorts by hash, merges equal keys and reports duplicates.
struct EntryTableBuilder {
    private var pool: [UInt8] = []
    private var records: [(hash: UInt64, offset: UInt32, length: UInt16, rule: Rule)] = []
    let reversedHash: Bool

    init(reversedHash: Bool) { self.reversedHash = reversedHash }

    var count: Int { records.count }

    mutating func reserve(_ n: Int) {
        records.reserveCapacity(n)
        pool.reserveCapacity(n * 20)
    }

    mutating func add(_ key: UnsafeBufferPointer<UInt8>, rule: Rule) {
        let hash = reversedHash ? KeyHash.reversed(key) : KeyHash.forward(key)
        let offset = UInt32(pool.count)
        pool.append(contentsOf: key)
        records.append((hash, offset, UInt16(key.count), rule))
    }

    mutating func add(_ key: String, rule: Rule) {
        var key = key
        key.withUTF8 { add($0, rule: rule) }
    }

    /// A duplicate (same key, same category) found while compiling.
    struct Duplicate {
        var first: Rule
        var again: Rule
        var key: String
    }

    func compile() -> (EntryTable, [Duplicate]) {
        let n = records.count
        var order = Array(0..<n)
        pool.withUnsafeBufferPointer { pool in
            order.sort { a, b in
                let ra = records[a]
                let rb = records[b]
                if ra.hash != rb.hash { return ra.hash < rb.hash }
                let c = compareBytes(pool, ra.offset, ra.length, rb.offset, rb.length)
                if c != 0 { return c < 0 }
                return a < b
            }
        }
        var newPool: [UInt8] = []
        newPool.reserveCapacity(pool.count)
        var keyOffsets: [UInt32] = [0]
        var ruleStart: [UInt32] = [0]
        var rules: [Rule] = []
        var hashes: [UInt64] = []
        keyOffsets.reserveCapacity(n + 1)
        ruleStart.reserveCapacity(n + 1)
        rules.reserveCapacity(n)
        hashes.reserveCapacity(n)
        var duplicates: [Duplicate] = []
        pool.withUnsafeBufferPointer { pool in
            var i = 0
            while i < n {
                let first = records[order[i]]
                var j = i
                var groupRules: [Rule] = []
                while j < n {
                    let r = records[order[j]]
                    if r.hash != first.hash || compareBytes(pool, r.offset, r.length, first.offset, first.length) != 0 {
                        break
                    }
                    if r.rule.category == Self.markerCategory {
                        j += 1
                        continue
                    }
                    if let previous = groupRules.first(where: {
                        $0.category == r.rule.category && $0.subdomainsOnly == r.rule.subdomainsOnly
                    }) {
                        let text = String(
                            decoding: UnsafeBufferPointer(
                                rebasing: pool[Int(r.offset)..<Int(r.offset) + Int(r.length)]
                            ),
                            as: UTF8.self
                        )
                        duplicates.append(Duplicate(first: previous, again: r.rule, key: text))
                    } else {
                        groupRules.append(r.rule)
                    }
                    j += 1
                }
                newPool.append(
                    contentsOf: UnsafeBufferPointer(
                        rebasing: pool[Int(first.offset)..<Int(first.offset) + Int(first.length)]
                    )
                )
                keyOffsets.append(UInt32(newPool.count))
                rules.append(contentsOf: groupRules)
                ruleStart.append(UInt32(rules.count))
                hashes.append(first.hash)
                i = j
            }
        }
        let keyCount = hashes.count
        let capacity = max(1, Int((Double(keyCount) / 0.75).rounded(.up)) + 1)
        var slots = [UInt64](repeating: 0, count: capacity)
        for (k, hash) in hashes.enumerated() {
            var i = Int(hash.multipliedFullWidth(by: UInt64(capacity)).high)
            while slots[i] != 0 {
                i += 1
                if i == capacity { i = 0 }
            }
            slots[i] = UInt64(UInt32(truncatingIfNeeded: hash)) << 32 | UInt64(k + 1)
        }
        return (
            EntryTable(slots: slots, keyOffsets: keyOffsets, pool: newPool, ruleStart: ruleStart, rules: rules),
            duplicates
        )
    }

    /// Category number used for keys that only mark a host as having URL entries.
    static let markerCategory: UInt16 = .max
}

@inline(__always)
private func compareBytes(
    _ pool: UnsafeBufferPointer<UInt8>,
    _ ao: UInt32,
    _ al: UInt16,
    _ bo: UInt32,
    _ bl: UInt16
) -> Int {
    let n = Int(min(al, bl))
    var i = 0
    while i < n {
        let a = pool[Int(ao) + i]
        let b = pool[Int(bo) + i]
        if a != b { return a < b ? -1 : 1 }
        i += 1
    }
    return Int(al) - Int(bl)
}
