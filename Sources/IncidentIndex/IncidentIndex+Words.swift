import Foundation

extension IncidentIndex {
    /// A search as the full-text index answers it (`fullTextQuery`), for a log read in full:
    /// each of its whole words anywhere in an incident's `searchText`, in any order, the last
    /// one also as the start of a word, both split as FTS5's `unicode61` splits them (and as
    /// a trust's central store splits them: the same search finds the same incidents there).
    /// The search is split once, not once per incident. Text with no word in it matches nothing.
    public struct Search: Sendable {
        let words: [String]

        public init(_ text: String) { words = IncidentIndex.words(text) }

        public func matches(_ text: String) -> Bool {
            guard let last = words.last else { return false }
            let have = IncidentIndex.words(text)
            for word in words.dropLast() where !have.contains(word) { return false }
            return have.contains { $0.hasPrefix(last) }
        }
    }

    /// A search as a query of SQLite's full-text index (FTS5): each word quoted (so nothing in
    /// it is FTS5's syntax), all of them required in any order (FTS5 joins phrases with AND),
    /// the last one also as the start of a word. The words are folded as the indexed text was
    /// (`indexed`). Text with no word in it is the empty phrase, which no row matches (as a
    /// full read finds nothing for it).
    static func fullTextQuery(_ text: String) -> String {
        let words = IncidentIndex.words(text)
        guard !words.isEmpty else { return "\"\"" }
        return words.map { "\"" + $0 + "\"" }.joined(separator: " ") + "*"
    }

    /// The text of an incident the index searches: its site, URL and search term on one line,
    /// then each note on a line of its own.
    public static func searchText(host: String, url: String?, searchTerm: String?, notes: [String]) -> String {
        [host, url, searchTerm].compactMap { $0 }.joined(separator: " ") + notes.map(searchText(addingNote:)).joined()
    }

    /// What a note adds to the end of an incident's `searchText` (for the index to append to
    /// the text it holds).
    static func searchText(addingNote note: String) -> String { "\n" + note }

    /// Text as the full-text index keeps it: lowercased and its diacritics dropped, as `words`
    /// folds a search (and as a trust's central store folds its words), when it is not all
    /// ASCII; as it is otherwise (FTS5 lowercases ASCII itself). FTS5's `unicode61` alone drops
    /// the diacritics of Latin letters only: `ελληνικα` did not find "Ελληνικά" in the index,
    /// though a full read of the log did.
    static func indexed(_ text: String) -> String {
        guard !text.utf8.allSatisfy({ $0 < 0x80 }) else { return text }
        return text.lowercased().folding(options: .diacriticInsensitive, locale: nil)
    }

    /// Words as FTS5's `unicode61` tokenizer makes them: runs of letters, digits and private-use
    /// characters, lowercased (not case-folded: `ß` stays, as in FTS5), diacritics ignored
    /// (those of every script, as the index's text is kept: `indexed`).
    static func words(_ text: String) -> [String] {
        var out: [String] = []
        var word = String.UnicodeScalarView()
        let text = text.lowercased().folding(options: .diacriticInsensitive, locale: nil)
        for s in text.unicodeScalars {
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
