import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Classifier
@testable import Daemon
@testable import LogFormats
@testable import Pipeline

@Suite("The queue to the incident thread")
struct QueuedSinkTests {
    /// Records what reaches it, and on which thread.
    final class Recorder: MatchSink, @unchecked Sendable {
        let seen = Mutex<[String]>([])
        let threads = Mutex<Set<String>>([])
        func accept(_ m: MatchedRequest) {
            note("\(m.host) \(m.user ?? "-") \(m.url ?? "-") \(m.primaryCategory ?? "-")")
        }
        func lease(client: String, mac: String, name: String?) { note("lease \(client) \(mac)") }
        func note(_ s: String) {
            seen.withLock { $0.append(s) }
            let thread = ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            threads.withLock { _ = $0.insert(thread) }
        }
    }

    @Test("raw matches, made requests and leases arrive in order, on the incident thread, past the queue's bound")
    func order() throws {
        let dir = TempDir()
        dir.write("lists/gambling/domains", "bet.example\n")
        let lists = try ListLoader.load(roots: [dir.path + "/lists"])
        let recorder = Recorder()
        // A small bound: the sender waits for the incident thread, never drops.
        let queue = QueuedSink(next: recorder, bound: 16)
        queue.start()
        var expected: [String] = []
        let scratch = lists.makeScratch()
        for i in 0..<500 {
            switch i % 3 {
            case 0:
                let host = Array("h\(i).bet.example".utf8)
                let url = Array("http://h\(i).bet.example/?q=\(i)".utf8)
                let client = Array("10.0.0.1".utf8)
                let user = Array("pupil\(i)".utf8)
                #expect(host.withUnsafeBytes { lists.classify(host: $0, url: nil, scratch: scratch) })
                host.withUnsafeBytes { h in
                    url.withUnsafeBytes { u in
                        client.withUnsafeBytes { c in
                            user.withUnsafeBytes { us in
                                scratch.hits.withUnsafeBufferPointer { hits in
                                    queue.accept(
                                        raw: RawMatch(
                                            time: 1,
                                            client: c,
                                            user: us,
                                            host: h,
                                            url: u,
                                            method: nil,
                                            action: .allowed,
                                            format: .squid,
                                            source: "test",
                                            hits: hits,
                                            lists: lists,
                                            generation: 1
                                        )
                                    )
                                }
                            }
                        }
                    }
                }
                expected.append("h\(i).bet.example pupil\(i) http://h\(i).bet.example/?q=\(i) gambling")
            case 1:
                queue.accept(
                    MatchedRequest(
                        time: 1,
                        client: "10.0.0.2",
                        user: nil,
                        host: "m\(i).example",
                        url: nil,
                        method: nil,
                        action: .allowed,
                        format: .dnsmasq,
                        source: "test",
                        categories: [],
                        generation: 1
                    )
                )
                expected.append("m\(i).example - - -")
            default:
                queue.lease(client: "10.0.0.\(i % 250)", mac: "a4:5e:60:d1:22:\(i % 10)0")
                expected.append("lease 10.0.0.\(i % 250) a4:5e:60:d1:22:\(i % 10)0")
            }
        }
        queue.stop()
        #expect(recorder.seen.withLock { $0 } == expected)
        #expect(recorder.threads.withLock { $0 } == ["esafety-sink"])
    }
}
