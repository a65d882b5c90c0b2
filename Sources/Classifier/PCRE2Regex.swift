import CPCRE2

/// One compiled, JIT-compiled PCRE2 pattern (8-bit, case-insensitive, bytes not UTF).
///
/// `@unchecked Sendable`: the compiled code is never mutated after `init` (compile and JIT
/// happen there), and PCRE2 documents compiled code as safe to share between threads
/// when each thread brings its own match data, which `PCRE2Scratch` provides.
/// This is the only file that imports `CPCRE2`.
public final class PCRE2Regex: @unchecked Sendable {
    private let code: OpaquePointer
    public let pattern: String
    let isJIT: Bool

    /// A pattern that did not compile: PCRE2's message and the offset in the pattern.
    public struct CompileError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var offset: Int
        public var description: String { "\(message) at offset \(offset)" }
    }

    public enum Outcome: Equatable, Sendable {
        case match, noMatch
        /// `pcre2_set_match_limit` was reached: treated as no match, and counted.
        case matchLimit
        case error(Int32)
    }

    /// The default bound on backtracking steps per match (PCRE2's own default is 10M,
    /// which lets one hostile pattern take milliseconds per line).
    public static let defaultMatchLimit: UInt32 = 100_000

    public init(_ pattern: String, caseless: Bool = true) throws(CompileError) {
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        var options: UInt32 = 0
        if caseless { options |= UInt32(PCRE2_CASELESS) }
        let compiled: OpaquePointer? =
            pattern.utf8.withContiguousStorageIfAvailable { utf8 in
                pcre2_compile_8(utf8.baseAddress, utf8.count, options, &errorCode, &errorOffset, nil)
            }
            ?? {
                let bytes = Array(pattern.utf8)
                return bytes.withUnsafeBufferPointer {
                    pcre2_compile_8($0.baseAddress, $0.count, options, &errorCode, &errorOffset, nil)
                }
            }()
        guard let compiled else {
            throw CompileError(message: Self.message(for: errorCode), offset: errorOffset)
        }
        self.code = compiled
        self.pattern = pattern
        self.isJIT = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE)) == 0
    }

    deinit { pcre2_code_free_8(code) }

    /// Matches `subject` (any bytes). Uses the JIT code when it compiled.
    /// - Complexity: bounded by the scratch's match limit.
    @inline(__always)
    public func match(_ subject: UnsafeBufferPointer<UInt8>, scratch: PCRE2Scratch) -> Outcome {
        let base = subject.baseAddress ?? UnsafePointer(scratch.empty)
        let rc = pcre2_match_8(code, base, subject.count, 0, 0, scratch.matchData, scratch.matchContext)
        if rc >= 0 { return .match }
        if rc == PCRE2_ERROR_NOMATCH { return .noMatch }
        if rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT
            || rc == PCRE2_ERROR_JIT_STACKLIMIT
        {
            return .matchLimit
        }
        return .error(rc)
    }

    static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer[0..<Int(n)], as: UTF8.self) : "PCRE2 error \(code)"
    }

    public static var version: String {
        var buffer = [UInt8](repeating: 0, count: 64)
        _ = buffer.withUnsafeMutableBytes { pcre2_config_8(UInt32(PCRE2_CONFIG_VERSION), $0.baseAddress) }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Per-thread match state: match data and a match context with the match limit.
/// Not shareable: one per thread or connection.
public final class PCRE2Scratch {
    fileprivate let matchData: OpaquePointer
    fileprivate let matchContext: OpaquePointer
    fileprivate let empty = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

    public init(matchLimit: UInt32 = PCRE2Regex.defaultMatchLimit) {
        matchData = pcre2_match_data_create_8(1, nil)!
        matchContext = pcre2_match_context_create_8(nil)!
        pcre2_set_match_limit_8(matchContext, matchLimit)
        pcre2_set_depth_limit_8(matchContext, matchLimit)
    }

    deinit {
        pcre2_match_data_free_8(matchData)
        pcre2_match_context_free_8(matchContext)
        empty.deallocate()
    }
}
