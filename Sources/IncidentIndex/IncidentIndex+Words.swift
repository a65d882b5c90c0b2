import Foundation

extension IncidentIndex {
    /// A search's answer for one incident without the index (a log read in full): the same
    /// rule as the full-text index's (`phrase`), whole words in order with the last one also
    /// as the start of a word, over the same text (`searchText`), split as FTS5's `unicode61`
    /// splits it. Text with no word in it matches nothing.
    public static func matches(search: String, in text: String) -> Bool {
        let wanted = words(search)
        guard let last = wanted.last else { return false }
        let have = words(text)
        guard have.count >= wanted.count else { return false }
        for start in 0...(have.count - wanted.count) {
            var at = 0
            while at < wanted.count - 1, have[start + at] == wanted[at] { at += 1 }
            if at == wanted.count - 1, have[start + at].hasPrefix(last) { return true }
        }
        return false
    }

    /// The text of an incident the index searches: its site, URL and search term on one line,
    /// then each note on a line of its own.
    public static func searchText(host: String, url: String?, searchTerm: String?, notes: [String]) -> String {
        ([[host, url, searchTerm].compactMap { $0 }.joined(separator: " ")] + notes).joined(separator: "\n")
    }

    /// Words as FTS5's `unicode61` tokenizer makes them: runs of letters, digits and private-use
    /// characters, case and diacritics ignored (FTS5 ignores the diacritics of Latin letters
    /// only; here those of every script).
    static func words(_ text: String) -> [String] {
        var out: [String] = []
        var word = String.UnicodeScalarView()
        for s in text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).unicodeScalars {
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
