import CShims

#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread running a closure; `join()` waits for it. The ingest workers are
/// threads, not tasks: they block in `poll` and run CPU-bound loops for their lifetime.
final class PosixThread: @unchecked Sendable {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private var thread = pthread_t()
    let name: String

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.name = name
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    func join() { pthread_join(thread, nil) }
}

/// An eventfd that wakes a thread blocked in `poll`.
struct Wakeup {
    let fd: Int32 = esafety_eventfd()

    func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    func drain() {
        var v: UInt64 = 0
        _ = read(fd, &v, 8)
    }
}
