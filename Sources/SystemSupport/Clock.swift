import Glibc

/// The process's clocks, and times written as RFC 3339 text (UTC, milliseconds) without
/// Foundation and without allocation: what the records, the counters and the logs write.
public enum Clock {
    /// Seconds since 1970, now (wall clock).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds on the monotonic clock, for intervals.
    public static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `2026-11-21T10:00:00.123Z` (UTC, milliseconds).
    public static func rfc3339(_ t: Double) -> String {
        var wide = false
        let text = String(unsafeUninitializedCapacity: 24) { out in
            if let n = write(t, to: out) { return n }
            wide = true
            return 0
        }
        return wide ? wideYear(t) : text
    }

    /// The same, in double quotes, appended to a JSON record's bytes (no String made).
    public static func appendRFC3339(_ t: Double, quotedTo bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { out in
            if let n = write(t, to: out) {
                bytes.append(contentsOf: out[0..<n])
            } else {
                bytes.append(contentsOf: wideYear(t).utf8)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// The fields of a UTC time: year, month, day, seconds of the day, milliseconds.
    static func civil(_ t: Double) -> (y: Int, m: Int, d: Int, rem: Int, ms: Int) {
        // Any Double, even infinite or NaN, writes some time: clamped to about ±3 million years.
        let t = t.isNaN ? 0 : min(max(t, -1e14), 1e14)
        let whole = Int(t.rounded(.down))
        var ms = Int(((t - Double(whole)) * 1000).rounded())
        var secs = whole
        if ms >= 1000 {
            ms -= 1000
            secs += 1
        }
        var days = secs / 86400
        var rem = secs % 86400
        if rem < 0 {
            rem += 86400
            days -= 1
        }
        // civil_from_days (Howard Hinnant)
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (y, m, d, rem, ms)
    }

    /// Writes the 24 bytes of a time in years 0-9999 digit by digit (this runs for every
    /// incident and every event); nil for other years.
    static func write(_ t: Double, to out: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        let (y, m, d, rem, ms) = civil(t)
        guard (0...9999).contains(y), out.count >= 24 else { return nil }
        func put(_ v: Int, _ width: Int, _ at: Int) {
            var v = v
            for i in stride(from: at + width - 1, through: at, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(y, 4, 0)
        out[4] = UInt8(ascii: "-")
        put(m, 2, 5)
        out[7] = UInt8(ascii: "-")
        put(d, 2, 8)
        out[10] = UInt8(ascii: "T")
        put(rem / 3600, 2, 11)
        out[13] = UInt8(ascii: ":")
        put(rem % 3600 / 60, 2, 14)
        out[16] = UInt8(ascii: ":")
        put(rem % 60, 2, 17)
        out[19] = UInt8(ascii: ".")
        put(ms, 3, 20)
        out[23] = UInt8(ascii: "Z")
        return 24
    }

    /// Years outside 0-9999 (a corrupt clock in a log line), written with as many digits as needed.
    static func wideYear(_ t: Double) -> String {
        let (y, m, d, rem, ms) = civil(t)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        func three(_ v: Int) -> String { v < 10 ? "00\(v)" : v < 100 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60)).\(three(ms))Z"
    }
}
