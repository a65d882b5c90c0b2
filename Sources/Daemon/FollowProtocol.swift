/// How `esafety follow` and esafetyd agree on what was processed. The follower opens a stream
/// connection to an ingest socket with `hello`; esafetyd then answers each read with
/// `ack N\n`, N being how many bytes after the hello it has processed (every complete line
/// in them handed to the incident path). The follower keeps its place in the file at the
/// last acknowledged byte, so after esafetyd stops or restarts it sends again exactly what was
/// not acknowledged: nothing is lost, and a line is sent twice only if esafetyd was killed
/// between processing it and acknowledging it. Any other client is served as before.
public enum FollowProtocol {
    public static let hello: [UInt8] = Array("ESAFETY-FOLLOW 1\n".utf8)

    /// The largest N of the `ack N` lines in `bytes`; the bytes of an unfinished line are left.
    public static func lastAck(in bytes: inout [UInt8]) -> Int? {
        var last: Int? = nil
        while let nl = bytes.firstIndex(of: 0x0A) {
            let line = bytes[..<nl]
            if line.starts(with: Array("ack ".utf8)), let n = Int(String(decoding: line.dropFirst(4), as: UTF8.self)) {
                last = max(last ?? 0, n)
            }
            bytes.removeSubrange(...nl)
        }
        return last
    }
}
