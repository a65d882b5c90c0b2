import Foundation
import Glibc

/// A small HTTP/1.1 client over a real TCP socket, for the console's tests: one request per
/// connection (`Connection: close`), the response read to its end, cookies kept like a browser
/// keeps them (by name, dropped when a server expires them).
public final class HTTPClient: @unchecked Sendable {
    public struct Response {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
        public func headers(_ name: String) -> [String] {
            headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
        }
        /// The value of a hidden form field (`name="csrf" value="..."`), the first one.
        public func field(_ name: String) -> String? {
            guard let r = body.range(of: "name=\"\(name)\" value=\"") else { return nil }
            return String(body[r.upperBound...].prefix { $0 != "\"" })
        }
    }

    public let port: UInt16
    public var cookies: [String: String] = [:]

    /// How long a response may take to start arriving. A WebDriver server may take longer
    /// than a web page (starting a cold Chromium on a busy CI machine).
    public var timeout: Int

    public init(port: UInt16, timeout: Int = 30) { (self.port, self.timeout) = (port, timeout) }

    public static func encode(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { k, v in
            "\(k)=\(v.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
    }

    public func get(_ path: String, headers: [String: String] = [:]) throws -> Response {
        try request("GET", path, headers: headers)
    }

    public func post(_ path: String, _ fields: [(String, String)]) throws -> Response {
        try request(
            "POST",
            path,
            headers: ["Content-Type": "application/x-www-form-urlencoded"],
            body: Self.encode(fields)
        )
    }

    public func request(
        _ method: String,
        _ path: String,
        headers: [String: String] = [:],
        body: String = ""
    )
        throws -> Response
    {
        let fd = try Self.connect(port, timeout: timeout)
        defer { close(fd) }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if !cookies.isEmpty {
            text += "Cookie: " + cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") + "\r\n"
        }
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if method == "POST" { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + body
        writeAll(fd, Array(text.utf8))
        var raw: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        // To the end of the body: Content-Length when the server gives one (a WebDriver server
        // keeps the connection open), else the end of the stream.
        while true {
            if let length = Self.expectedLength(raw), raw.count >= length { break }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            raw += buffer[0..<n]
        }
        let response = try Self.parse(raw)
        for c in response.headers("Set-Cookie") {
            let pair = c.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            let (name, value) = (String(pair[0]), String(pair[1]))
            if c.contains("Max-Age=0") || value.isEmpty { cookies[name] = nil } else { cookies[name] = value }
        }
        return response
    }

    /// The whole response's size in bytes, once its head has arrived and names a Content-Length.
    static func expectedLength(_ raw: [UInt8]) -> Int? {
        guard
            let end = raw.indices.dropLast(3).first(where: {
                raw[$0] == 13 && raw[$0 + 1] == 10 && raw[$0 + 2] == 13 && raw[$0 + 3] == 10
            })
        else {
            return nil
        }
        let head = String(decoding: raw[..<end], as: UTF8.self).lowercased()
        guard let r = head.range(of: "\r\ncontent-length:") else { return nil }
        let digits = head[r.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }
        return Int(digits).map { end + 4 + $0 }
    }

    static func parse(_ raw: [UInt8]) throws -> Response {
        let text = String(decoding: raw, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw TestFailure(message: "not an HTTP response: \(text.prefix(200))")
        }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        guard let first = head.first, let status = Int(first.split(separator: " ")[1]) else {
            throw TestFailure(message: "no status line: \(text.prefix(200))")
        }
        let headers = head.dropFirst().map { line -> (String, String) in
            let kv = line.split(separator: ":", maxSplits: 1)
            return (String(kv[0]), kv.count > 1 ? kv[1].trimmingCharacters(in: .whitespaces) : "")
        }
        var body = String(text[split.upperBound...])
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1 == "chunked" }) {
            body = dechunk(body)
        }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ s: String) -> String {
        var bytes = Substring(s)
        var out = ""
        while let eol = bytes.range(of: "\r\n"), let size = Int(bytes[..<eol.lowerBound], radix: 16), size > 0 {
            let start = eol.upperBound
            let data = bytes.utf8[start...].prefix(size)
            out += String(decoding: data, as: UTF8.self)
            bytes =
                bytes[
                    bytes.utf8.index(
                        start,
                        offsetBy: min(size + 2, bytes.utf8.distance(from: start, to: bytes.endIndex))
                    )...
                ]
        }
        return out
    }

    /// Opens the console's live stream (`GET /events`) with this client's session, on a
    /// connection of its own that stays open: the socket, to read the events from.
    public func openEvents() throws -> Int32 {
        let fd = try Self.connect(port)
        let cookie = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        writeAll(fd, Array("GET /events HTTP/1.1\r\nHost: x\r\nCookie: \(cookie)\r\n\r\n".utf8))
        return fd
    }

    /// Connects to 127.0.0.1:port.
    public static func connect(_ port: UInt16, timeout seconds: Int = 30) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            close(fd)
            throw TestFailure(message: "connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}

/// A TCP port on loopback that nothing listens on now (the kernel's choice for port 0). Tests
/// that start a server which takes its port as an argument use this, not a number derived from
/// the process id: two such numbers once met (chromedriver's and dnsmasq's) and the browser
/// test talked DNS.
public func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure(message: "socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw TestFailure(message: "bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: addr.sin_port)
}
