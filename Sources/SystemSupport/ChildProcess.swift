import Glibc

/// A command run to completion with a line on its standard input (an alert command), in
/// its own process group, with a clean signal state and a minimal environment.
public enum ChildProcess {
    /// Runs `argv` with `input` on standard input; nil on exit status 0, else why not.
    public static func run(_ argv: [String], input: String, timeout: Double) -> String? {
        guard let program = argv.first else { return "no command" }
        // A socket pair rather than a pipe: writes use MSG_NOSIGNAL, so a command that exits
        // without reading its input cannot raise SIGPIPE in the daemon.
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            return "socketpair: \(String(cString: strerror(errno)))"
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var pid: pid_t = 0
        let args = argv.map { s in s.withCString { strdup($0) } } + [nil]
        defer { for a in args { free(a) } }
        let env =
            ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C.UTF-8"].map { s in
                s.withCString { strdup($0) }
            } + [nil]
        defer { for e in env { free(e) } }
        let rc =
            program.contains("/")
            ? posix_spawn(&pid, program, &actions, &attr, args, env)
            : posix_spawnp(&pid, program, &actions, &attr, args, env)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            return "cannot run \(program): \(String(cString: strerror(rc)))"
        }
        // Write the record; a command that does not read it still gets to finish.
        var bytes = Array(input.utf8) + [0x0A]
        var off = 0
        let deadline = Clock.monotonic() + timeout
        var status: Int32 = 0
        var exited = false
        while !exited {
            if off < bytes.count && fds[1] >= 0 {
                let n = bytes.withUnsafeMutableBytes {
                    send(fds[1], $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
                if n > 0 {
                    off += n
                } else if n < 0 && errno != EAGAIN {
                    close(fds[1])
                    fds[1] = -1
                }
                if off == bytes.count {
                    close(fds[1])
                    fds[1] = -1
                }
            }
            let w = waitpid(pid, &status, WNOHANG)
            if w == pid {
                exited = true
                break
            }
            if Clock.monotonic() > deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                if fds[1] >= 0 { close(fds[1]) }
                return "timed out after \(Int(timeout)) s"
            }
            usleep(2_000)
        }
        if fds[1] >= 0 { close(fds[1]) }
        bytes.removeAll()
        if (status & 0x7f) == 0 {
            let code = (status >> 8) & 0xff
            return code == 0 ? nil : "exit status \(code)"
        }
        return "killed by signal \(status & 0x7f)"
    }
}
