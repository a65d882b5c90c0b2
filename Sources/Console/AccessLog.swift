import Foundation
import Glibc
import Synchronization
import SystemSupport

/// Every view of a child's record through the console, and every login and action, one JSON
/// line each: who (the account and its role), what (an incident id, a person's history by
/// incident id, a list and how many it showed), when, and from which address. Records about
/// children are special-category data: the DSL reads this log from the console. The file is
/// opened with O_APPEND and O_NOFOLLOW, mode 0640; a line that cannot be written fails the
/// request that caused it (a view that cannot be recorded is not shown).
public final class AccessLog: Sendable {
    public struct Entry: Sendable, Equatable, Decodable {
        public var time: String
        public var account: String
        public var role: String
        /// `login`, `login-failed`, `login-no-site`, `locked-out`, `logout`, `incident`, `person`,
        /// `list`, `search`, `api`, `report`, `action`, `access-log`, `site` (the switcher), `live`.
        public var what: String
        public var id: String?
        /// The incident's school, in a trust's console (ids are unique per school only).
        public var site: String?
        public var detail: String?
        public var address: String

        public init(
            time: String = Clock.rfc3339(Clock.now()),
            account: String,
            role: String,
            what: String,
            id: String? = nil,
            site: String? = nil,
            detail: String? = nil,
            address: String
        ) {
            (self.time, self.account, self.role, self.what) = (time, account, role, what)
            (self.id, self.site, self.detail, self.address) = (id, site, detail, address)
        }

        var line: String {
            var j = JSONText(capacity: 200)
            j.beginObject()
            j.field("time", .string(time))
            j.field("account", .string(account))
            j.field("role", .string(role))
            j.field("what", .string(what))
            if let id { j.field("id", .string(id)) }
            if let site { j.field("site", .string(site)) }
            if let detail { j.field("detail", .string(detail)) }
            j.field("address", .string(address))
            j.endObject()
            return j.text + "\n"
        }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public let path: String
    private let lock = Mutex(())

    public init(path: String) { self.path = path }

    public func record(_ entry: Entry) throws(Failure) {
        let line = entry.line
        let result: Int32 = lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
            guard fd >= 0 else { return errno }
            defer { close(fd) }
            let n = line.utf8.withContiguousStorageIfAvailable { write(fd, $0.baseAddress, $0.count) } ?? -1
            return n == line.utf8.count ? 0 : (n < 0 ? errno : ENOSPC)
        }
        if result != 0 {
            throw Failure(description: "\(path): cannot record the view: \(String(cString: strerror(result)))")
        }
    }

    /// The newest `limit` entries, newest first (a line that is not an entry is passed over).
    public func recent(_ limit: Int) -> [Entry] {
        guard let text = try? FileSystem.readText(path) else { return [] }
        let decoder = JSONDecoder()
        return text.split(separator: "\n").suffix(limit).reversed().compactMap {
            try? decoder.decode(Entry.self, from: Data($0.utf8))
        }
    }
}
