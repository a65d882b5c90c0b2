import Glibc

/// Timestamps as the log formats write them, to seconds since 1970 (UTC), without
/// Foundation and without allocation.
public struct LogTime: Sendable {
    /// Offset of local time from UTC in seconds, for formats that write local time
    /// (syslog RFC 3164, BIND, Squid common without a zone).
    public var localOffset: Int
    /// The year assumed for RFC 3164 timestamps, which carry none.
    public var year: Int
    /// "Now", to move a December date seen in January back one year.
    public var now: Double

    public init(now: Double? = nil, localOffset: Int? = nil) {
        var t = time(nil)
        var tmv = tm()
        localtime_r(&t, &tmv)
        self.localOffset = localOffset ?? Int(tmv.tm_gmtoff)
        self.now = now ?? Double(t)
        var nowT = time_t(self.now)
        var utc = tm()
        gmtime_r(&nowT, &utc)
        self.year = Int(utc.tm_year) + 1900
    }

    /// Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm.
    @inline(__always)
    static func days(_ y: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func epoch(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int) -> Double {
        Double(days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s)
    }

    /// "Jan".."Dec" at `i` -> 1...12.
    @inline(__always)
    static func month(_ b: UnsafeRawBufferPointer, _ i: Int) -> Int? {
        guard i + 3 <= b.count else { return nil }
        let k = (UInt32(b[i] | 0x20) << 16) | (UInt32(b[i + 1] | 0x20) << 8) | UInt32(b[i + 2] | 0x20)
        switch k {
        case 0x6a616e: return 1  // jan
        case 0x666562: return 2  // feb
        case 0x6d6172: return 3  // mar
        case 0x617072: return 4  // apr
        case 0x6d6179: return 5  // may
        case 0x6a756e: return 6  // jun
        case 0x6a756c: return 7  // jul
        case 0x617567: return 8  // aug
        case 0x736570: return 9  // sep
        case 0x6f6374: return 10  // oct
        case 0x6e6f76: return 11  // nov
        case 0x646563: return 12  // dec
        default: return nil
        }
    }

    @inline(__always)
    static func digits(_ b: UnsafeRawBufferPointer, _ i: Int, _ n: Int) -> Int? {
        guard i + n <= b.count else { return nil }
        var v = 0
        for k in i..<(i + n) {
            let c = b[k]
            guard c >= 0x30 && c <= 0x39 else { return nil }
            v = v * 10 + Int(c - 0x30)
        }
        return v
    }

    /// `.123456` after seconds: the fraction and the index after it.
    @inline(__always)
    static func fraction(_ b: UnsafeRawBufferPointer, _ i: Int) -> (Double, Int) {
        guard i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") else { return (0, i) }
        var j = i + 1
        var v = 0.0
        var scale = 0.1
        while j < b.count, b[j] >= 0x30, b[j] <= 0x39 {
            v += Double(b[j] - 0x30) * scale
            scale /= 10
            j += 1
        }
        return (v, j)
    }

    /// RFC 3164 `Nov 21 10:00:00` (day may be space-padded) at `i`; local time, assumed
    /// year. Returns the time and the index after it.
    public func syslog(_ b: UnsafeRawBufferPointer, at i: Int) -> (Double, Int)? {
        guard let mo = Self.month(b, i), i + 15 <= b.count, b[i + 3] == 0x20 else { return nil }
        let d1 = b[i + 4]
        let d2 = b[i + 5]
        let day: Int
        if d1 == 0x20, d2 >= 0x30, d2 <= 0x39 {
            day = Int(d2 - 0x30)
        } else if let dd = Self.digits(b, i + 4, 2) {
            day = dd
        } else {
            return nil
        }
        guard b[i + 6] == 0x20, let h = Self.digits(b, i + 7, 2), b[i + 9] == UInt8(ascii: ":"),
            let m = Self.digits(b, i + 10, 2), b[i + 12] == UInt8(ascii: ":"), let s = Self.digits(b, i + 13, 2)
        else { return nil }
        let (frac, end) = Self.fraction(b, i + 15)
        var t = Self.epoch(year, mo, day, h, m, s) - Double(localOffset) + frac
        if t > now + 86400 * 2 { t = Self.epoch(year - 1, mo, day, h, m, s) - Double(localOffset) + frac }
        return (t, end)
    }

    /// RFC 3339 `2026-11-21T10:00:00.123+01:00` (or `Z`, or a space for `T`) at `i`.
    public func rfc3339(_ b: UnsafeRawBufferPointer, at i: Int) -> (Double, Int)? {
        guard let y = Self.digits(b, i, 4), i + 19 <= b.count, b[i + 4] == UInt8(ascii: "-"),
            let mo = Self.digits(b, i + 5, 2), b[i + 7] == UInt8(ascii: "-"), let d = Self.digits(b, i + 8, 2),
            b[i + 10] == UInt8(ascii: "T") || b[i + 10] == UInt8(ascii: " ") || b[i + 10] == UInt8(ascii: "t"),
            let h = Self.digits(b, i + 11, 2), b[i + 13] == UInt8(ascii: ":"), let m = Self.digits(b, i + 14, 2),
            b[i + 16] == UInt8(ascii: ":"), let s = Self.digits(b, i + 17, 2), (1...12).contains(mo)
        else { return nil }
        var (frac, j) = Self.fraction(b, i + 19)
        var offset = localOffset
        if j < b.count, b[j] == UInt8(ascii: "Z") || b[j] == UInt8(ascii: "z") {
            offset = 0
            j += 1
        } else if j + 6 <= b.count, b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-"),
            let oh = Self.digits(b, j + 1, 2), b[j + 3] == UInt8(ascii: ":"), let om = Self.digits(b, j + 4, 2)
        {
            offset = (oh * 3600 + om * 60) * (b[j] == UInt8(ascii: "-") ? -1 : 1)
            j += 6
        }
        if frac < 0 { frac = 0 }
        return (Self.epoch(y, mo, d, h, m, s) - Double(offset) + frac, j)
    }

    /// BIND `21-Nov-2026 10:00:00.123` at `i` (local time).
    public func bind(_ b: UnsafeRawBufferPointer, at i: Int) -> (Double, Int)? {
        guard let d = Self.digits(b, i, 2), i + 20 <= b.count, b[i + 2] == UInt8(ascii: "-"),
            let mo = Self.month(b, i + 3), b[i + 6] == UInt8(ascii: "-"), let y = Self.digits(b, i + 7, 4),
            b[i + 11] == 0x20, let h = Self.digits(b, i + 12, 2), b[i + 14] == UInt8(ascii: ":"),
            let m = Self.digits(b, i + 15, 2), b[i + 17] == UInt8(ascii: ":"), let s = Self.digits(b, i + 18, 2)
        else { return nil }
        let (frac, j) = Self.fraction(b, i + 20)
        return (Self.epoch(y, mo, d, h, m, s) - Double(localOffset) + frac, j)
    }

    /// Squid/Apache common `21/Nov/2026:10:00:00 +0000` at `i` (inside the brackets).
    public func common(_ b: UnsafeRawBufferPointer, at i: Int) -> Double? {
        guard let d = Self.digits(b, i, 2), i + 20 <= b.count, b[i + 2] == UInt8(ascii: "/"),
            let mo = Self.month(b, i + 3), b[i + 6] == UInt8(ascii: "/"), let y = Self.digits(b, i + 7, 4),
            b[i + 11] == UInt8(ascii: ":"), let h = Self.digits(b, i + 12, 2), let m = Self.digits(b, i + 15, 2),
            let s = Self.digits(b, i + 18, 2)
        else { return nil }
        var offset = localOffset
        if i + 26 <= b.count, b[i + 20] == 0x20, b[i + 21] == UInt8(ascii: "+") || b[i + 21] == UInt8(ascii: "-"),
            let oh = Self.digits(b, i + 22, 2), let om = Self.digits(b, i + 24, 2)
        {
            offset = (oh * 3600 + om * 60) * (b[i + 21] == UInt8(ascii: "-") ? -1 : 1)
        }
        return Self.epoch(y, mo, d, h, m, s) - Double(offset)
    }

    /// `1700000000.123` (Squid native, unbound's own log file).
    static func epochSeconds(_ b: UnsafeRawBufferPointer) -> Double? {
        guard !b.isEmpty else { return nil }
        var v = 0.0
        var i = 0
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
            v = v * 10 + Double(b[i] - 0x30)
            i += 1
        }
        guard i > 0, i <= 12 else { return nil }
        let (frac, j) = fraction(b, i)
        guard j == b.count else { return nil }
        return v + frac
    }
}
