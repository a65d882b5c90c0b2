import Classifier
import LogFormats
import Logging
import Pipeline
import SystemSupport
import Threads

/// Builds, checks and swaps a new generation of configuration and lists. One reload at a
/// time: an actor alone is not enough (a reload suspends while the lists compile, and a
/// second would start from the same generation), so each reload waits for the one before;
/// every generation number is used once. The old generation stays if anything is wrong,
/// and the reason is logged with file and line.
public actor Reloader {
    let holder: GenerationHolder
    let stats: IngestStats
    let logger: Logger
    let notify: SystemdNotify
    var configuration: DaemonConfiguration
    /// Flag overrides to re-apply after re-reading the configuration file.
    let overrides: @Sendable (inout DaemonConfiguration) -> Void
    /// Called with the new configuration after a successful reload (the incident policy).
    let applied: @Sendable (DaemonConfiguration) -> Void

    public init(
        holder: GenerationHolder,
        stats: IngestStats,
        configuration: DaemonConfiguration,
        logger: Logger,
        notify: SystemdNotify,
        overrides: @escaping @Sendable (inout DaemonConfiguration) -> Void,
        applied: @escaping @Sendable (DaemonConfiguration) -> Void = { _ in }
    ) {
        self.holder = holder
        self.stats = stats
        self.configuration = configuration
        self.logger = logger
        self.notify = notify
        self.overrides = overrides
        self.applied = applied
    }

    /// Reloads; returns what happened (also recorded for `status`).
    public func reload(reason: String) async -> IngestStats.Reload {
        let previous = last
        let task = Task { [previous] in
            await previous?.value
            return await self.perform(reason: reason)
        }
        last = Task { _ = await task.value }
        return await task.value
    }

    /// The reload before the latest one asked for: the next waits for it.
    private var last: Task<Void, Never>?

    private func perform(reason: String) async -> IngestStats.Reload {
        notify.reloading()
        defer { notify.send("READY=1") }
        let started = Clock.monotonic()
        let old = holder.current
        logger.info("reload started", metadata: ["reload.reason": "\(reason)", "reload.generation": "\(old.number)"])
        var next = configuration
        if let path = configuration.path {
            do {
                next = try DaemonConfiguration.load(path: path)
                overrides(&next)
            } catch {
                return refuse(old, started, "configuration: \(error)")
            }
        }
        if next.ingest != configuration.ingest || next.controlSocket != configuration.controlSocket {
            logger.warning("socket changes in the configuration take effect at the next restart")
        }
        let source: ListSource
        do { source = try next.listSource() } catch { return refuse(old, started, error.description) }
        // Build off the async pool: compiling big lists takes a second or two of CPU.
        let result: Result<CompiledLists, ListSource.LoadError> = await withCheckedContinuation { continuation in
            PosixThread(name: "esafety-reload") {
                let outcome: Result<CompiledLists, ListSource.LoadError>
                do { outcome = .success(try source.load()) } catch let e as ListSource.LoadError {
                    outcome = .failure(e)
                } catch {
                    outcome = .failure(.noBundledLists)
                }
                continuation.resume(returning: outcome)
            }.detach()
        }
        let lists: CompiledLists
        switch result {
        case .success(let l): lists = l
        case .failure(let e): return refuse(old, started, e.description)
        }
        let canaries = SelfTest.canaries(lists)
        if !canaries.isEmpty {
            return refuse(old, started, "self-test failed: " + canaries.map(\.description).joined(separator: "; "))
        }
        let shrink = SelfTest.lockedShrinkage(old: old.lists, new: lists, maxShrink: next.maxLockedShrink)
        if !shrink.isEmpty { return refuse(old, started, shrink.joined(separator: "; ")) }
        let problems = next.environmentProblems(lists: lists)
        if !problems.isEmpty { return refuse(old, started, problems.map(\.description).joined(separator: "; ")) }
        let seconds = Clock.monotonic() - started
        let generation = Generation(number: old.number + 1, lists: lists, loadedAt: Clock.now(), loadSeconds: seconds)
        holder.swap(generation)
        configuration = next
        applied(next)
        let entries = lists.counts.reduce(0) { $0 + $1.total }
        let message =
            "generation \(generation.number): \(lists.categories.count) categories, \(entries) entries, "
            + "\(lists.diagnostics.count) warning(s)"
        logger.info(
            "reload succeeded",
            metadata: [
                "reload.generation": "\(generation.number)", "reload.seconds": "\(seconds)",
                "lists.entries": "\(entries)",
                "lists.warnings": "\(lists.diagnostics.count)",
            ]
        )
        let record = IngestStats.Reload(
            at: Clock.now(),
            ok: true,
            generation: generation.number,
            message: message,
            seconds: seconds
        )
        stats.recordReload(record)
        return record
    }

    private func refuse(_ old: Generation, _ started: Double, _ why: String) -> IngestStats.Reload {
        logger.error(
            "reload refused; keeping the current lists",
            metadata: [
                "reload.generation": "\(old.number)", "reload.error": "\(why)",
            ]
        )
        let record = IngestStats.Reload(
            at: Clock.now(),
            ok: false,
            generation: old.number,
            message: "refused, kept generation \(old.number): \(why)",
            seconds: Clock.monotonic() - started
        )
        stats.recordReload(record)
        return record
    }
}
