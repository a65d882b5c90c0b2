import Testing

@testable import Incidents

@Suite("Reading a log line's head without decoding it")
struct LogLineTests {
    @Test("event, id, time and a context line's ids by position; any other shape says so")
    func heads() {
        let line =
            #"{"event":"context","id":"inc-a","ids":["inc-a","inc-b"],"time":"2026-12-02T10:00:00Z","span":"before"}"#
        #expect(LogLine.head(line)?.event == "context" && LogLine.head(line)?.id == "inc-a")
        #expect(LogLine.time(line) == "2026-12-02T10:00:00Z")
        #expect(LogLine.ids(line) == ["inc-a", "inc-b"])
        // No `ids`: the line names one incident, its `id`.
        #expect(LogLine.ids(#"{"event":"context","id":"inc-a","time":"t"}"#) == [])
        // An escape, a number or an unfinished array: not read here (the caller decodes it whole).
        #expect(LogLine.ids(#"{"event":"context","id":"a","ids":["a","b\"c"]}"#) == nil)
        #expect(LogLine.ids(#"{"event":"context","id":"a","ids":["a",7]}"#) == nil)
        #expect(LogLine.ids(#"{"event":"context","id":"a","ids":["a","b""#) == nil)
        #expect(LogLine.ids(#"{"event":"context","id":"a","ids":[]}"#) == nil)
        #expect(LogLine.time(#"{"event":"hits","id":"a"}"#) == nil)
        #expect(LogLine.time(#"{"event":"hits","id":"a","time":"unterminated"#) == nil)
        #expect(LogLine.head(#"{"id":"a","event":"ack"}"#) == nil)
        // A quote ends a JSON string whatever follows it (a combining accent makes one character
        // of the two, not one byte).
        let accented = LogLine.head("{\"event\":\"ack\"\u{301},\"id\":\"inc-a\"}")
        #expect(accented?.event == "ack" && accented?.id == "")
        #expect(LogLine.head("") == nil && LogLine.time("") == nil && LogLine.ids("") == [])
    }
}
