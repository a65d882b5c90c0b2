import Glibc
import SystemSupport

/// The period a report covers, in local time: a day (`--date`), a span (`--since`/`--until`,
/// each YYYY-MM-DD or RFC 3339; the end defaults to now, the start to a day before the end),
/// or, with neither, yesterday.
public struct ReportPeriod: Sendable, Equatable {
    public var since: Double
    public var until: Double

    /// Nil when the period is empty or a time cannot be read.
    public init?(date: String?, since: String?, until: String?, now: Double) {
        if let date {
            guard let start = Self.localMidnight(date), let end = Self.localMidnight(date, plusDays: 1) else {
                return nil
            }
            // A day that is not over yet runs to now: ages and silences stop at the present.
            (self.since, self.until) = (start, min(end, max(start + 1, now)))
        } else if since != nil || until != nil {
            let end = until.flatMap(Self.time) ?? now
            (self.since, self.until) = (since.flatMap(Self.time) ?? end - 86400, end)
        } else {
            let today = String(Clock.rfc3339(now + Double(Self.offset(at: now))).prefix(10))
            guard let start = Self.localMidnight(today, plusDays: -1), let end = Self.localMidnight(today) else {
                return nil
            }
            (self.since, self.until) = (start, end)
        }
        guard self.until > self.since else { return nil }
    }

    /// Local midnight at the start of a YYYY-MM-DD day.
    public static func localMidnight(_ day: String, plusDays: Int = 0) -> Double? {
        let parts = day.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, day.count == 10, (1...12).contains(parts[1]), (1...31).contains(parts[2]) else {
            return nil
        }
        var tm = Glibc.tm()
        tm.tm_year = Int32(parts[0] - 1900)
        tm.tm_mon = Int32(parts[1] - 1)
        tm.tm_mday = Int32(parts[2] + plusDays)
        tm.tm_isdst = -1
        let t = mktime(&tm)
        return t == -1 ? nil : Double(t)
    }

    public static func time(_ s: String) -> Double? {
        if s.count == 10 { return localMidnight(s) }
        return Report.epoch(s)
    }

    public static func offset(at t: Double) -> Int {
        var tt = time_t(t)
        var tm = Glibc.tm()
        localtime_r(&tt, &tm)
        return tm.tm_gmtoff
    }
}
