import CGPIOD
import Foundation
import Synchronization

/// A pressd thread's name: what it does (`role`: `control`, `modbus`, `stepper`, …) and, for
/// threads of which there are several, which one (`instance`: a device or a channel).
public struct ThreadName: Sendable, Equatable, CustomStringConvertible {
    public let role: String
    public let instance: String?

    public init(_ role: String, instance: String? = nil) { self.role = role; self.instance = instance }

    /// Linux keeps 15 bytes of a thread's name.
    public static let osLimit = 15

    /// `pressd-ROLE` or `pressd-ROLE-INSTANCE`: logs, docs, Foundation's `Thread.name`.
    public var full: String { "pressd-" + role + (instance.map { "-" + $0 } ?? "") }
    public var description: String { full }

    /// What `top -H`, `ps -L`, gdb and `/proc/PID/task/*/comm` show, at most 15 bytes of
    /// UTF-8 and never cut inside a character: the full name when it fits
    /// (`pressd-control`); else `pd-ROLE-INSTANCE` (`pd-stepper-A`, `pd-modbus-plc`);
    /// else the instance's start and end around a `~` (`pd-stepper-le~1` for channel
    /// `left-1`), so that instances that differ at either end stay apart. Two live
    /// threads never get the same name: see ``DaemonThread``.
    public var osName: String {
        if full.utf8.count <= Self.osLimit { return full }
        let prefix = "pd-" + role + (instance == nil ? "" : "-")
        guard let instance else { return Self.fit(prefix, Self.osLimit) }
        if prefix.utf8.count + instance.utf8.count <= Self.osLimit { return prefix + instance }
        let room = Self.osLimit - prefix.utf8.count - 1
        guard room >= 2 else { return Self.fit(prefix + instance, Self.osLimit) }
        let head = Self.fit(instance, room - room / 2)
        let tail = Self.fitEnd(instance, room - head.utf8.count)
        return prefix + head + "~" + tail
    }

    /// The longest start of `s` of at most `bytes` bytes of UTF-8, whole characters only.
    static func fit(_ s: String, _ bytes: Int) -> String {
        var out = "", n = 0
        for c in s {
            let k = c.utf8.count
            guard n + k <= bytes else { break }
            out.append(c); n += k
        }
        return out
    }

    /// The longest end of `s` of at most `bytes` bytes of UTF-8, whole characters only.
    static func fitEnd(_ s: String, _ bytes: Int) -> String {
        String(fit(String(s.reversed()), bytes).reversed())
    }
}

/// A named thread that runs `body` once, with a stop request it polls and a wait for its
/// end: the start/stop/name pattern of every pressd thread (the control loop, the socket's
/// acceptor, the run-log and state writers, the MQTT publisher, the spectrum watcher, the
/// Modbus pollers, the GPIO device threads).
///
/// The name reaches the OS (``ThreadName/osName``), unique among the live threads of
/// the process: a name already taken gets `~2`, `~3`, … at its end. The body runs on its own
/// thread with the stack size asked for; nothing is added between its start and its end, so
/// a body with timing of its own (the control loop's absolute deadlines, its SCHED_FIFO
/// priority set from inside the body) keeps it.
public final class DaemonThread: @unchecked Sendable {
    public let name: ThreadName
    private let stackSize: Int
    private let stopFlag = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    /// The body until it has run (dropped then, so that a body capturing its owner does
    /// not keep it alive), and the OS name it ran under.
    private let state: Mutex<(body: (@Sendable (DaemonThread) -> Void)?, started: Bool, osName: String?)>

    /// - Parameters:
    ///   - stackSize: bytes; 0 keeps Foundation's default.
    ///   - body: runs on the thread; a loop in it returns soon after ``isStopping`` turns true.
    public init(_ name: ThreadName, stackSize: Int = 0, body: @escaping @Sendable (DaemonThread) -> Void) {
        self.name = name
        self.stackSize = stackSize
        state = Mutex((body, false, nil))
    }

    /// True once a stop was asked for: the body's loop ends when it sees it.
    public var isStopping: Bool { stopFlag.load(ordering: .acquiring) }

    /// The name the OS shows for this thread while it runs (nil before it started and after
    /// it ended).
    public var osName: String? { state.withLock { $0.osName } }

    /// Whether ``start()`` was called.
    public var isStarted: Bool { state.withLock { $0.started } }

    /// Starts the thread (once; later calls do nothing).
    public func start() {
        let body: (@Sendable (DaemonThread) -> Void)? = state.withLock { s in
            guard !s.started else { return nil }
            s.started = true
            return s.body
        }
        guard let body else { return }
        let t = Thread { [self] in
            let os = OSThreadNames.claim(name.osName)
            _ = pressd_set_thread_name(os)
            state.withLock { $0.osName = os }
            body(self)
            state.withLock { $0.body = nil; $0.osName = nil }
            OSThreadNames.release(os)
            finished.signal()
        }
        t.name = name.full
        if stackSize > 0 { t.stackSize = stackSize }
        t.start()
    }

    /// Asks the body to return; does not wait (see ``join(timeout:)``).
    public func requestStop() { stopFlag.store(true, ordering: .releasing) }

    /// Waits until the body has returned: true when it has (also when the thread never
    /// started), false when `timeout` seconds passed first.
    @discardableResult
    public func join(timeout: Double? = nil) -> Bool {
        guard isStarted else { return true }
        let ended = timeout.map { finished.wait(timeout: .now() + $0) == .success } ?? { finished.wait(); return true }()
        if ended { finished.signal() } // every later join returns at once
        return ended
    }

    /// ``requestStop()`` then ``join(timeout:)``.
    @discardableResult
    public func stop(timeout: Double? = nil) -> Bool {
        requestStop()
        return join(timeout: timeout)
    }
}

/// The OS names held by live ``DaemonThread``s of this process, so that no two are alike.
enum OSThreadNames {
    private static let taken = Mutex<Set<String>>([])

    /// `candidate`, or it with `~2`, `~3`, … in its last bytes when a live thread has it.
    static func claim(_ candidate: String) -> String {
        taken.withLock { set in
            var name = candidate
            var k = 2
            while set.contains(name) {
                let suffix = "~\(k)"
                name = ThreadName.fit(candidate, ThreadName.osLimit - suffix.utf8.count) + suffix
                k += 1
            }
            set.insert(name)
            return name
        }
    }

    static func release(_ name: String) { _ = taken.withLock { $0.remove(name) } }
}
