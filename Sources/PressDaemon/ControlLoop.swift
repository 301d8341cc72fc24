import DequeModule
import Foundation
import PressDrivers
import PressCore
import PressLog
import PressSim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A command for the control loop, applied between two ticks.
public enum LoopCommand: Sendable {
    case set(channel: Int, mpa: Double, ramp: Double?)
    case hold(channel: Int)
    case release(channel: Int)
    /// Acknowledge one channel's faults, or every channel's with `nil`.
    case acknowledge(channel: Int?)
    case inject(channel: Int, SimInjection)
    case programStart(channel: Int, PressureProgram)
    case programPause(channel: Int)
    case programResume(channel: Int)
    case programStop(channel: Int)
    /// Put a reloaded configuration's settings of a channel in force: its tuning and limits
    /// (bumplessly), its shutdown action and its pushed-signal stale limit. The channel's
    /// name and loop-rate divider cannot change (a reload refuses that).
    case reconfigure(channel: Int, LoopChannel.Settings)
    /// Tare or span the channel's load cells from the last second of raw readings.
    case calibrate(channel: Int, CalibrationAction)
    /// Auxiliary signals pushed in by other software (an impedance analyser's script,
    /// the cycler's): used in place of the backend's until they are older than the
    /// channel's `pushed_stale_after_s`.
    case push(channel: Int, PushedSignals)
    /// Start a relay autotune (nil settings: the channel's configured ones) or cancel it.
    case autotune(channel: Int, AutotuneSettings?)
    case autotuneCancel(channel: Int)
    /// Start or cancel a critical-stack-pressure sweep.
    case sweep(channel: Int, SweepSettings)
    case sweepCancel(channel: Int)
    /// Lock or unlock the impedance-aware supervisor.
    case supervisorLock(channel: Int, locked: Bool)
}

/// Values pushed in for a channel; nil fields are left as they were.
public struct PushedSignals: Sendable, Equatable {
    public var interfacialResistance: Double?
    public var temperature: Double?
    public var current: Double?
    /// Bulk resistance, Ω·cm² (from a fitted spectrum), and cell voltage, V.
    public var bulkResistance: Double?
    public var voltage: Double?
    /// How long before arrival they were measured, wall-clock seconds (0: now).
    public var age: Double
    public init(interfacialResistance: Double? = nil, temperature: Double? = nil, current: Double? = nil, voltage: Double? = nil,
                bulkResistance: Double? = nil, age: Double = 0) {
        self.interfacialResistance = interfacialResistance; self.temperature = temperature; self.current = current
        self.voltage = voltage; self.bulkResistance = bulkResistance; self.age = age
    }
}

/// The loop's answer to a command.
public enum LoopReply: Sendable {
    case ok(mode: ChannelMode)
    case setpoint(mpa: Double, ramp: Double?)
    case acknowledged([(channel: Int, cleared: [FaultCode], remaining: [FaultCode], mode: ChannelMode)])
    case rejected(CommandRejection)
    case unavailable(String)
    case program(ProgramRunner?)
    case calibration([LoadCellCalibration])
    case calibrationFailed(CalibrationError)
}

/// A command waiting in the inbox, with the callback that carries the answer back. The
/// callback runs on the control thread and must not block (completing a NIO promise
/// is fine: it only enqueues a task on the event loop).
public struct PendingCommand: Sendable {
    public var command: LoopCommand
    public var reply: @Sendable (LoopReply) -> Void
    public init(_ command: LoopCommand, reply: @escaping @Sendable (LoopReply) -> Void) {
        self.command = command; self.reply = reply
    }
}

/// Timing statistics of the loop, against its absolute deadlines.
public struct LoopStats: Sendable, Equatable {
    public var rate: Double
    public var timeScale: Double
    public var ticks: UInt64 = 0
    public var overruns: UInt64 = 0
    /// Plant seconds the simulated clock fell behind the scaled wall clock because the
    /// host could not keep up (0 on hardware, whose clock is the wall clock).
    public var slipped: Double = 0
    /// Wake-up lateness of the last tick, s.
    public var lastJitter: Double = 0
    public var maxJitter: Double = 0
    /// Longest tick body, s.
    public var maxTickDuration: Double = 0
    /// Wake-up lateness histogram: counts per bucket of ``jitterBucketEdges``
    /// (the last bucket counts everything above the last edge).
    public var jitterHistogram = [UInt64](repeating: 0, count: LoopStats.jitterBucketEdges.count + 1)
    /// Upper edges of the histogram buckets, s.
    public static let jitterBucketEdges: [Double] = [25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3]

    mutating func record(jitter: Double) {
        var i = 0
        while i < Self.jitterBucketEdges.count && jitter > Self.jitterBucketEdges[i] { i += 1 }
        jitterHistogram[i] += 1
    }
}

/// What the loop publishes after every tick. Immutable once published.
public struct RigSnapshot: Sendable {
    /// Loop time of the tick, s since start (simulated seconds on the simulator).
    public var time: Double
    public var stats: LoopStats
    public var channels: [ChannelState]
    /// Each backend's restart state, refreshed once per log period.
    public var backendStates: [[String: Double]?]
}

/// Something that happened on the loop, for the log. Produced on the control thread,
/// consumed elsewhere.
public struct LoopEvent: Sendable {
    public var time: Double
    public var channel: String
    public var event: ChannelEvent
}

/// A bounded multi-producer queue drained by the control thread.
public final class CommandInbox: Sendable {
    private let queue = Mutex<[PendingCommand]>([])
    public let capacity: Int
    public init(capacity: Int = 64) { self.capacity = capacity }

    /// Enqueues `c`; returns false when the inbox is full (the caller answers `busy`).
    public func offer(_ c: PendingCommand) -> Bool {
        queue.withLock { q in
            guard q.count < capacity else { return false }
            q.append(c)
            return true
        }
    }

    /// Takes every waiting command. Never waits: if a producer holds the lock this
    /// tick, the commands are taken next tick.
    func drain() -> [PendingCommand] {
        queue.withLockIfAvailable { q -> [PendingCommand] in
            defer { q.removeAll(keepingCapacity: true) }
            return q
        } ?? []
    }
}

/// The latest snapshot, swapped in by the control thread and copied out by readers.
/// The lock is held only for the swap; the old value is released outside it.
public final class SnapshotBox: Sendable {
    private let value: Mutex<RigSnapshot?> = Mutex(nil)
    public init() {}
    func publish(_ s: RigSnapshot) {
        var incoming: RigSnapshot? = s
        value.withLock { swap(&$0, &incoming) }
        _ = incoming // old snapshot released here, outside the lock
    }
    public func latest() -> RigSnapshot? { value.withLock { $0 } }
}

/// A bounded multi-producer buffer drained in batches; when full the oldest entries
/// are dropped and counted. The lock is held only to append or to swap the contents.
public final class BoundedRing<Element: Sendable>: Sendable {
    private let state = Mutex<(items: [Element], dropped: Int)>(([], 0))
    public let capacity: Int
    public init(capacity: Int) { self.capacity = capacity }
    func push(_ e: [Element]) {
        guard !e.isEmpty else { return }
        state.withLock { s in
            s.items.append(contentsOf: e)
            if s.items.count > capacity {
                let extra = s.items.count - capacity
                s.items.removeFirst(extra)
                s.dropped += extra
            }
        }
    }
    /// Takes the queued items and the number dropped since the last call.
    public func drain() -> (items: [Element], dropped: Int) {
        state.withLock { s in
            defer { s.items.removeAll(keepingCapacity: true); s.dropped = 0 }
            return s
        }
    }
}

/// Loop events for the journal and the run log.
public typealias EventRing = BoundedRing<LoopEvent>
/// Finished log samples for the run-log writer.
public typealias SampleRing = BoundedRing<LogSample>

/// A channel as the loop holds it.
public struct LoopChannel {
    public var controller: ChannelController
    public let backend: ChannelBackend
    /// The little the loop itself needs from the channel's configuration: the
    /// configuration in force (start-up, then each reload's `reconfigure`).
    public internal(set) var settings: Settings

    /// What the loop needs to know about a channel besides its controller and backend.
    public struct Settings: Sendable, Equatable {
        public var name: String
        /// Runs every `divider`-th tick of the loop.
        public var divider: Int
        /// Pushed signals older than this are dropped, s.
        public var pushedStaleAfter: Double
        /// What the actuator does when pressd stops.
        public var shutdown: ShutdownAction
        /// The control parameters in force (the controller's), also to rebuild the
        /// controller when state is restored.
        public var control: ChannelParameters

        public init(_ c: ChannelConfig) {
            name = c.name; divider = c.divider; pushedStaleAfter = c.pushedStaleAfter; shutdown = c.shutdown; control = c.control
        }
    }

    public init(controller: ChannelController, backend: ChannelBackend, config: ChannelConfig) {
        self.controller = controller; self.backend = backend; self.settings = Settings(config)
    }
}

/// Running min / max / mean of one channel's pressure over a log period.
struct LogWindow {
    var start: Double
    var count = 0
    var sum = 0.0
    var min = Double.infinity
    var max = -Double.infinity
    var uniformitySum = 0.0
    var uniformityCount = 0
    /// Per-load-cell force sums (several cells under the plate).
    var forceSums: [Double] = []
    var forceCount = 0
    mutating func add(_ p: Double?, nonUniformity u: Double? = nil, forces: [Double]? = nil) {
        if let u { uniformitySum += u; uniformityCount += 1 }
        if let f = forces, !f.isEmpty {
            if forceSums.count != f.count { forceSums = Array(repeating: 0, count: f.count); forceCount = 0 }
            for k in f.indices { forceSums[k] += f[k] }
            forceCount += 1
        }
        guard let p else { return }
        count += 1; sum += p
        if p < min { min = p }
        if p > max { max = p }
    }
}

/// The control core of the daemon without threads: apply commands, tick every channel,
/// build the snapshot and the log samples. Driven by ``ControlLoop`` in production and
/// directly (on a virtual clock) in tests.
public struct LoopCore {
    public private(set) var channels: [LoopChannel]
    public private(set) var tickCount: UInt64 = 0
    private var pendingEvents: [LoopEvent] = []
    /// Seconds between log samples (loop time).
    public var logPeriod: Double = 1
    private var windows: [LogWindow]
    private var pendingSamples: [LogSample] = []
    private(set) var backendStates: [[String: Double]?]
    /// Unix time of loop time zero, for log timestamps.
    public var epoch: Double = 0
    /// Loop seconds per wall-clock second (above 1 on a fast simulated rig).
    public var timeScale: Double = 1
    /// Per channel: the load-cell calibrations applied to every reading.
    public private(set) var calibrations: [[LoadCellCalibration]]
    /// Per channel: the last second or so of raw per-cell readings, for calibration (a
    /// ring: dropping the oldest every tick must not move the other 99).
    private var rawHistory: [Deque<[Double]>]
    static let rawHistoryLength = 100
    /// Per channel: the latest pushed values, stamped with the loop time they arrived.
    private var pushed: [(resistance: Sample?, temperature: Sample?, current: Sample?, voltage: Sample?, bulk: Sample?)]
    /// Loop time of the latest tick.
    private var lastNow = 0.0

    public init(channels: [LoopChannel]) {
        self.channels = channels
        windows = channels.map { _ in LogWindow(start: 0) }
        backendStates = channels.map { $0.backend.persistentState() }
        calibrations = channels.map { _ in [] }
        rawHistory = channels.map { _ in Deque(minimumCapacity: Self.rawHistoryLength) }
        pushed = channels.map { _ in (nil, nil, nil, nil, nil) }
    }

    /// The backend's readings with fresh pushed values in place of its own.
    func withPushed(_ r: ChannelReadings, channel i: Int, now: Double) -> ChannelReadings {
        var out = r
        let limit = channels[i].settings.pushedStaleAfter
        func fresh(_ s: Sample?) -> Sample? { s.flatMap { now - $0.time <= limit ? $0 : nil } }
        if let s = fresh(pushed[i].resistance) { out.interfacialResistance = s }
        if let s = fresh(pushed[i].temperature) { out.temperature = s }
        if let s = fresh(pushed[i].current) { out.current = s }
        if let s = fresh(pushed[i].bulk) { out.bulkResistance = s }
        if let s = fresh(pushed[i].voltage) { out.voltage = s }
        return out
    }

    /// Installs stored calibrations (before the first tick).
    public mutating func setCalibrations(_ c: [String: [LoadCellCalibration]]) {
        for i in channels.indices { if let v = c[channels[i].settings.name] { calibrations[i] = v } }
    }

    /// Applies the channel's calibration to a reading and remembers the raw values.
    mutating func calibrated(_ r: ChannelReadings, channel i: Int) -> ChannelReadings {
        guard let f = r.force else { return r }
        let raw = r.loadCellForces ?? [f.value]
        if rawHistory[i].count >= Self.rawHistoryLength { rawHistory[i].removeFirst() }
        rawHistory[i].append(raw)
        let cal = calibrations[i]
        guard cal.count == raw.count else { return r }
        var out = r
        let corrected = zip(raw, cal).map { $1.apply($0) }
        out.force = Sample(value: corrected.reduce(0, +), time: f.time)
        if r.loadCellForces != nil { out.loadCellForces = corrected }
        return out
    }

    /// Applies one command and returns the answer.
    public mutating func apply(_ command: LoopCommand) -> LoopReply {
        /// Runs `body` on channel `i`: a rejection is the reply, else `answer` of the result.
        func attempt(_ i: Int, _ body: (inout ChannelController) throws(CommandRejection) -> Void,
                     answer: (ChannelController) -> LoopReply) -> LoopReply {
            do throws(CommandRejection) {
                try body(&channels[i].controller)
                return answer(channels[i].controller)
            } catch { return .rejected(error) }
        }
        func program(_ i: Int, _ body: (inout ChannelController) throws(CommandRejection) -> Void) -> LoopReply {
            attempt(i, body) { .program($0.program) }
        }
        func mode(_ i: Int, _ body: (inout ChannelController) throws(CommandRejection) -> Void) -> LoopReply {
            attempt(i, body) { .ok(mode: $0.mode) }
        }
        switch command {
        case .set(let i, let mpa, let ramp):
            return attempt(i, { c throws(CommandRejection) in try c.setTarget(mpa, ramp: ramp) }) {
                .setpoint(mpa: mpa, ramp: $0.pid.parameters.setpointRampRate)
            }
        case .hold(let i): return mode(i) { c throws(CommandRejection) in try c.hold() }
        case .release(let i): return mode(i) { c in c.release() }
        case .acknowledge(let which):
            let indices = which.map { [$0] } ?? Array(channels.indices)
            var out: [(Int, [FaultCode], [FaultCode], ChannelMode)] = []
            for i in indices {
                let before = channels[i].controller.faults.records.map(\.code)
                let remaining = channels[i].controller.acknowledge().map(\.code)
                out.append((i, before.filter { !remaining.contains($0) }, remaining, channels[i].controller.mode))
            }
            return .acknowledged(out)
        case .inject(let i, let j):
            guard let sim = channels[i].backend as? SimChannel else { return .unavailable("channel is not simulated") }
            sim.inject(j)
            return .ok(mode: channels[i].controller.mode)
        case .programStart(let i, let p): return program(i) { c throws(CommandRejection) in try c.startProgram(p) }
        case .programPause(let i): return program(i) { c throws(CommandRejection) in try c.pauseProgram() }
        case .programResume(let i): return program(i) { c throws(CommandRejection) in try c.resumeProgram() }
        case .programStop(let i): return program(i) { c throws(CommandRejection) in try c.stopProgram() }
        case .reconfigure(let i, let s):
            guard s.name == channels[i].settings.name, s.divider == channels[i].settings.divider else {
                return .rejected(.unsafe("reconfigure: the channel's name and loop rate need a restart"))
            }
            let before = channels[i].settings.control
            channels[i].settings = s
            return mode(i) { c in if s.control != before { c.reconfigure(s.control) } }
        case .autotune(let i, let settings): return mode(i) { c throws(CommandRejection) in try c.startAutotune(settings) }
        case .autotuneCancel(let i):
            return mode(i) { c throws(CommandRejection) in
                guard c.autotuner != nil else { throw .unsafe("no autotune is running") }
                c.cancelAutotune()
            }
        case .sweep(let i, let s): return mode(i) { c throws(CommandRejection) in try c.startSweep(s) }
        case .sweepCancel(let i):
            return mode(i) { c throws(CommandRejection) in
                guard c.sweep != nil else { throw .unsafe("no sweep is running") }
                c.cancelSweep()
            }
        case .supervisorLock(let i, let locked):
            return mode(i) { c throws(CommandRejection) in if locked { try c.lockSupervisor() } else { try c.unlockSupervisor() } }
        case .push(let i, let v):
            // Stamped with their acquisition time on the loop's clock (plant time runs
            // `timeScale` times faster than the wall clock on a fast simulated rig).
            let at = lastNow - v.age * timeScale
            if let r = v.interfacialResistance { pushed[i].resistance = Sample(value: r, time: at) }
            if let t = v.temperature { pushed[i].temperature = Sample(value: t, time: at) }
            if let c = v.current { pushed[i].current = Sample(value: c, time: at) }
            if let b = v.bulkResistance { pushed[i].bulk = Sample(value: b, time: at) }
            if let u = v.voltage { pushed[i].voltage = Sample(value: u, time: at) }
            return .ok(mode: channels[i].controller.mode)
        case .calibrate(let i, let action):
            switch PressCore.calibrate(calibrations[i], history: Array(rawHistory[i]), action: action) {
            case .success(let c):
                calibrations[i] = c
                return .calibration(c)
            case .failure(let e): return .calibrationFailed(e)
            }
        }
    }

    /// One tick at loop time `now`: read, step, apply for every channel due.
    public mutating func tick(now: Double) {
        tickCount += 1
        lastNow = now
        for i in channels.indices where (tickCount - 1) % UInt64(channels[i].settings.divider) == 0 {
            let readings = withPushed(calibrated(channels[i].backend.read(now: now), channel: i), channel: i, now: now)
            let out = channels[i].controller.step(now: now, readings: readings)
            channels[i].backend.apply(output: out, now: now)
            for e in channels[i].controller.drainEvents() {
                pendingEvents.append(LoopEvent(time: now, channel: channels[i].settings.name, event: e))
            }
            let state = channels[i].controller.state
            channels[i].backend.mirror(state, now: now)
            windows[i].add(state.pressure, nonUniformity: nonUniformity(state.readings.loadCellForces), forces: state.readings.loadCellForces)
            if now - windows[i].start >= logPeriod - 1e-9 {
                let w = windows[i]
                pendingSamples.append(LogSample(
                    time: epoch + now, channel: state.name, mode: state.mode.rawValue, setpoint: state.target,
                    pressure: state.pressure, pressureMin: w.count > 0 ? w.min : nil, pressureMax: w.count > 0 ? w.max : nil,
                    pressureMean: w.count > 0 ? w.sum / Double(w.count) : nil, force: state.force, output: state.output,
                    temperature: state.readings.temperature?.value, current: state.readings.current?.value,
                    resistance: state.readings.interfacialResistance?.value, count: w.count))
                pendingSamples[pendingSamples.count - 1].voltage = state.readings.voltage?.value
                pendingSamples[pendingSamples.count - 1].nonUniformity = w.uniformityCount > 0 ? w.uniformitySum / Double(w.uniformityCount) : nil
                pendingSamples[pendingSamples.count - 1].loadCellForces = w.forceCount > 0 ? w.forceSums.map { $0 / Double(w.forceCount) } : nil
                windows[i] = LogWindow(start: now)
                backendStates[i] = channels[i].backend.persistentState()
            }
        }
    }

    /// Log samples completed since the last call.
    public mutating func takeSamples() -> [LogSample] {
        defer { pendingSamples.removeAll(keepingCapacity: true) }
        return pendingSamples
    }

    /// Events from commands and ticks since the last call.
    public mutating func takeEvents() -> [LoopEvent] {
        for i in channels.indices {
            for e in channels[i].controller.drainEvents() {
                pendingEvents.append(LoopEvent(time: channels[i].controller.state.time, channel: channels[i].settings.name, event: e))
            }
        }
        defer { pendingEvents.removeAll(keepingCapacity: true) }
        return pendingEvents
    }

    public var states: [ChannelState] { channels.map(\.controller.state) }

    /// Restores persisted state before the first tick: the backend's own state first
    /// (so the plant is where it was), then the controller from the actuator's output.
    public mutating func restore(_ saved: [String: PersistedChannel]) {
        for i in channels.indices {
            guard let s = saved[channels[i].settings.name] else { continue }
            if let b = s.backend { channels[i].backend.restore(b) }
            let output = channels[i].backend.presentOutput ?? s.output
            var c = ChannelController(parameters: channels[i].settings.control, initialOutput: output)
            c.restoreLearning(tune: s.tune, memory: s.learned)
            c.restoreSweep(s.sweep)
            c.restoreSupervisor(s.supervisor)
            c.restore(mode: s.mode, target: s.target, ramp: s.ramp, faults: s.faults)
            if let r = s.program, r.state == .running || r.state == .paused {
                c.restoreProgram(r)
            }
            channels[i].controller = c
            backendStates[i] = channels[i].backend.persistentState()
        }
    }

    /// Puts every actuator in the shutdown state of the configuration in force.
    /// - Returns: what each channel did, by name, for the stop message.
    @discardableResult
    public mutating func shutdown(now: Double) -> [(channel: String, action: ShutdownAction)] {
        for i in channels.indices {
            switch channels[i].settings.shutdown {
            case .hold: channels[i].backend.apply(output: channels[i].controller.pid.output, now: now)
            case .release:
                channels[i].controller.release()
                channels[i].backend.apply(output: channels[i].settings.control.safeOutput, now: now)
            }
            backendStates[i] = channels[i].backend.persistentState()
        }
        return channels.map { ($0.settings.name, $0.settings.shutdown) }
    }
}

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
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var thread: Thread?
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
        let t = Thread { [self] in nameThreadForOS("pressd-control"); run() }
        t.name = "pressd-control"
        t.stackSize = 1 << 20
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
        guard thread != nil else { return }
        stopRequested.store(true, ordering: .releasing)
        finished.wait()
        thread = nil
    }

    private func publish(now: Double) {
        snapshots.publish(RigSnapshot(time: now, stats: stats, channels: core.states, backendStates: core.backendStates))
        events.push(core.takeEvents())
        samples.push(core.takeSamples())
    }

    private func run() {
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
        while !stopRequested.load(ordering: .acquiring) {
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
        finished.signal()
    }
}
