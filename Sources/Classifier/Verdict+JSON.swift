import SystemSupport

extension MatchDetail {
    /// `{"name":…,"severity":…,"kind":…,"file":…,"line":…,"rule":…,"locked":…}`
    public func write(to json: inout JSONText) {
        json.beginObject()
        json.field("name", .string(name))
        json.field("severity", .string(severity.description))
        json.field("kind", .string(kind.description))
        json.field("file", .string(file))
        json.field("line", .int(line))
        json.field("rule", .string(rule))
        json.field("locked", .bool(locked))
        json.endObject()
    }
}

extension Verdict {
    /// One JSON object: `target`, `host`, `url`, `categories`, `allowed_by`, `suppressed`.
    public var json: String {
        var j = JSONText()
        j.beginObject()
        j.field("target", .string(target))
        j.field("host", .string(host))
        j.field("url", url)
        j.key("categories")
        j.beginArray()
        for c in categories { c.write(to: &j) }
        j.endArray()
        j.key("allowed_by")
        if let allowedBy { allowedBy.write(to: &j) } else { j.value(.null) }
        j.key("suppressed")
        j.beginArray()
        for c in suppressed { c.write(to: &j) }
        j.endArray()
        if let error { j.field("error", .string(error)) }
        j.endObject()
        return j.text
    }
}
