import Glibc
import SystemSupport

/// Reads list roots in the squidGuard/UT1 layout (`<root>/<category>/{domains,urls,
/// expressions}`) and compiles them into one `CompiledLists` generation.
///
/// Several roots may be given; folders that name the same category (after
/// `CategoryMapping`) are merged. Symbolic links between category folders (UT1's
/// `porn -> adult`) are skipped so that no list is read twice.
public enum ListLoader {
    /// The largest list file read (UT1's biggest is about 100 MB): anything larger is refused, so
    /// a mistaken link (to a log, a disk image) cannot take the memory of the machine.
    static let maxFileBytes = 1 << 30

    public static func load(roots: [String]) throws(ListError) -> CompiledLists {
        var builder = Builder()
        for root in roots { try builder.addRoot(root) }
        return try builder.compile(sources: roots)
    }

    struct Folder {
        var path: String
        var category: String
        var metadataPath: String?
    }

    struct Builder {
        var folders: [Folder] = []
        var metadata: [String: (Category, String)] = [:]  // name -> (category, file)
        var diagnostics: [Diagnostic] = []

        mutating func addRoot(_ root: String) throws(ListError) {
            guard FileSystem.isDirectory(root) else {
                throw ListError(.missingFolder, file: root, "no such list folder")
            }
            let entries: [String]
            do { entries = try FileSystem.listDirectory(root) } catch {
                throw ListError(.unreadableFile, file: root, "cannot read folder: \(error)")
            }
            let base = root.hasSuffix("/") ? String(root.dropLast()) : root
            for name in entries.sorted() where !name.hasPrefix(".") {
                let path = base + "/" + name
                guard FileSystem.isDirectory(path), !FileSystem.isSymlink(path) else { continue }
                // A category folder that cannot be read is an error: skipping it would drop the
                // category (and its canary) from the filter without a word.
                let names: [String]
                do { names = try FileSystem.listDirectory(path) } catch {
                    throw ListError(.unreadableFile, file: path, "cannot read category folder: \(error)")
                }
                let metaPath = path + "/category.toml"
                var categoryName = name
                var metaFile: String? = nil
                if names.contains("category.toml") {
                    metaFile = metaPath
                    let text: String
                    do { text = try FileSystem.readText(metaPath, limit: 1 << 20) } catch {
                        throw ListError(.unreadableFile, file: metaPath, "cannot read: \(error)")
                    }
                    var category = try Category.parseMetadata(text, file: metaPath, defaultName: name)
                    if name == Category.allowlistName {
                        category.isAllowlist = true
                        category.locked = false
                    }
                    if metadata[name] == nil { metadata[name] = (category, metaPath) }
                } else {
                    categoryName = name == Category.allowlistName ? name : CategoryMapping.name(forFolder: name)
                }
                // Only folders holding at least one list file count as categories.
                let hasLists = ListFileKind.allCases.contains { kind in
                    !FileSystem.listFiles(named: kind.rawValue, among: names, in: path).isEmpty
                }
                if !hasLists && metaFile == nil { continue }
                folders.append(Folder(path: path, category: categoryName, metadataPath: metaFile))
            }
        }

        mutating func compile(sources: [String]) throws(ListError) -> CompiledLists {
            // Categories, in a stable order: bundled taxonomy order first, then by name.
            var names: [String] = []
            for f in folders where !names.contains(f.category) { names.append(f.category) }
            let rank: (String) -> Int = { n in DefaultTaxonomy.categories.firstIndex { $0.name == n } ?? Int.max }
            names.sort { (rank($0), $0) < (rank($1), $1) }
            guard names.count < Int(EntryTableBuilder.markerCategory) else {
                throw ListError(.tooManyCategories, file: sources.joined(separator: ","), "more than 65534 categories")
            }
            var categories: [Category] = []
            for name in names {
                if let (meta, _) = metadata[name] {
                    categories.append(meta)
                } else if name == Category.allowlistName {
                    categories.append(Category(name: name, displayName: "Allowlist", isAllowlist: true))
                } else if let known = DefaultTaxonomy.category(named: name) {
                    categories.append(known)
                } else {
                    categories.append(CategoryMapping.unmapped(name))
                }
            }
            for c in categories where c.locked && c.isAllowlist {
                throw ListError(.badMetadata, file: c.name, "the allowlist cannot be locked")
            }
            var files: [String] = []
            var domains = EntryTableBuilder(reversedHash: true)
            var urls = EntryTableBuilder(reversedHash: false)
            var patternRules: [PatternRule] = []
            var counts = [CompiledLists.EntryCounts](repeating: .init(), count: categories.count)
            var scratch: [UInt8] = []
            scratch.reserveCapacity(512)
            for folder in folders {
                let categoryIndex = UInt16(names.firstIndex(of: folder.category)!)
                for kind in ListFileKind.allCases {
                    let fileNames: [String]
                    do { fileNames = try FileSystem.listFiles(in: folder.path, base: kind.rawValue) } catch {
                        throw ListError(.unreadableFile, file: folder.path, "cannot read category folder: \(error)")
                    }
                    for fileName in fileNames {
                        let path = folder.path + "/" + fileName
                        guard files.count < Int(UInt16.max) else {
                            throw ListError(.tooManyCategories, file: path, "more than 65535 list files")
                        }
                        let fileIndex = UInt16(files.count)
                        files.append(path)
                        let bytes: [UInt8]
                        do { bytes = try FileSystem.readBytes(path, limit: ListLoader.maxFileBytes) } catch {
                            throw ListError(.unreadableFile, file: path, "cannot read: \(error)")
                        }
                        if kind == .domains { domains.reserve(domains.count + bytes.count / 16) }
                        bytes.withUnsafeBufferPointer { all in
                            var lineNumber: UInt32 = 0
                            var start = 0
                            let n = all.count
                            while start < n {
                                var end = start
                                while end < n, all[end] != 0x0A { end += 1 }
                                lineNumber += 1
                                let line = UnsafeBufferPointer(rebasing: all[start..<end])
                                ListLine.parse(line, kind: kind, scratch: &scratch) { entry in
                                    switch entry {
                                    case .domain(let key, let subdomainsOnly):
                                        domains.add(
                                            key,
                                            rule: Rule(
                                                category: categoryIndex,
                                                file: fileIndex,
                                                line: lineNumber,
                                                subdomainsOnly: subdomainsOnly
                                            )
                                        )
                                        counts[Int(categoryIndex)].domains += 1
                                    case .url(let key, let host):
                                        urls.add(
                                            host,
                                            rule: Rule(
                                                category: EntryTableBuilder.markerCategory,
                                                file: fileIndex,
                                                line: lineNumber
                                            )
                                        )
                                        urls.add(
                                            key,
                                            rule: Rule(category: categoryIndex, file: fileIndex, line: lineNumber)
                                        )
                                        counts[Int(categoryIndex)].urls += 1
                                    case .pattern(let source):
                                        patternRules.append(
                                            PatternRule(
                                                source: source,
                                                rule: Rule(category: categoryIndex, file: fileIndex, line: lineNumber)
                                            )
                                        )
                                        counts[Int(categoryIndex)].patterns += 1
                                    case .invalid(let kind, let message):
                                        diagnostics.append(
                                            Diagnostic(.warning, kind, file: path, line: Int(lineNumber), message)
                                        )
                                    }
                                }
                                start = end + 1
                            }
                        }
                    }
                }
            }
            let (domainTable, domainDuplicates) = domains.compile()
            let (urlTable, urlDuplicates) = urls.compile()
            for d in domainDuplicates + urlDuplicates {
                diagnostics.append(
                    Diagnostic(
                        .warning,
                        .duplicate,
                        file: files[Int(d.again.file)],
                        line: d.again.line,
                        "duplicate entry \(Terminal.escape(d.key)) (first at "
                            + "\(files[Int(d.first.file)]):\(d.first.line))"
                    )
                )
            }
            var patternDiagnostics: [Diagnostic] = []
            let patternSet = PatternSet(rules: patternRules) { index, error in
                let r = patternRules[index].rule
                patternDiagnostics.append(
                    Diagnostic(
                        .warning,
                        .badPattern,
                        file: files[Int(r.file)],
                        line: r.line,
                        "pattern does not compile: \(error)"
                    )
                )
            }
            diagnostics += patternDiagnostics
            return CompiledLists(
                categories: categories,
                files: files,
                domains: domainTable,
                urls: urlTable,
                patterns: patternSet,
                counts: counts,
                diagnostics: diagnostics,
                sources: sources
            )
        }
    }
}
