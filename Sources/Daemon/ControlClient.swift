import CShims
import Classifier
import Glibc
import SystemSupport

/// The other end of the control socket, for `esafety status` and `esafety reload`.
public enum ControlClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sends one command and returns the daemon's one-line JSON answer.
    public static func send(_ command: String, to path: String, timeout: Int = 120) throws(Failure) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(Sockets.errnoText())") }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw Failure(description: "\(path): path too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            if e == EACCES || e == EPERM {
                throw Failure(
                    description:
                        "\(path): permission denied; the control socket is for the esafety administrators' group "
                        + "(ask your network admin, or use sudo)"
                )
            }
            if e == ENOENT || e == ECONNREFUSED {
                throw Failure(description: "\(path): esafetyd is not running (no control socket)")
            }
            throw Failure(description: "\(path): \(String(cString: strerror(e)))")
        }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var line = command + "\n"
        _ = line.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        guard !out.isEmpty else { throw Failure(description: "\(path): no answer from esafetyd") }
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: "\n")
    }
}
