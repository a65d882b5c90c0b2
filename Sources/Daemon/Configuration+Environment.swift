import Classifier
import Glibc
import Incidents

extension DaemonConfiguration {
    /// What the configuration names on this machine and in the lists, checked the same way by
    /// `--check-config`, the start and every reload, so that a check that passes means the
    /// start will not fail: the groups exist, the mapping files read, the alert programs run,
    /// and every category a group names is in the lists.
    func environmentProblems(lists: CompiledLists) -> [Error] {
        let file = path ?? "built-in defaults"
        var problems: [Error] = []
        func problem(_ option: String, _ message: String) {
            problems.append(Error(file: file, line: nil, option: option, message: message))
        }
        var groups: [(String, String?)] = [
            ("incidents.log_group", incidentLogGroup), ("control_socket.group", controlGroup),
        ]
        for (i, s) in ingest.enumerated() { groups.append(("ingest[\(i)].group", s.group)) }
        for case (let option, let name?) in groups where getgrnam(name) == nil {
            problem(option, "the group \(name) does not exist on this machine (systemd-sysusers creates it)")
        }
        for (option, mapping) in [("incidents.devices", deviceMap), ("incidents.users", userMap)] {
            guard let mapping else { continue }
            do { _ = try MappingFile.load(mapping) } catch { problem(option, error.description) }
        }
        for (i, command) in alerts.commands.enumerated() where access(command.argv[0], X_OK) != 0 {
            let why = String(cString: strerror(errno))
            problem("alerts.commands[\(i)].command", "cannot run \(command.argv[0]): \(why)")
        }
        let known = Set(lists.categories.map(\.name))
        for (i, group) in policy.groups.enumerated() {
            for category in (group.categories ?? []).sorted() where !known.contains(category) {
                problem(
                    "incidents.groups[\(i)].categories",
                    "group \(group.name) names the category \(category), which no list has"
                )
            }
        }
        for category in (policy.defaultGroup.categories ?? []).sorted() where !known.contains(category) {
            problem("incidents.default_group.categories", "the category \(category) is in no list")
        }
        return problems
    }
}
