import ArgumentParser
import Foundation
import IncidentIndex
import Incidents
import SystemSupport

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "The incident log's SQLite index (LOG.index.sqlite), which the incident commands query.",
        discussion: """
            The log stays the source of truth; the index is derived from it, kept current by esafetyd \
            (and by the tool when it may write it), and made again whenever it disagrees with the log.
            """,
        subcommands: [RebuildCommand.self, IndexStatusCommand.self]
    )
}

struct RebuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Make the index again from the whole log (and its rotations)."
    )
    @OptionGroup var log: LogOption

    func run() throws {
        let log = try self.log.resolve()
        let started = Clock.monotonic()
        do {
            // On a terminal, how far it has come after each step (ten million incidents take
            // minutes): the lines read, and the share of the log's bytes.
            let terminal = isatty(2) != 0
            var shown = false
            let u = try IncidentIndex(logPath: log.path).rebuild { so in
                guard terminal else { return }
                shown = true
                let share = IncidentIndex.progress(logPath: log.path).map {
                    String(format: ", %.0f%% of the log", Double($0.read) * 100 / Double(max($0.total, 1)))
                }
                let text =
                    "\r\(so.incidents) incident(s) from \(so.lines) line(s)\(share ?? "")"
                    + String(format: " in %.0f s ", Clock.monotonic() - started)
                FileHandle.standardError.write(Data(text.utf8))
            }
            if shown { FileHandle.standardError.write(Data("\n".utf8)) }
            let seconds = Clock.monotonic() - started
            print(
                "rebuilt \(IncidentIndex.path(forLog: log.path)): \(u.incidents) incident(s) from \(u.lines) "
                    + "line(s) in "
                    + String(format: "%.1f s", seconds)
            )
        } catch {
            throw CommandFailure(error.description, status: 1)
        }
    }
}

struct IndexStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Whether the index has read the whole log, and its incidents by state and severity."
    )
    @OptionGroup var log: LogOption

    func run() throws {
        let log = try self.log.resolve()
        // Only read: a status does not itself bring the index up to date (for a big log that is
        // minutes of work, which esafetyd is doing already).
        guard let index = IncidentIndex.reading(logPath: log.path) else {
            // Behind (esafetyd's first read of a big log, in committed steps): how far it has come.
            if let p = IncidentIndex.progress(logPath: log.path), p.total > 0 {
                let percent = Double(p.read) * 100 / Double(p.total)
                print(
                    "\(IncidentIndex.path(forLog: log.path)): behind the log, "
                        + String(format: "%.1f%% of it read", percent)
                        + " (\(IncidentIndex.megabytes(p.read)) of \(IncidentIndex.megabytes(p.total))); esafetyd "
                        + "brings it up to date (so does an incident command run as its account, when the index is "
                        + "at most \(IncidentIndex.megabytes(IncidentIndex.catchUpLimit)) behind)"
                )
            } else {
                print(
                    "no usable index for \(log.path): the incident commands read the log in full when it is at "
                        + "most \(IncidentIndex.megabytes(ResolvedLog.fullReadLimit))"
                )
            }
            throw CommandFailure(nil, status: 1)
        }
        print("\(index.path): current")
        do {
            for (state, bySeverity) in try index.counts().sorted(by: { $0.key < $1.key }) {
                let parts = bySeverity.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                print("  \(state): " + parts.joined(separator: ", "))
            }
        } catch {
            throw CommandFailure(error.description, status: 1)
        }
    }
}
