import SystemSupport

/// Compiled lists in one binary file that loads without parsing any list text.
///
/// Layout (little-endian):
/// ```
/// 0   8  magic "ESAFSNAP"
/// 8   4  format version (1)
/// 12  4  byte-order mark 0x01020304
/// 16  8  payload length
/// 24  8  payload checksum (64-bit, see `Snapshot.checksum`)
/// 32  .. payload: sections written by `Snapshot.Writer`
/// ```
/// A file with another magic, version or byte order, a short file, or a checksum
/// mismatch is refused with a `SnapshotError` that says which.
public enum Snapshot {
    static let magic: [UInt8] = Array("ESAFSNAP".utf8)
    public static let version: UInt32 = 1
    static let headerSize = 32

    public static func encode(_ lists: CompiledLists) -> [UInt8] {
        var w = Writer()
        w.u32(UInt32(lists.categories.count))
        for c in lists.categories {
            w.string(c.name)
            w.string(c.displayName)
            w.string(c.description)
            w.u8(c.severity.rawValue)
            w.u8(c.locked ? 1 : 0)
            w.u8(c.isAllowlist ? 1 : 0)
            w.string(c.canary ?? "")
            w.u8(c.canary == nil ? 0 : 1)
        }
        w.u32(UInt32(lists.files.count))
        for f in lists.files { w.string(f) }
        w.u32(UInt32(lists.sources.count))
        for s in lists.sources { w.string(s) }
        for c in lists.counts {
            w.u64(UInt64(c.domains))
            w.u64(UInt64(c.urls))
            w.u64(UInt64(c.patterns))
        }
        for table in [lists.domains, lists.urls] {
            w.array(table.slotArray)
            w.array(table.keyOffsetArray)
            w.array(table.poolArray)
            w.array(table.ruleStartArray)
            w.array(table.rules)
        }
        w.u32(UInt32(lists.patterns.rules.count))
        for p in lists.patterns.rules {
            w.string(p.source)
            w.u16(p.rule.category)
            w.u16(p.rule.file)
            w.u32(p.rule.lineAndFlags)
        }
        let payload = w.bytes
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + payload.count)
        out += magic
        appendLE(&out, version)
        appendLE(&out, UInt32(0x0102_0304))
        appendLE(&out, UInt64(payload.count))
        let sum = payload.withUnsafeBytes { checksum($0) }
        appendLE(&out, sum)
        out += payload
        return out
    }

    public static func write(_ lists: CompiledLists, to path: String) throws(SnapshotError) {
        let bytes = encode(lists)
        let failure = bytes.withUnsafeBytes { raw -> FileSystem.Error? in
            do {
                try FileSystem.writeAtomically(path, bytes: raw)
                return nil
            } catch { return error as? FileSystem.Error }
        }
        if let failure { throw SnapshotError(.unwritable, path: path, "cannot write: \(failure)") }
    }

    public static func load(_ path: String) throws(SnapshotError) -> CompiledLists {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readBytes(path) } catch {
            throw SnapshotError(.unreadable, path: path, "cannot read: \(error)")
        }
        return try decode(bytes, path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(SnapshotError) -> CompiledLists {
        guard bytes.count >= headerSize else {
            throw SnapshotError(.truncated, path: path, "too short to be an esafety snapshot (\(bytes.count) bytes)")
        }
        guard Array(bytes[0..<8]) == magic else {
            throw SnapshotError(.foreign, path: path, "not an esafety snapshot (bad magic)")
        }
        let version: UInt32 = readLE(bytes, 8)
        guard version == Self.version else {
            throw SnapshotError(
                .version,
                path: path,
                "snapshot format version \(version), this esafety reads version \(Self.version)"
            )
        }
        guard readLE(bytes, 12) as UInt32 == 0x0102_0304 else {
            throw SnapshotError(.foreign, path: path, "snapshot written on a machine of another byte order")
        }
        // Every length and count is checked before it is used as an Int: a corrupt header or
        // payload is refused, never a trap.
        let length: UInt64 = readLE(bytes, 16)
        guard UInt64(bytes.count - headerSize) == length else {
            throw SnapshotError(
                .truncated,
                path: path,
                "payload is \(bytes.count - headerSize) bytes, header says \(length)"
            )
        }
        let expected: UInt64 = readLE(bytes, 24)
        let actual = bytes.withUnsafeBytes { checksum(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
        guard expected == actual else {
            throw SnapshotError(.checksum, path: path, "checksum mismatch: the file is corrupt")
        }
        do {
            var r = Reader(bytes: bytes, offset: headerSize)
            var categories: [Category] = []
            for _ in 0..<(try r.u32()) {
                let name = try r.string()
                let display = try r.string()
                let description = try r.string()
                guard let severity = Severity(rawValue: try r.u8()) else { throw Reader.Failure() }
                let locked = try r.u8() == 1
                let allow = try r.u8() == 1
                let canary = try r.string()
                let hasCanary = try r.u8() == 1
                categories.append(
                    Category(
                        name: name,
                        displayName: display,
                        description: description,
                        severity: severity,
                        locked: locked,
                        canary: hasCanary ? canary : nil,
                        isAllowlist: allow
                    )
                )
            }
            var files: [String] = []
            for _ in 0..<(try r.u32()) { files.append(try r.string()) }
            var sources: [String] = []
            for _ in 0..<(try r.u32()) { sources.append(try r.string()) }
            var counts: [CompiledLists.EntryCounts] = []
            for _ in categories {
                counts.append(.init(domains: try r.count(), urls: try r.count(), patterns: try r.count()))
            }
            var tables: [EntryTable] = []
            for _ in 0..<2 {
                let slots: UnsafeMutableBufferPointer<UInt64> = try r.buffer()
                let offsets: UnsafeMutableBufferPointer<UInt32> = try r.buffer()
                let pool: UnsafeMutableBufferPointer<UInt8> = try r.buffer()
                let ruleStart: UnsafeMutableBufferPointer<UInt32> = try r.buffer()
                let rules: UnsafeMutableBufferPointer<Rule> = try r.buffer()
                // The table owns the buffers from here, so they are freed on any failure.
                let table = EntryTable(
                    owning: slots,
                    keyOffsets: offsets,
                    pool: pool,
                    ruleStart: ruleStart,
                    rules: rules
                )
                guard !slots.isEmpty, offsets.count == ruleStart.count, offsets.count >= 1,
                    Int(offsets.last!) == pool.count, Int(ruleStart.last!) == rules.count,
                    slots.count > offsets.count - 1,
                    offsets.indices.dropFirst().allSatisfy({ offsets[$0 - 1] <= offsets[$0] }),
                    ruleStart.indices.dropFirst().allSatisfy({ ruleStart[$0 - 1] <= ruleStart[$0] }),
                    // A used slot names a key (1...keys); an empty one ends every probe, so there
                    // must be one, or a lookup of an unknown key would never end.
                    slots.allSatisfy({ $0 == 0 || (1..<offsets.count).contains(Int(UInt32(truncatingIfNeeded: $0))) }),
                    slots.contains(0),
                    rules.allSatisfy({ Int($0.category) < categories.count && Int($0.file) < files.count })
                else { throw Reader.Failure(offset: r.offset) }
                tables.append(table)
            }
            var patternRules: [PatternRule] = []
            for _ in 0..<(try r.u32()) {
                let source = try r.string()
                let rule = Rule(category: try r.u16(), file: try r.u16(), line: 0)
                var full = rule
                full.lineAndFlags = try r.u32()
                guard Int(full.category) < categories.count, Int(full.file) < files.count else {
                    throw Reader.Failure()
                }
                patternRules.append(PatternRule(source: source, rule: full))
            }
            guard r.offset == bytes.count else { throw Reader.Failure() }
            var diagnostics: [Diagnostic] = []
            let patterns = PatternSet(rules: patternRules) { index, error in
                let rule = patternRules[index].rule
                diagnostics.append(
                    Diagnostic(
                        .warning,
                        .badPattern,
                        file: files[Int(rule.file)],
                        line: rule.line,
                        "pattern does not compile: \(error)"
                    )
                )
            }
            return CompiledLists(
                categories: categories,
                files: files,
                domains: tables[0],
                urls: tables[1],
                patterns: patterns,
                counts: counts,
                diagnostics: diagnostics,
                sources: ["snapshot:" + path]
            )
        } catch {
            let at = (error as? Reader.Failure)?.offset ?? 0
            throw SnapshotError(.corrupt, path: path, "inconsistent contents at byte \(at)")
        }
    }

    /// A 64-bit checksum over 8-byte words in four lanes (several bytes per cycle),
    /// finished with the length. Detects corruption; not a cryptographic signature.
    static func checksum(_ data: UnsafeRawBufferPointer) -> UInt64 {
        let p1: UInt64 = 0x9E37_79B1_85EB_CA87
        let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
        var lanes: (UInt64, UInt64, UInt64, UInt64) = (p1, p2, p1 ^ p2, p1 &+ p2)
        let n = data.count
        var i = 0
        @inline(__always) func round(_ acc: UInt64, _ v: UInt64) -> UInt64 {
            var a = acc &+ v &* p2
            a = (a << 31) | (a >> 33)
            return a &* p1
        }
        while i + 32 <= n {
            lanes.0 = round(lanes.0, data.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            lanes.1 = round(lanes.1, data.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            lanes.2 = round(lanes.2, data.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            lanes.3 = round(lanes.3, data.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        var h = round(lanes.0, lanes.1) ^ round(lanes.2, lanes.3) ^ UInt64(n)
        while i < n {
            h = round(h, UInt64(data[i]))
            i += 1
        }
        return KeyHash.finish(h)
    }

    static func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ v: UInt8) { bytes.append(v) }
        mutating func u16(_ v: UInt16) { appendLE(&bytes, v) }
        mutating func u32(_ v: UInt32) { appendLE(&bytes, v) }
        mutating func u64(_ v: UInt64) { appendLE(&bytes, v) }
        mutating func string(_ s: String) {
            u32(UInt32(s.utf8.count))
            bytes += s.utf8
        }
        /// Element count, then the raw elements, padded to 8 bytes.
        mutating func array<T: BitwiseCopyable>(_ a: [T]) {
            u64(UInt64(a.count))
            while bytes.count % 8 != 0 { bytes.append(0) }
            a.withUnsafeBytes { bytes.append(contentsOf: $0) }
        }
    }

    struct Reader {
        struct Failure: Error { var offset = 0 }
        let bytes: [UInt8]
        var offset: Int

        mutating func take(_ n: Int) throws(Failure) -> Int {
            guard n >= 0, offset + n <= bytes.count else { throw Failure(offset: offset) }
            defer { offset += n }
            return offset
        }
        mutating func u8() throws(Failure) -> UInt8 { bytes[try take(1)] }
        mutating func u16() throws(Failure) -> UInt16 { readLE(bytes, try take(2)) }
        mutating func u32() throws(Failure) -> UInt32 { readLE(bytes, try take(4)) }
        mutating func u64() throws(Failure) -> UInt64 { readLE(bytes, try take(8)) }
        /// A count written as 64 bits: no more than the file's size could hold.
        mutating func count() throws(Failure) -> Int {
            let at = offset
            let v = try u64()
            guard v <= UInt64(Int32.max) else { throw Failure(offset: at) }
            return Int(v)
        }
        mutating func string() throws(Failure) -> String {
            let n = Int(try u32())
            let at = try take(n)
            return String(decoding: bytes[at..<at + n], as: UTF8.self)
        }
        /// Like `array`, straight into a newly allocated buffer that the caller owns.
        mutating func buffer<T: BitwiseCopyable>(_: T.Type = T.self) throws(Failure) -> UnsafeMutableBufferPointer<T> {
            let count = try u64()
            guard count < UInt64(Int32.max) else { throw Failure(offset: offset) }
            while offset % 8 != 0 { _ = try take(1) }
            let size = Int(count) * MemoryLayout<T>.stride
            let at = try take(size)
            let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(Int(count), 1))
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: src[at..<at + size])
                )
            }
            return UnsafeMutableBufferPointer(rebasing: buffer[0..<Int(count)])
        }
    }
}

/// A snapshot file that cannot be used, and why.
public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable { case unreadable, unwritable, truncated, foreign, version, checksum, corrupt }
    public var code: Code
    public var path: String
    public var message: String
    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}
