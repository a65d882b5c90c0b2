import CShims
import Glibc

/// A named POSIX thread running a closure; `join()` waits for it. The daemon's long-lived
/// workers (ingest, control, the incident sink, the log writer, alerts) are threads, not
/// tasks: they block in `poll` or `write` and run for the daemon's lifetime.
public final class PosixThread: @unchecked Sendable {
    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    private var thread = pthread_t()
    public let name: String

    /// Starts the thread; `name` (at most 15 bytes shown) is what `top -H` and `/proc` show.
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.name = name
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        let rc = pthread_create(
            &thread,
            nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                esafety_set_thread_name(box.name)
                box.body()
                return nil
            },
            box
        )
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    public func join() { pthread_join(thread, nil) }

    /// Lets the thread's resources go when it ends, for a thread nobody joins.
    public func detach() { pthread_detach(thread) }

    /// Gives the calling thread, and only it, the nice value `nice` (Linux keeps one per
    /// thread): higher is a lower priority. Raising it needs no privilege.
    @discardableResult
    public static func setNice(_ nice: Int32) -> Bool { esafety_set_thread_nice(nice) == 0 }
}

/// An eventfd that wakes a thread blocked in `poll`.
public struct Wakeup: Sendable {
    public let fd: Int32 = esafety_eventfd()

    public init() {}

    public func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Clears it; true when it had been signalled.
    @discardableResult
    public func drain() -> Bool {
        var v: UInt64 = 0
        return read(fd, &v, 8) == 8
    }

    /// Waits up to `milliseconds` for a signal.
    public func wait(milliseconds: Int32) {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&pfd, 1, milliseconds)
    }
}
