import Glibc
import SystemSupport

/// Where the bundled `Blocklists/` folder is when no `--lists` is given.
public enum ListPaths {
    /// In order: `$ESAFETY_LISTS`; `./Blocklists`; a `Blocklists` folder beside or above
    /// the executable (a source checkout's `.build/debug/esafety`); then the installed
    /// locations `/usr/local/share/esafety/Blocklists` and `/usr/share/esafety/Blocklists`.
    public static func bundled() -> String? {
        if let env = getenv("ESAFETY_LISTS") { return String(cString: env) }
        if FileSystem.isDirectory("Blocklists") { return "Blocklists" }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            var dir = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for _ in 0..<6 {
                guard let slash = dir.lastIndex(of: "/") else { break }
                dir = String(dir[..<slash])
                let candidate = dir + "/Blocklists"
                if FileSystem.isDirectory(candidate) { return candidate }
            }
        }
        for candidate in ["/usr/local/share/esafety/Blocklists", "/usr/share/esafety/Blocklists"]
        where FileSystem.isDirectory(candidate) {
            return candidate
        }
        return nil
    }
}
