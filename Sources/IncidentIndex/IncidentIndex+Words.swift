import Foundation

extension IncidentIndex {
    /// A search as the full-text index answers it (`phrase`), for a log read in full: whole
    /// words in order with the last one also as the start of a word, over an incident's
    /// `searchText`, both split as FTS5's `unicode61` splits them. The search is split once,
    /// not once per incident. Text with no word in it matches nothing.
    public struct Search: Sendable {
        let words: [String]

        public init(_ text: String) { words = IncidentIndex.words(text) }

        public func matches(_ text: String) -> Bool {
            guard let last = words.last else { return false }
            let have = IncidentIndex.words(text)
            guard have.count >= words.count else { return false }
            for start in 0...(have.count - words.count) {
                var at = 0
                while at < words.count - 1, have[start + at] == words[at] { at += 1 }
                if at == words.count - 1, have[start + at].hasPrefix(last) { return true }
            }
            return false
        }
    }

    /// The text of an incident the index searches: its site, URL and search term on one line,
    /// then each note on a line of its own.
    public static func searchText(host: String, url: String?, searchTerm: String?, notes: [String]) -> String {
        ([[host, url, searchTerm].compactMap { $0 }.joined(separator: " ")] + notes).joined(separator: "\n")
    }

    /// Words as FTS5's `unicode61` tokenizer makes them: runs of letters, digits and private-use
    /// characters, lowercased (not case-folded: `ß` stays, as in FTS5), diacritics ignored
    /// (FTS5 ignores the diacritics of Latin letters only; here those of every script).
    static func words(_ text: String) -> [String] {
        var out: [String] = []
        var word = String.UnicodeScalarView()
        for s in text.lowercased().folding(options: .diacriticInsensitive, locale: nil).unicodeScalars {
            switch s.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                .decimalNumber, .letterNumber, .otherNumber, .privateUse:
                word.append(s)
            default:
                if !word.isEmpty { out.append(String(word)) }
                word = String.UnicodeScalarView()
            }
        }
        if !word.isEmpty { out.append(String(word)) }
        return out
    }
}
