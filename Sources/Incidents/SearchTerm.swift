import SystemSupport

/// The search term in a search engine's URL (Google, Bing, DuckDuckGo, YouTube, Yahoo...).
public enum SearchTerm {
    static let keys = ["q", "query", "search_query", "p", "text", "wd"]

    static func extract(_ url: String) -> String? {
        guard url.utf8.contains(UInt8(ascii: "?")), let qm = url.firstIndex(of: "?") else { return nil }
        let host = url.lowercased()
        guard
            host.contains("google.") || host.contains("bing.") || host.contains("duckduckgo.")
                || host.contains("youtube.")
                || host.contains("yahoo.") || host.contains("ecosia.") || host.contains("yandex.")
                || host.contains("baidu.")
                || host.contains("/search")
        else { return nil }
        for pair in url[url.index(after: qm)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, keys.contains(String(kv[0])) else { continue }
            return decode(String(kv[1]))
        }
        return nil
    }

    static func decode(_ s: String) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if c == UInt8(ascii: "%"), it.count >= 2,
                let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return Terminal.escape(String(decoding: bytes, as: UTF8.self))
    }
}
