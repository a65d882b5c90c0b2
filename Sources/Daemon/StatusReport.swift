import Foundation
import LogFormats
import SystemSupport

/// What `esafety status` shows: the daemon's health as one typed value, encoded by esafetyd
/// on the control socket and decoded by the tool (`--json` passes the daemon's JSON through).
/// The keys are the control protocol's; a key a newer daemon adds is ignored by an older tool.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct Reload: Codable, Sendable, Equatable {
        public var at: String
        public var ok: Bool
        public var generation: Int
        public var seconds: Double
        public var message: String
    }

    public struct FormatCounts: Codable, Sendable, Equatable {
        public var parsed: Int
        public var matched: Int
        public var ignored: Int
        var parseErrors: Int
        enum CodingKeys: String, CodingKey {
            case parsed, matched, ignored
            case parseErrors = "parse_errors"
        }
    }

    public struct Source: Codable, Sendable, Equatable {
        public var source: String
        public var received: Int
        public var parsed: Int
        public var matched: Int
        public var ignored: Int
        var parseErrors: Int
        public var tooLong: Int
        /// By log format's name (`squid`, `dnsmasq`...), formats seen only.
        public var formats: [String: FormatCounts]
        var errorSamples: [String]
        var matchedByCategory: [String: Int]
        enum CodingKeys: String, CodingKey {
            case source, received, parsed, matched, ignored
            case parseErrors = "parse_errors"
            case tooLong = "too_long"
            case formats
            case errorSamples = "error_samples"
            case matchedByCategory = "matched_by_category"
        }
    }

    public struct Connection: Codable, Sendable, Equatable {
        public var id: Int
        public var socket: String
        public var peer: String
        var connectedAt: String
        public var lines: Int
        public var bytes: Int
        var queuedBytes: Int
        public var slow: Bool
        enum CodingKeys: String, CodingKey {
            case id, socket, peer
            case connectedAt = "connected_at"
            case lines, bytes
            case queuedBytes = "queued_bytes"
            case slow
        }
    }

    /// The incident log's writer.
    public struct IncidentLogHealth: Codable, Sendable, Equatable {
        public var writing: Bool
        public var queued: Int
        public var lost: Int
        public var written: Int
        public var lastError: String?
        var chainHead: String?
        /// Set when esafetyd found lines removed or the file deleted.
        public var tampering: String?
        /// Matched lines whose time was more than a day ahead of the clock: kept in their
        /// records, but the wall clock drove the windows.
        var timesAhead: Int
        /// People whose recent requests esafetyd keeps (windows, repetition, context), and
        /// how many it forgot to stay under `incidents.max_people`.
        public var people: Int
        var peopleEvicted: Int
        /// Matched requests the incident path has handled (de-duplicated, counted, kept as
        /// context or written): equal to `lines_matched` when it has caught up with ingest.
        public var matchesHandled: Int
        enum CodingKeys: String, CodingKey {
            case writing, queued, lost, written
            case lastError = "last_error"
            case chainHead = "chain_head"
            case tampering
            case timesAhead = "times_ahead"
            case people
            case peopleEvicted = "people_evicted"
            case matchesHandled = "matches_handled"
        }
        public init(
            writing: Bool,
            queued: Int,
            lost: Int,
            written: Int,
            lastError: String?,
            chainHead: String?,
            tampering: String?,
            timesAhead: Int = 0,
            people: Int = 0,
            peopleEvicted: Int = 0,
            matchesHandled: Int = 0
        ) {
            (self.writing, self.queued, self.lost, self.written) = (writing, queued, lost, written)
            (self.lastError, self.chainHead, self.tampering) = (lastError, chainHead, tampering)
            (self.timesAhead, self.people, self.peopleEvicted) = (timesAhead, people, peopleEvicted)
            self.matchesHandled = matchesHandled
        }
    }

    public struct AlertHealth: Codable, Sendable, Equatable {
        /// How many alert commands are configured.
        public var commands: Int
        public var sent: Int
        public var failed: Int
        public var retried: Int
        public var rateLimited: Int
        public var queued: Int
        public var overdueAlerts: Int
        public var lastError: String?
        /// The folder alerts are handed to (alerts.spool): `sent` then means spooled, and the
        /// delivery's outcomes are in the counters file and esafety-alert.service's journal.
        public var spool: String?
        enum CodingKeys: String, CodingKey {
            case commands, sent, failed, retried
            case rateLimited = "rate_limited"
            case queued
            case overdueAlerts = "overdue_alerts"
            case lastError = "last_error"
            case spool
        }
        public init(
            commands: Int,
            sent: Int,
            failed: Int,
            retried: Int,
            rateLimited: Int,
            queued: Int,
            overdueAlerts: Int,
            lastError: String?
        ) {
            (self.commands, self.sent, self.failed, self.retried) = (commands, sent, failed, retried)
            (self.rateLimited, self.queued, self.overdueAlerts, self.lastError) = (
                rateLimited, queued, overdueAlerts, lastError
            )
        }
    }

    var uptimeSeconds: Double
    public var linesReceived: Int
    var linesParsed: Int
    public var linesMatched: Int
    var linesIgnored: Int
    var parseErrors: Int
    var linesTooLong: Int
    public var matchLimitHits: Int
    var linesPerSecond: Double
    var linesPerSecondAverage: Double
    public var generation: Int
    var generationLoadedAt: String
    var generationLoadSeconds: Double
    /// The list roots, comma-separated.
    public var lists: String
    var categoriesLoaded: Int
    var entriesLoaded: Int
    var lastReload: Reload?
    public var sources: [Source]
    var connections: [Connection]
    var slowClients: [String]
    var connectionsClosed: Int
    /// Stream connections turned away (over `max_connections`, or out of file descriptors).
    var connectionsRefused: Int
    /// Control clients refused for their credentials.
    var controlRefused: Int
    var matchedByCategory: [String: Int]
    public var reloads: [Reload]
    public var incidentLog: IncidentLogHealth?
    public var alerts: AlertHealth?

    enum CodingKeys: String, CodingKey {
        case uptimeSeconds = "uptime_seconds"
        case linesReceived = "lines_received"
        case linesParsed = "lines_parsed"
        case linesMatched = "lines_matched"
        case linesIgnored = "lines_ignored"
        case parseErrors = "parse_errors"
        case linesTooLong = "lines_too_long"
        case matchLimitHits = "match_limit_hits"
        case linesPerSecond = "lines_per_second"
        case linesPerSecondAverage = "lines_per_second_average"
        case generation
        case generationLoadedAt = "generation_loaded_at"
        case generationLoadSeconds = "generation_load_seconds"
        case lists
        case categoriesLoaded = "categories_loaded"
        case entriesLoaded = "entries_loaded"
        case lastReload = "last_reload"
        case sources, connections
        case slowClients = "slow_clients"
        case connectionsClosed = "connections_closed"
        case connectionsRefused = "connections_refused"
        case controlRefused = "control_refused"
        case matchedByCategory = "matched_by_category"
        case reloads
        case incidentLog = "incident_log"
        case alerts
    }

    /// One line of JSON, as the control socket sends it.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? #"{"error":"cannot encode status"}"#
    }
}

extension StatusReport {
    /// Reads the control socket's answer.
    public init(json: String) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(json.utf8))
    }
}

extension StatusReport.Reload {
    init(_ r: IngestStats.Reload) {
        self.init(
            at: Clock.rfc3339(r.at),
            ok: r.ok,
            generation: r.generation,
            seconds: (r.seconds * 1000).rounded() / 1000,
            message: r.message
        )
    }

    /// One line of JSON, as `reload` answers on the control socket.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? #"{"ok":false}"#
    }
}
