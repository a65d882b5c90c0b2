import CPAM
import Central
import Glibc
import HummingbirdBcrypt
import SystemSupport

/// The console's accounts: one file, one account per line, `name:role:sites:hash`, where
/// `hash` is a bcrypt hash (cost 12 unless given), or `pam` for a directory account whose
/// password PAM checks, and `sites` a comma-separated list of the sites it sees in a trust's
/// console (`*`: every one; a school's own console has one site and ignores it).
/// Written whole to a new file and renamed over the old (mode 0600, never through a symbolic
/// link); read whole at each login, so a change takes effect without a restart. Passwords are
/// never stored or logged, only their hashes.
public struct Accounts: Sendable {
    public enum Role: String, Sendable, CaseIterable {
        /// Read and act on every incident of their sites; reads the console's access log.
        case dsl
        /// Read and act on every incident of their sites.
        case coordinator
        /// Monitoring health only: never a child's record.
        case it
        /// The anonymised report only.
        case governor

        /// May this role see a child's record (an incident, a person's history, the live list)?
        public var readsRecords: Bool { self == .dsl || self == .coordinator }
    }

    public struct Account: Sendable, Equatable {
        public var name: String
        public var role: Role
        public var sites: [String]
        public var hash: String

        public init(name: String, role: Role, sites: [String], hash: String) {
            (self.name, self.role, self.sites, self.hash) = (name, role, sites, hash)
        }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public let path: String
    /// The account the console runs as, which must read the file: given the file when root
    /// writes it (mode 0600 either way).
    public let serviceAccount: String?
    public init(path: String, serviceAccount: String? = nil) {
        (self.path, self.serviceAccount) = (path, serviceAccount)
    }

    /// A name: letters, digits and `.`, `_`, `@`, `-`, 1 to 64 of them (a directory login fits).
    public static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "@")
                    || $0 == UInt8(ascii: "-")
            }
    }

    /// A site as the central store names them (a-z, 0-9, `.`, `_`, `-`), or `*`: every site.
    public static func validSite(_ site: String) -> Bool { site == "*" || Forwarder.validSite(site) }

    /// Every account; none when the file does not exist yet.
    public func all() throws(Failure) -> [Account] {
        guard FileSystem.exists(path) else { return [] }
        let text: String
        do { text = try FileSystem.readText(path) } catch {
            throw Failure(description: "\(path): cannot read the console's accounts: \(error)")
        }
        var accounts: [Account] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard f.count == 4, Self.validName(String(f[0])), let role = Role(rawValue: String(f[1])),
                f[3].hasPrefix("$2") || f[3] == Self.pam,
                f[2].split(separator: ",").allSatisfy({ Self.validSite(String($0)) })
            else {
                throw Failure(
                    description: "\(path):\(n + 1): not an account line (name:role:sites:bcrypt-hash, or pam)"
                )
            }
            accounts.append(
                Account(
                    name: String(f[0]),
                    role: role,
                    sites: f[2].split(separator: ",").map(String.init),
                    hash: String(f[3])
                )
            )
        }
        return accounts
    }

    public func find(_ name: String) throws(Failure) -> Account? { try all().first { $0.name == name } }

    /// The bcrypt hash of a password (slow on purpose: cost 12 is about a quarter of a second).
    public static func hash(_ password: String, cost: UInt8 = 12) -> String { Bcrypt.hash(password, cost: cost) }

    /// Whether `password` is this account's. For an unknown name, a hash of the same cost is
    /// still checked, so the time taken does not tell which names exist.
    public static func verify(_ password: String, _ account: Account?, pamService: String = "esafety-web") -> Bool {
        if let account, account.hash == pam {
            var error = [CChar](repeating: 0, count: 256)
            return esafety_pam_check(pamService, account.name, password, &error, error.count) == 0
        }
        guard let account else {
            _ = Bcrypt.verify(password, hash: decoy)
            return false
        }
        return Bcrypt.verify(password, hash: account.hash)
    }

    private static let decoy = Bcrypt.hash("not a password", cost: 12)

    /// The hash field of an account whose password is the school's directory's, checked through
    /// PAM (`esafety web user add NAME --role ROLE --pam`): the console keeps no password for it,
    /// only the role and sites.
    public static let pam = "pam"

    /// Adds or replaces an account.
    public func put(_ account: Account) throws(Failure) {
        var accounts = try all()
        if let i = accounts.firstIndex(where: { $0.name == account.name }) {
            accounts[i] = account
        } else {
            accounts.append(account)
        }
        try write(accounts)
    }

    /// Removes an account; false when there was none of that name.
    public func remove(_ name: String) throws(Failure) -> Bool {
        var accounts = try all()
        guard let i = accounts.firstIndex(where: { $0.name == name }) else { return false }
        accounts.remove(at: i)
        try write(accounts)
        return true
    }

    private func write(_ accounts: [Account]) throws(Failure) {
        var text = "# esafety console accounts: name:role:sites:bcrypt-hash (esafety web user ...)\n"
        for a in accounts { text += "\(a.name):\(a.role.rawValue):\(a.sites.joined(separator: ",")):\(a.hash)\n" }
        do {
            try text.withUTF8 { try FileSystem.writeAtomically(path, bytes: UnsafeRawBufferPointer($0), mode: 0o600) }
        } catch {
            throw Failure(description: "\(path): cannot write the console's accounts: \(error)")
        }
        if getuid() == 0, let name = serviceAccount, let pw = getpwnam(name) {
            if chown(path, pw.pointee.pw_uid, pw.pointee.pw_gid) != 0 {
                throw Failure(
                    description: "\(path): cannot give the file to \(name): \(String(cString: strerror(errno)))"
                )
            }
        }
    }
}
