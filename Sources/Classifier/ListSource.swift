/// Where a generation of lists comes from: list folders, or a compiled snapshot.
public enum ListSource: Sendable, Equatable, CustomStringConvertible {
    case folders([String])
    case snapshot(String)

    /// Loads and compiles; errors name the folder, file and line, or the snapshot.
    public func load() throws(LoadError) -> CompiledLists {
        switch self {
        case .folders(let roots):
            do { return try ListLoader.load(roots: roots) } catch { throw .lists(error) }
        case .snapshot(let path):
            do { return try Snapshot.load(path) } catch { throw .snapshot(error) }
        }
    }

    public var description: String {
        switch self {
        case .folders(let roots): roots.joined(separator: ", ")
        case .snapshot(let path): "snapshot " + path
        }
    }

    public enum LoadError: Error, Sendable, CustomStringConvertible {
        case lists(ListError)
        case snapshot(SnapshotError)
        case noBundledLists

        public var description: String {
            switch self {
            case .lists(let e): e.description
            case .snapshot(let e): e.description
            case .noBundledLists: "no --lists given and no bundled Blocklists folder found (set ESAFETY_LISTS)"
            }
        }
    }

    /// From command-line choices: a snapshot wins; else the given folders; else the
    /// bundled `Blocklists/`.
    public static func resolve(lists: [String], snapshot: String?) throws(LoadError) -> ListSource {
        if let snapshot { return .snapshot(snapshot) }
        if !lists.isEmpty { return .folders(lists) }
        guard let bundled = ListPaths.bundled() else { throw .noBundledLists }
        return .folders([bundled])
    }
}
