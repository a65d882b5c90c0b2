import Glibc

/// Names that may go where text from a log or a person may not: a SQL identifier, a URL's
/// query, a log line. ASCII letters and digits, and the few punctuation marks each kind allows.
public enum PlainName {
    /// `s` is 1 to `longest` bytes of a-z, 0-9 (A-Z too when `upper`) and the bytes of `also`.
    public static func matches(_ s: String, longest: Int, upper: Bool = false, also: String = "") -> Bool {
        let extra = Array(also.utf8)
        return !s.isEmpty && s.utf8.count <= longest
            && s.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || (upper && $0 >= 0x41 && $0 <= 0x5A)
                    || extra.contains($0)
            }
    }

    /// An incident's id as esafetyd makes it, or one edited to something as harmless.
    public static func isID(_ s: String) -> Bool { matches(s, longest: 64, upper: true, also: "-._") }
}

/// Where `pattern` (one byte at least) first is in `buffer`: each place its first byte is
/// (memchr), compared whole (memcmp).
public func firstIndex(of pattern: UnsafeRawBufferPointer, in buffer: UnsafeRawBufferPointer) -> Int? {
    guard let base = buffer.baseAddress, let p = pattern.baseAddress, let head = pattern.first else { return nil }
    let m = pattern.count
    var i = 0
    while i + m <= buffer.count {
        guard let q = memchr(base + i, Int32(head), buffer.count - m + 1 - i) else { return nil }
        let j = base.distance(to: UnsafeRawPointer(q))
        if memcmp(base + j, p, m) == 0 { return j }
        i = j + 1
    }
    return nil
}
