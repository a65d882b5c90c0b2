import Glibc
import Synchronization
import SystemSupport

/// Who is logged in, and who may try. Sessions live in memory only (a restart logs everyone
/// out): a random 256-bit token in an HttpOnly, SameSite=Strict cookie, a CSRF token per
/// session for every form, an idle and an absolute time-out. Failed logins are counted per
/// name and per address; too many in the window lock that name (or address) out for a while,
/// even with the right password.
public final class Sessions: Sendable {
    public struct Session: Sendable {
        public var token: String
        public var csrf: String
        public var account: String
        public var role: Accounts.Role
        public var sites: [String]
        /// A trust's console: the sites the switcher offers (the account's, or for `*` every
        /// site the store showed at login); empty for a school's own log.
        public var choices: [String] = []
        /// The site chosen with the switcher (nil: all of the account's).
        public var site: String?
        /// The account's password hash at login: a changed password ends the session.
        var hash: String
        public var created: Double
        public var lastSeen: Double
    }

    public struct Limits: Sendable {
        /// A session unused this long ends.
        public var idle: Double = 30 * 60
        /// A session ends this long after login, used or not.
        public var absolute: Double = 12 * 3600
        /// Failed logins for one name within `window` before it is locked out.
        public var failuresPerName = 5
        /// Failed logins from one address within `window` before it is locked out.
        public var failuresPerAddress = 20
        public var window: Double = 15 * 60
        /// How long a lock-out lasts.
        public var lockout: Double = 15 * 60
        public init() {}
    }

    private struct State {
        var sessions: [String: Session] = [:]
        var failures: [String: [Double]] = [:]
        var lockedUntil: [String: Double] = [:]
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// 32 random bytes (the system's CSPRNG, getrandom), base64url without padding.
    public static func token() -> String {
        var g = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: g.next() as UInt64) { bytes.append(contentsOf: $0) } }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n =
                (UInt32(bytes[i]) << 16) | (UInt32(i + 1 < bytes.count ? bytes[i + 1] : 0) << 8)
                | UInt32(i + 2 < bytes.count ? bytes[i + 2] : 0)
            let chars = i + 2 < bytes.count ? 4 : (i + 1 < bytes.count ? 3 : 2)
            for k in 0..<chars { out.append(alphabet[Int((n >> UInt32(18 - 6 * k)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares two secrets in time that depends only on their lengths.
    public static func same(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    /// The session a cookie's token names, if it has not timed out; using it renews the
    /// idle time-out.
    public func session(_ token: String, now: Double = Clock.now()) -> Session? {
        state.withLock { s in
            guard var session = s.sessions[token] else { return nil }
            if now - session.lastSeen > limits.idle || now - session.created > limits.absolute {
                s.sessions[token] = nil
                return nil
            }
            session.lastSeen = now
            s.sessions[token] = session
            return session
        }
    }

    /// The session, if it is still live, without renewing it (the live stream's check).
    public func live(_ token: String, now: Double = Clock.now()) -> Session? {
        state.withLock { s in
            guard let session = s.sessions[token] else { return nil }
            return now - session.lastSeen <= limits.idle && now - session.created <= limits.absolute ? session : nil
        }
    }

    /// What this session may see, as the desk narrows to it.
    public static func scope(_ s: Session) -> Scope { Scope(sites: s.sites, chosen: s.site) }

    /// Chooses one of the session's sites (nil: all of them); false when it is not one of them.
    public func choose(_ token: String, site: String?) -> Bool {
        state.withLock { s in
            guard var session = s.sessions[token] else { return false }
            if let site, !session.choices.contains(site) { return false }
            session.site = site
            s.sessions[token] = session
            return true
        }
    }

    public func start(_ account: Accounts.Account, choices: [String] = [], now: Double = Clock.now()) -> Session {
        var session = Session(
            token: Self.token(),
            csrf: Self.token(),
            account: account.name,
            role: account.role,
            sites: account.sites,
            hash: account.hash,
            created: now,
            lastSeen: now
        )
        session.choices = choices
        state.withLock { s in
            s.sessions = s.sessions.filter {
                now - $0.value.lastSeen <= limits.idle && now - $0.value.created <= limits.absolute
            }
            s.sessions[session.token] = session
        }
        return session
    }

    public func end(_ token: String) { _ = state.withLock { $0.sessions.removeValue(forKey: token) } }

    /// Ends every session of an account (its password changed, or it was removed).
    public func endAll(account: String) {
        state.withLock { s in s.sessions = s.sessions.filter { $0.value.account != account } }
    }

    /// Seconds until a name or address may try again, or nil when it may now.
    public func lockedOut(name: String, address: String, now: Double = Clock.now()) -> Double? {
        state.withLock { s in
            let until = max(s.lockedUntil["name:" + name] ?? 0, s.lockedUntil["addr:" + address] ?? 0)
            return until > now ? until - now : nil
        }
    }

    /// Counts a failed login; returns what it locked out (the name, the address), if anything.
    public func failed(name: String, address: String, now: Double = Clock.now()) -> [String] {
        state.withLock { s in
            var locked: [String] = []
            for (key, bound) in [
                ("name:" + name, limits.failuresPerName), ("addr:" + address, limits.failuresPerAddress),
            ] {
                var times = (s.failures[key] ?? []).filter { now - $0 < limits.window }
                times.append(now)
                s.failures[key] = times
                if times.count >= bound {
                    s.lockedUntil[key] = now + limits.lockout
                    s.failures[key] = []
                    locked.append(key)
                }
            }
            if s.failures.count > 10_000 { s.failures = s.failures.filter { !$0.value.isEmpty } }
            return locked
        }
    }

    /// A successful login clears its name's failures.
    public func succeeded(name: String) { _ = state.withLock { $0.failures.removeValue(forKey: "name:" + name) } }
}
