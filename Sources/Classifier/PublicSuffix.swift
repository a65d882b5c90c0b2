import SystemSupport

/// Registrable domains (eTLD+1) from the Public Suffix List, so `a.b.example.co.uk` and
/// `www.example.co.uk` are one site for de-duplication. Reads Debian's `publicsuffix`
/// package file; without it, falls back to a small built-in set of common suffixes.
public final class PublicSuffix: Sendable {
    let rules: Set<String>
    let wildcards: Set<String>
    let exceptions: Set<String>

    public static let debianPath = "/usr/share/publicsuffix/public_suffix_list.dat"

    public init(text: String) {
        var r = Set<String>()
        var w = Set<String>()
        var e = Set<String>()
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.split(separator: " ").first.map(String.init) ?? ""
            if line.isEmpty || line.hasPrefix("//") { continue }
            let ascii = Host.normalize(
                line.replacingOccurrences(of: "*.", with: "").replacingOccurrences(of: "!", with: "")
            )?.0
            guard let a = ascii else { continue }
            if line.hasPrefix("!") { e.insert(a) } else if line.hasPrefix("*.") { w.insert(a) } else { r.insert(a) }
        }
        rules = r
        wildcards = w
        exceptions = e
    }

    public static func load(path: String = debianPath) -> PublicSuffix {
        if let text = try? FileSystem.readText(path) { return PublicSuffix(text: text) }
        return PublicSuffix(
            text: "com\nnet\norg\nedu\ngov\nuk\nco.uk\norg.uk\nac.uk\nsch.uk\ngov.uk\nde\nfr\nio\ninfo\n"
        )
    }

    /// Whether a normalised host is itself a public suffix (`com`, `co.uk`, a name under a
    /// wildcard rule), so a list entry for it would cover every site beneath it.
    public func isPublicSuffix(_ host: String) -> Bool {
        if exceptions.contains(host) { return false }
        if rules.contains(host) { return true }
        guard let dot = host.firstIndex(of: ".") else { return false }
        return wildcards.contains(String(host[host.index(after: dot)...]))
    }

    /// The registrable domain of a normalised host; the host itself for IP addresses and
    /// for names that are a public suffix.
    public func registrableDomain(_ host: String) -> String {
        var starts: [Int] = [0]  // where each label begins
        var numeric = true
        var i = 0
        for b in host.utf8 {
            if b == UInt8(ascii: ":") { return host }
            if b == UInt8(ascii: ".") {
                starts.append(i + 1)
            } else if b < UInt8(ascii: "0") || b > UInt8(ascii: "9") {
                numeric = false
            }
            i += 1
        }
        if numeric || starts.count < 2 { return host }
        let utf8 = Array(host.utf8)
        func suffix(_ label: Int) -> String { String(decoding: utf8[starts[label]...], as: UTF8.self) }
        let labels = starts.count
        // The longest matching public suffix, in labels.
        var suffixLength = 1
        for i in 0..<labels {
            let candidate = suffix(i)
            if exceptions.contains(candidate) {
                suffixLength = labels - i - 1
                break
            }
            if rules.contains(candidate) {
                suffixLength = labels - i
                break
            }
            if i + 1 < labels, wildcards.contains(suffix(i + 1)) {
                suffixLength = labels - i
                break
            }
        }
        guard suffixLength < labels else { return host }
        return suffix(labels - suffixLength - 1)
    }
}
