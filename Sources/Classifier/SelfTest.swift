import SystemSupport

/// "Is the filter working?": checks that a generation still does what the last one did.
public enum SelfTest {
    /// A category whose canary no longer classifies to it.
    public struct CanaryFailure: Sendable, CustomStringConvertible {
        public var category: String
        public var canary: String
        public var got: [String]
        public var description: String {
            "canary \(Terminal.escape(canary)) no longer classifies to \(category) (got "
                + "\(got.isEmpty ? "no match" : got.joined(separator: ", ")))"
        }
    }

    /// Every category with a canary must classify its canary to itself.
    public static func canaries(_ lists: CompiledLists) -> [CanaryFailure] {
        let scratch = lists.makeScratch()
        var failures: [CanaryFailure] = []
        for category in lists.categories {
            guard let canary = category.canary else { continue }
            let verdict = lists.classify(target: canary, scratch: scratch)
            let names = verdict.categories.map(\.name)
            if !names.contains(category.name) {
                failures.append(CanaryFailure(category: category.name, canary: canary, got: names))
            }
        }
        return failures
    }

    /// Locked categories that shrank by more than `maxShrink` (0.0-1.0) from `old` to `new`,
    /// or disappeared.
    public static func lockedShrinkage(old: CompiledLists, new: CompiledLists, maxShrink: Double) -> [String] {
        var problems: [String] = []
        for (i, category) in old.categories.enumerated() where category.locked {
            let before = old.counts[i].total
            guard let j = new.category(named: category.name) else {
                problems.append("locked category \(category.name) is missing from the new lists")
                continue
            }
            let after = new.counts[j].total
            if before > 0 && Double(before - after) / Double(before) > maxShrink {
                problems.append(
                    "locked category \(category.name) shrank from \(before) to \(after) entries (limit "
                        + "\(Int(maxShrink * 100))%)"
                )
            }
        }
        return problems
    }
}
