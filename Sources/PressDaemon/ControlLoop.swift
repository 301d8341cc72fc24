import Foundation
import PressDrivers
import PressCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
@inline(__always) public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// How the loop's time relates to the wall clock.
public enum LoopClock: Sendable {
    /// Hardware: loop time is the monotonic clock. A late tick gets its true, longer dt
    /// (the plant did not wait), and the deadline grid skips the missed ticks.
    case realTime
    /// The simulated rig: the plant's time advances exactly one period per tick, paced
    /// by the wall clock (times the time scale). When the host cannot keep up, the
    /// simulated clock slips behind instead of jumping: a plant that ran for seconds of
    /// its own time with the output frozen would test the host, not the controllers.
    /// (At ×200 one period is 50 µs of wall time: any preemption used to become a jump.)
    case simulated
}

/// Runs ``LoopCore`` on a dedicated thread against absolute monotonic deadlines.
///
/// Each tick: take commands (never waiting for a lock), read → step → apply every
/// channel, publish the snapshot and the events, then sleep until the next deadline
/// with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`. Deadlines are a fixed grid
/// from the start, so timing errors do not accumulate; a tick that wakes more than a
/// period late counts as an overrun and the grid skips ahead instead of bursting (on the
/// simulated clock, the plant's time slips instead: see ``LoopClock``).
/// The thread never logs, never touches a socket and never writes to disk.
public final class ControlLoop: @unchecked Sendable {
    public let inbox = CommandInbox()
    public let snapshots = SnapshotBox()
    public let events = EventRing(capacity: 4096)
    public let samples = SampleRing(capacity: 100_000)
    /// Ticks completed; read by the watchdog to prove the loop is alive.
    public let tickCounter = Atomic<UInt64>(0)
    /// Wall-clock nanos of the last completed tick.
    public let lastTickNanos = Atomic<UInt64>(0)
    public let rate: Double
    public let timeScale: Double
    public let clock: LoopClock
    /// Plant seconds the simulated clock has slipped behind the scaled wall clock (the
    /// bit pattern of a Double; written by the control thread only).
    private let slipBits = Atomic<UInt64>(0)
    private var slip: Double { Double(bitPattern: slipBits.load(ordering: .acquiring)) }
    /// Unix time of loop time zero (set by ``start()``): log timestamps are epoch + loop time.
    public private(set) var epoch: Double = 0
    /// The epoch is never earlier than this (the run log's newest time), so log time
    /// stays monotonic across restarts even when the simulator runs faster than real time.
    public var epochFloor: Double = 0

    private var core: LoopCore
    /// The control thread, once started.
    private var thread: DaemonThread?
    private var startNanos: UInt64 = 0
    /// Loop time of the priming tick in ``start()``.
    private var startTime = 0.0
    private var stats: LoopStats

    /// SCHED_FIFO priority for the control thread (0: normal scheduling).
    public let realtimePriority: Int32
    /// Why real-time scheduling could not be had (written once by the control thread
    /// at start, read by others).
    public var realtimeError: String? { realtimeErrorBox.withLock { $0 } }
    private let realtimeErrorBox = Mutex<String?>(nil)

    public init(core: LoopCore, rate: Double, timeScale: Double = 1, clock: LoopClock = .realTime, realtimePriority: Int32 = 0) {
        self.core = core; self.rate = rate; self.timeScale = timeScale; self.clock = clock
        self.realtimePriority = realtimePriority
        self.stats = LoopStats(rate: rate, timeScale: timeScale)
        self.startNanos = monotonicNanos()
    }

    /// The loop's clock, s since the loop was created (scaled on the simulator). Device
    /// threads stamp their samples with it, so the channels can judge staleness.
    public var now: Double { loopTime(monotonicNanos()) }

    /// Loop time (s since start, scaled, less what the simulated clock slipped) for a
    /// monotonic instant.
    func loopTime(_ nanos: UInt64) -> Double { Double(nanos &- startNanos) / 1e9 * timeScale - slip }

    /// The run log's time now (epoch + loop time): with `timeScale` > 1 it runs ahead of
    /// the wall clock, which stamps request events.
    public func logTimeNow() -> Double { epoch + loopTime(monotonicNanos()) }

    /// Starts the thread. The first snapshot is published before this returns.
    public func start() {
        let t0 = loopTime(monotonicNanos())
        startTime = t0
        epoch = max(Date().timeIntervalSince1970 - t0, epochFloor + 0.001)
        core.epoch = epoch
        core.timeScale = timeScale
        // Prime: one tick so readers never see "no snapshot".
        core.tick(now: t0)
        publish(now: t0)
        let t = DaemonThread(ThreadName("control"), stackSize: 1 << 20) { [self] t in run(t) }
        thread = t
        t.start()
    }

    /// What each channel's actuator did when the loop stopped (empty before): the
    /// shutdown action of the configuration in force then.
    public var shutdownActions: [(channel: String, action: ShutdownAction)] { shutdownActionsBox.withLock { $0 } }
    private let shutdownActionsBox = Mutex<[(channel: String, action: ShutdownAction)]>([])

    /// Hands `command` to the loop and waits (at most `timeout` s, also for room in the
    /// inbox) until it has been applied. For callers that may block: the reload queue,
    /// never an event loop.
    /// - Returns: the loop's answer, nil when it did not come in time (the loop stopped).
    public func applyAndWait(_ command: LoopCommand, timeout: Double = 2) -> LoopReply? {
        /// Written by the control thread before it signals, read after the wait.
        final class Answer: @unchecked Sendable { var reply: LoopReply? }
        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        let deadline = DispatchTime.now() + timeout
        while !inbox.offer(PendingCommand(command) { r in answer.reply = r; done.signal() }) {
            guard DispatchTime.now() < deadline else { return nil }
            usleep(5_000)
        }
        guard done.wait(timeout: deadline) == .success else { return nil }
        return answer.reply
    }

    /// Asks the loop to stop, waits for it to put the actuators in their shutdown state.
    public func stop() {
        guard let t = thread else { return }
        t.stop()
        thread = nil
    }

    private func publish(now: Double) {
        snapshots.publish(RigSnapshot(time: now, stats: stats, channels: core.states, backendStates: core.backendStates))
        events.push(core.takeEvents())
        samples.push(core.takeSamples())
    }

    private func run(_ thread: DaemonThread) {
        if realtimePriority > 0 {
            // Works without capabilities when RLIMIT_RTPRIO allows it (LimitRTPRIO= in the unit).
            var param = sched_param(sched_priority: realtimePriority)
            let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
            if rc != 0 { realtimeErrorBox.withLock { $0 = "SCHED_FIFO priority \(realtimePriority): \(String(cString: strerror(rc)))" } }
        }
        let periodNanos = UInt64((1e9 / (rate * timeScale)).rounded())
        let t0 = startTime
        var k: UInt64 = 1
        var deadline = monotonicNanos() + periodNanos
        while !thread.isStopping {
            var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
            let woke = monotonicNanos()
            let lateness = Double(woke &- deadline) / 1e9
            stats.lastJitter = lateness
            stats.maxJitter = max(stats.maxJitter, lateness)
            stats.record(jitter: lateness)

            for c in inbox.drain() { c.reply(core.apply(c.command)) }
            // On hardware the controllers see the measured wake-up time, so a late tick
            // gets its true, longer dt; the simulated plant advances one period a tick.
            let now = clock == .simulated ? t0 + Double(k) / rate : loopTime(woke)
            core.tick(now: now)
            stats.ticks = core.tickCount
            let done = monotonicNanos()
            stats.maxTickDuration = max(stats.maxTickDuration, Double(done &- woke) / 1e9)
            publish(now: now)
            tickCounter.store(core.tickCount, ordering: .releasing)
            lastTickNanos.store(done, ordering: .releasing)

            k += 1
            deadline += periodNanos
            if done > deadline + periodNanos {
                // Overrun: skip the missed ticks rather than running them back to back.
                let missed = (done - deadline) / periodNanos
                stats.overruns += missed
                deadline += missed * periodNanos
                switch clock {
                case .realTime: k += missed
                case .simulated:
                    // The plant time of the missed ticks is not simulated: the clock slips.
                    stats.slipped = slip + Double(missed) / rate
                    slipBits.store(stats.slipped.bitPattern, ordering: .releasing)
                }
            }
        }
        let end = loopTime(monotonicNanos())
        let actions = core.shutdown(now: end)
        shutdownActionsBox.withLock { $0 = actions }
        publish(now: end)
    }
}
