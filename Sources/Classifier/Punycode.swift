import Foundation

/// RFC 3492 Punycode and the IDNA "xn--" form of Unicode host names.
public enum Punycode {
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
    private static let initialBias = 72, initialN = 128

    private static func digit(_ d: Int) -> UInt8 {
        d < 26 ? UInt8(d) + 97 : UInt8(d - 26) + 48
    }

    private static func adapt(_ delta: Int, _ numPoints: Int, _ first: Bool) -> Int {
        var delta = first ? delta / damp : delta / 2
        delta += delta / numPoints
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    /// Encodes one label's code points (no `xn--` prefix). Nil on overflow.
    public static func encode(_ scalars: [UInt32]) -> String? {
        var output: [UInt8] = scalars.filter { $0 < 0x80 }.map { UInt8($0) }
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append(UInt8(ascii: "-")) }
        var n = initialN
        var delta = 0
        var bias = initialBias
        while handled < scalars.count {
            guard let m = scalars.filter({ Int($0) >= n }).min().map(Int.init) else { return nil }
            let (product, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
            if overflow { return nil }
            delta += product
            n = m
            for c in scalars {
                let c = Int(c)
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// A Unicode host name in its ASCII form: lower-cased, NFC, each non-ASCII label as
    /// `xn--` + Punycode. IDNA dot variants (U+3002, U+FF0E, U+FF61) separate labels.
    /// Returns nil when a label cannot be encoded.
    static func asciiHost(_ host: String) -> String? {
        let folded = host.precomposedStringWithCanonicalMapping.lowercased()
        var labels: [String] = []
        var current: [UInt32] = []
        func flush() -> Bool {
            if current.allSatisfy({ $0 < 0x80 }) {
                labels.append(String(decoding: current.map { UInt8($0) }, as: UTF8.self))
            } else {
                guard let encoded = encode(current) else { return false }
                labels.append("xn--" + encoded)
            }
            current.removeAll()
            return true
        }
        for scalar in folded.unicodeScalars {
            switch scalar.value {
            case 0x2E, 0x3002, 0xFF0E, 0xFF61:
                guard flush() else { return nil }
            default:
                current.append(scalar.value)
            }
        }
        guard flush() else { return nil }
        return labels.joined(separator: ".")
    }
}
