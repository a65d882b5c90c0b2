/// Standard output for long listings: lines gathered into blocks of 64 KB, each one `print`,
/// not one `print` (a lock and a write to the stream) per line.
enum Output {
    static func lines<S: Sequence>(_ lines: S) where S.Element == String {
        var block = ""
        block.reserveCapacity(1 << 16)
        for line in lines {
            block += line
            block += "\n"
            if block.utf8.count >= 1 << 16 {
                write(&block)
            }
        }
        write(&block)
    }

    private static func write(_ block: inout String) {
        print(block, terminator: "")
        block.removeAll(keepingCapacity: true)
    }
}
