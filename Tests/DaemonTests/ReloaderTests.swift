import Foundation
import Logging
import Pipeline
import TestSupport
import Testing

@testable import Daemon

@Suite("Reloads")
struct ReloaderTests {
    @Test("reloads asked for at once run one after another, each with a generation number of its own")
    func oneAtATime() async throws {
        let lists = TempLists([
            "gambling/category.toml": "severity = \"medium\"\ncanary = \"bet.example\"\n",
            "gambling/domains": (0..<20000).map { "site\($0).bet.example\n" }.joined() + "bet.example\n",
        ])
        var configuration = DaemonConfiguration()
        configuration.lists = [lists.root]
        let holder = GenerationHolder(
            Generation(number: 1, lists: try lists.load(), loadedAt: 0, loadSeconds: 0)
        )
        let reloader = Reloader(
            holder: holder,
            stats: IngestStats(),
            configuration: configuration,
            logger: Logger(label: "test"),
            notify: SystemdNotify(),
            overrides: { _ in }
        )
        let generations = await withTaskGroup(of: Int.self) { group in
            for i in 0..<4 { group.addTask { await reloader.reload(reason: "test \(i)").generation } }
            var all: [Int] = []
            for await g in group { all.append(g) }
            return all.sorted()
        }
        #expect(generations == [2, 3, 4, 5])
        #expect(holder.current.number == 5)
    }
}
