import Foundation
import Glibc

/// Who is acting: the invoking account (the sudo user when run through sudo), and the
/// check that they belong to the group that may see incidents.
public enum Identity {
    public static func name(of uid: uid_t) -> String {
        if let pw = getpwuid(uid), let n = pw.pointee.pw_name { return String(cString: n) }
        return "uid \(uid)"
    }

    /// The sudo user, when this process runs through sudo as root or as the account that owns
    /// the incident log (`sudo -u esafety`, the documented way for coordinators to act):
    /// accounts nobody logs in as, so `SUDO_USER` comes from sudo. Nil otherwise.
    public static func sudoUser(logOwner: uid_t?) -> String? {
        guard getuid() == 0 || (logOwner == getuid() && ProcessInfo.processInfo.environment["SUDO_UID"] != nil),
            let s = ProcessInfo.processInfo.environment["SUDO_USER"], !s.isEmpty
        else { return nil }
        return s
    }

    /// The owner of `path`, or nil.
    public static func owner(of path: String) -> uid_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_uid : nil
    }

    /// The person at the keyboard: the sudo user through sudo, else the account.
    public static func account(logOwner: uid_t? = nil) -> String {
        sudoUser(logOwner: logOwner) ?? name(of: getuid())
    }

    /// Through sudo, the sudo user must be in `group` (root itself may always act); without
    /// sudo, the file's permissions decide.
    public static func requireMember(of group: String, logOwner: uid_t? = nil) -> Refusal? {
        guard let user = sudoUser(logOwner: logOwner), user != "root" else { return nil }
        guard let gr = getgrnam(group) else {
            return Refusal(
                "the group \(group), whose members may see and act on incidents, does not exist on this machine "
                    + "(systemd-sysusers creates it; or set incidents.log_group)",
                status: 2
            )
        }
        let gid = gr.pointee.gr_gid
        guard let pw = getpwnam(user) else {
            return Refusal("\(user) (SUDO_USER) is not an account on this machine", status: 2)
        }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        if getgrouplist(user, pw.pointee.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, pw.pointee.pw_gid, &groups, &count)
        }
        guard groups.prefix(Int(count)).contains(gid) else {
            return Refusal(
                "you may not see or act on incidents: \(user) is not a member of the group \(group); ask your "
                    + "network admin to add you",
                status: 2
            )
        }
        return nil
    }

    /// Why someone may not see or act on incidents, with the exit status (2: cannot).
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public var description: String
        public var status: Int32
        init(_ description: String, status: Int32) { (self.description, self.status) = (description, status) }
    }
}
