import Foundation
import Glibc
import SystemSupport
import TestSupport
import Testing

@testable import Classifier

@Suite("Reading list folders: only regular files, nothing unreadable skipped")
struct ListLoaderTests {
    static func error(_ lists: TempLists) -> ListError? {
        do {
            _ = try lists.load()
            return nil
        } catch { return error as? ListError }
    }

    @Test("a FIFO as a list file is refused at once, naming it (reload and status hung on it)")
    func fifo() throws {
        let lists = TempLists(["gambling/domains": "bet.example\n", "games/domains": "x.example\n"])
        let fifo = lists.root + "/gambling/domains.2"
        #expect(mkfifo(fifo, 0o644) == 0)
        let e = try #require(Self.error(lists))
        #expect(e.code == .unreadableFile)
        #expect(e.description.contains("gambling/domains.2"), "\(e)")
        #expect(e.description.contains("a FIFO, not a regular file"), "\(e)")
    }

    @Test("a list file linked to /dev/zero is refused, not read for ever (lint went to 7.3 GB)")
    func device() throws {
        let lists = TempLists(["gambling/domains": "bet.example\n"])
        #expect(symlink("/dev/zero", lists.root + "/gambling/urls") == 0)
        let e = try #require(Self.error(lists))
        #expect(e.description.contains("gambling/urls: cannot read: a character device, not a regular file"), "\(e)")
    }

    @Test("category.toml that is not a regular file is refused")
    func metadataFifo() throws {
        let lists = TempLists(["gambling/domains": "bet.example\n"])
        #expect(mkfifo(lists.root + "/gambling/category.toml", 0o644) == 0)
        let e = try #require(Self.error(lists))
        #expect(e.description.contains("category.toml"), "\(e)")
    }

    @Test("a list file over the size bound is refused before it is read")
    func tooLarge() throws {
        let dir = TempDir()
        dir.write("big", String(repeating: "x", count: 4096))
        #expect(throws: FileSystem.Error.self) { try FileSystem.readBytes(dir.path + "/big", limit: 1024) }
        let text = try FileSystem.readText(dir.path + "/big", limit: 4096)
        #expect(text.count == 4096)
    }
}
