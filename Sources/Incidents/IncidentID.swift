import Glibc

/// Incident ids: `inc-<ms since 1970, 12 hex>-<counter, 6 hex>-<process id, 6 hex>`.
enum IncidentID {
    /// Sortable and unique across restarts: milliseconds since 1970 (12 hex digits), a
    /// per-process counter and the process id.
    static func make(time: Double, counter: UInt32) -> String {
        let ms = UInt64(max(0, time) * 1000)
        return String(unsafeUninitializedCapacity: 30) { out in
            let digits: StaticString = "0123456789abcdef"
            func hex(_ v: UInt64, _ width: Int, _ at: Int) {
                digits.withUTF8Buffer { d in
                    var v = v
                    for i in stride(from: at + width - 1, through: at, by: -1) {
                        out[i] = d[Int(v & 15)]
                        v >>= 4
                    }
                }
            }
            for (i, c) in "inc-".utf8.enumerated() { out[i] = c }
            hex(ms, 12, 4)
            out[16] = UInt8(ascii: "-")
            hex(UInt64(counter & 0xFFFFFF), 6, 17)
            out[23] = UInt8(ascii: "-")
            hex(processID, 6, 24)
            return 30
        }
    }

    static let processID = UInt64(getpid()) & 0xFFFFFF
}
