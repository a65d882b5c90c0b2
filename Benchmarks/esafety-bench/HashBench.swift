import Foundation
import Incidents

/// SHA-256 speed, for the incident chain (`esafety-bench --only hash`).
enum HashBench {
    static func run() {
        let line = String(repeating: "x", count: 800)
        let start = Date()
        var chain = String(repeating: "0", count: 64)
        for _ in 0..<20_000 { chain = SHA256.hex(chain, Substring(line)) }
        let t = Date().timeIntervalSince(start)
        print("SHA-256 chain step over an 800-byte line: \(fmt(t / 20_000 * 1e6, 2)) us (\(chain.prefix(8)))")
    }
}
