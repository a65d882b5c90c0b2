import Foundation
import Incidents

/// SHA-256 speed, for the incident chain (`esafety-bench --only hash`).
enum HashBench {
    static func run() {
        let line = "{" + String(repeating: "x", count: 798) + "}"
        var start = Date()
        var chain = String(repeating: "0", count: 64)
        let body = line.utf8.dropLast().withContiguousStorageIfAvailable { String(decoding: $0, as: UTF8.self) } ?? ""
        for _ in 0..<20_000 { chain = SHA256.hex(chain, Substring(body)) }
        var t = Date().timeIntervalSince(start)
        print(
            "SHA-256 chain step over an 800-byte line (verify's path): \(fmt(t / 20_000 * 1e6, 2)) us "
                + "(\(chain.prefix(8)))"
        )
        start = Date()
        chain = String(repeating: "0", count: 64)
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        for _ in 0..<20_000 {
            out.removeAll(keepingCapacity: true)
            chain = HashChain.seal(line, previous: chain, appendingTo: &out)
        }
        t = Date().timeIntervalSince(start)
        print(
            "sealing an 800-byte line into the writer's batch (the log writer's path): \(fmt(t / 20_000 * 1e6, 2)) "
                + "us (\(chain.prefix(8)))"
        )
    }
}
