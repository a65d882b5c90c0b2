/// A value in a category's `meta.toml`: the subset of TOML the metadata needs (a quoted
/// string with `\n \t \" \\` escapes, or true/false; a trailing comment), with errors that
/// name the file and line.
enum TOMLValue: Equatable {
    case string(String)
    case bool(Bool)

    static func parse(_ raw: Substring, file: String, line: Int) throws(ListError) -> TOMLValue {
        var text = raw
        // Strip a trailing comment outside quotes.
        if !text.hasPrefix("\"") && !text.hasPrefix("'"), let hash = text.firstIndex(of: "#") {
            text = text[..<hash].trimmingSpaces()
        }
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        guard let quote = text.first, quote == "\"" || quote == "'" else {
            throw ListError(.badMetadata, file: file, line: line, "expected a quoted string, true or false")
        }
        var out = ""
        var index = text.index(after: text.startIndex)
        var closed = false
        while index < text.endIndex {
            let c = text[index]
            if c == quote {
                closed = true
                index = text.index(after: index)
                break
            }
            if c == "\\" && quote == "\"" {
                index = text.index(after: index)
                guard index < text.endIndex else { break }
                switch text[index] {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                default:
                    throw ListError(.badMetadata, file: file, line: line, "unsupported escape `\\\(text[index])`")
                }
            } else {
                out.append(c)
            }
            index = text.index(after: index)
        }
        guard closed else { throw ListError(.badMetadata, file: file, line: line, "unterminated string") }
        let rest = text[index...].trimmingSpaces()
        guard rest.isEmpty || rest.hasPrefix("#") else {
            throw ListError(.badMetadata, file: file, line: line, "unexpected text after the value")
        }
        return .string(out)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
