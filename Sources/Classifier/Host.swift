/// What kind of host a normalised host is.
public enum HostKind: UInt8, Sendable {
    case name, ipv4, ipv6
}

/// Byte-level host and URL normalisation, allocation-free for ASCII input.
public enum Host {
    /// The longest host accepted (RFC 1035: 253 octets, plus room for a trailing dot).
    static let maxLength = 255

    public enum Outcome: Equatable {
        case ok(count: Int, kind: HostKind)
        /// The host has non-ASCII bytes: normalise through `Punycode.asciiHost` first.
        case needsIDNA
        case invalid
    }

    /// Normalises a host as logs write it (`WWW.Example.COM.`, `example.com:443`,
    /// `[2001:db8::1]:443`, `10.0.0.1`) into `out`: lower case, no port, no brackets,
    /// no trailing or leading dots.
    /// - Complexity: O(n), no allocation.

    public static func normalize(
        _ input: UnsafeRawBufferPointer,
        into out: UnsafeMutableBufferPointer<UInt8>
    ) -> Outcome {
        var start = 0
        var end = input.count
        while start < end, input[start] == 0x20 || input[start] == 0x09 { start += 1 }
        while end > start, input[end - 1] == 0x20 || input[end - 1] == 0x09 { end -= 1 }
        guard start < end else { return .invalid }
        if input[start] == UInt8(ascii: "[") {
            // [v6] or [v6]:port
            var close = start + 1
            while close < end, input[close] != UInt8(ascii: "]") { close += 1 }
            guard close < end, close - start - 1 <= out.count else { return .invalid }
            var n = 0
            for i in (start + 1)..<close {
                let b = input[i]
                guard isHexOrColonOrDot(b) else { return .invalid }
                out[n] = lower(b)
                n += 1
            }
            return n > 0 ? .ok(count: n, kind: .ipv6) : .invalid
        }
        var colons = 0
        var lastColon = -1
        var i = start
        while i < end {
            if input[i] == UInt8(ascii: ":") {
                colons += 1
                lastColon = i
            }
            i += 1
        }
        if colons >= 2 {
            // A bare IPv6 literal.
            guard end - start <= out.count else { return .invalid }
            var n = 0
            for i in start..<end {
                let b = input[i]
                guard isHexOrColonOrDot(b) else { return .invalid }
                out[n] = lower(b)
                n += 1
            }
            return .ok(count: n, kind: .ipv6)
        }
        if colons == 1 {
            // host:port; the port must be digits.
            var p = lastColon + 1
            while p < end {
                guard input[p] >= 0x30 && input[p] <= 0x39 else { return .invalid }
                p += 1
            }
            end = lastColon
        }
        while end > start, input[end - 1] == UInt8(ascii: ".") { end -= 1 }
        while start < end, input[start] == UInt8(ascii: ".") { start += 1 }
        guard start < end, end - start <= min(out.count, maxLength) else { return .invalid }
        var n = 0
        var digitsAndDots = true
        var dots = 0
        var previousDot = false
        for i in start..<end {
            let b = input[i]
            if b >= 0x80 { return .needsIDNA }
            let c = lower(b)
            if c == UInt8(ascii: ".") {
                if previousDot { return .invalid }
                previousDot = true
                dots += 1
            } else {
                previousDot = false
                guard isHostByte(c) else { return .invalid }
                if c < 0x30 || c > 0x39 { digitsAndDots = false }
            }
            out[n] = c
            n += 1
        }
        return .ok(count: n, kind: digitsAndDots && dots == 3 ? .ipv4 : .name)
    }

    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }

    @inline(__always)
    static func isHostByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
    }

    @inline(__always)
    static func isHexOrColonOrDot(_ b: UInt8) -> Bool {
        let c = lower(b)
        return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || c == UInt8(ascii: ":") || c == UInt8(ascii: ".")
    }

    /// Normalises a host given as a `String`, including Unicode names (to punycode).
    public static func normalize(_ host: String) -> (String, HostKind)? {
        var buffer = [UInt8](repeating: 0, count: maxLength)
        var input = host
        for _ in 0..<2 {
            let outcome = input.withUTF8 { utf8 in
                buffer.withUnsafeMutableBufferPointer { normalize(UnsafeRawBufferPointer(utf8), into: $0) }
            }
            switch outcome {
            case .ok(let count, let kind):
                return (String(decoding: buffer[0..<count], as: UTF8.self), kind)
            case .invalid:
                return nil
            case .needsIDNA:
                guard let ascii = Punycode.asciiHost(input) else { return nil }
                input = ascii
            }
        }
        return nil
    }

    /// Where the host and the path lie in a URL.
    public struct URLParts: Equatable, Sendable {
        /// Host with any port (`example.com:8080`), without scheme or user info.
        public var authority: Range<Int>
        /// From the first `/` or `?` to the end, without any `#fragment`; empty when none.
        public var path: Range<Int>
        public var hasScheme: Bool
    }

    /// Splits `scheme://user@host:port/path?query#fragment`, also `host/path` and
    /// `host:port` (as Squid logs CONNECT requests).
    /// - Complexity: O(n), no allocation.

    public static func splitURL(_ url: UnsafeRawBufferPointer) -> URLParts {
        let n = url.count
        var start = 0
        var hasScheme = false
        // A scheme is letters, digits, + - . followed by "://", within the first 16 bytes.
        var i = 0
        while i < n && i < 16 {
            let c = url[i]
            if c == UInt8(ascii: ":") {
                if i > 0 && i + 2 < n && url[i + 1] == UInt8(ascii: "/") && url[i + 2] == UInt8(ascii: "/") {
                    start = i + 3
                    hasScheme = true
                }
                break
            }
            let l = lower(c)
            if !((l >= 0x61 && l <= 0x7a) || (l >= 0x30 && l <= 0x39) || l == 0x2b || l == 0x2d || l == 0x2e) { break }
            i += 1
        }
        var authorityEnd = start
        var at = -1
        while authorityEnd < n {
            let c = url[authorityEnd]
            if c == UInt8(ascii: "/") || c == UInt8(ascii: "?") || c == UInt8(ascii: "#") { break }
            if c == UInt8(ascii: "@") { at = authorityEnd }
            authorityEnd += 1
        }
        let hostStart = at >= 0 ? at + 1 : start
        var pathEnd = authorityEnd
        while pathEnd < n && url[pathEnd] != UInt8(ascii: "#") { pathEnd += 1 }
        return URLParts(authority: hostStart..<authorityEnd, path: authorityEnd..<pathEnd, hasScheme: hasScheme)
    }

    /// Is `host` a syntactically valid DNS name (labels of 1-63 bytes of letters, digits,
    /// `-`, `_`; at most 253 bytes)?
    static func isValidName(_ host: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !host.isEmpty, host.count <= 253 else { return false }
        var labelLength = 0
        for c in host {
            if c == UInt8(ascii: ".") {
                if labelLength == 0 { return false }
                labelLength = 0
            } else {
                guard isHostByte(c) else { return false }
                labelLength += 1
                if labelLength > 63 { return false }
            }
        }
        return labelLength > 0
    }
}
