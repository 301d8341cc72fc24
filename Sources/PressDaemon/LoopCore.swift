import Foundation
import PressCore
import PressLog
import PressSim

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

/// The last `capacity` raw readings of a channel's load cells, oldest first, in one flat
/// ring: appended every tick without allocating (the calibration reads it, rarely).
struct RawHistory {
    private var values: [Double] = []
    private var cells = 0
    private var head = 0
    private(set) var count = 0
    let capacity: Int
    init(capacity: Int) { self.capacity = capacity }

    /// One reading of a single load cell.
    mutating func append(_ v: Double) {
        if cells != 1 { reset(cells: 1) }
        values[(head + count) % capacity] = v
        advance()
    }

    /// One reading of several load cells.
    mutating func append(_ v: [Double]) {
        if cells != v.count { reset(cells: v.count) }
        let at = (head + count) % capacity * cells
        for k in v.indices { values[at + k] = v[k] }
        advance()
    }

    private mutating func advance() { if count < capacity { count += 1 } else { head = (head + 1) % capacity } }

    private mutating func reset(cells n: Int) {
        cells = n; head = 0; count = 0
        values = Array(repeating: 0, count: n * capacity)
    }

    /// The readings, oldest first.
    var rows: [[Double]] {
        (0..<count).map { j in let at = (head + j) % capacity * cells; return Array(values[at..<(at + cells)]) }
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
    private var rawHistory: [RawHistory]
    static let rawHistoryLength = 100
    /// Per channel: the latest pushed values, stamped with the loop time they arrived.
    private var pushed: [SignalFrame]
    /// Loop time of the latest tick.
    private var lastNow = 0.0

    public init(channels: [LoopChannel]) {
        self.channels = channels
        windows = channels.map { _ in LogWindow(start: 0) }
        backendStates = channels.map { $0.backend.persistentState() }
        calibrations = channels.map { _ in [] }
        rawHistory = channels.map { _ in RawHistory(capacity: Self.rawHistoryLength) }
        pushed = channels.map { _ in SignalFrame() }
    }

    /// The backend's readings with fresh pushed values in place of its own.
    func withPushed(_ r: ChannelReadings, channel i: Int, now: Double) -> ChannelReadings {
        var out = r
        let limit = channels[i].settings.pushedStaleAfter
        func fresh(_ s: Sample?) -> Sample? { s.flatMap { now - $0.time <= limit ? $0 : nil } }
        for (signal, sample) in pushed[i].present { if let s = fresh(sample) { out[signal] = s } }
        return out
    }

    /// Installs stored calibrations (before the first tick).
    public mutating func setCalibrations(_ c: [String: [LoadCellCalibration]]) {
        for i in channels.indices { if let v = c[channels[i].settings.name] { calibrations[i] = v } }
    }

    /// Applies the channel's calibration to a reading and remembers the raw values.
    mutating func calibrated(_ r: ChannelReadings, channel i: Int) -> ChannelReadings {
        guard let f = r.force else { return r }
        if let cells = r.loadCellForces { rawHistory[i].append(cells) } else { rawHistory[i].append(f.value) }
        let cal = calibrations[i]
        guard cal.count == (r.loadCellForces?.count ?? 1) else { return r }
        let raw = r.loadCellForces ?? [f.value]
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
        func mode(_ i: Int, _ body: (inout ChannelController) throws(CommandRejection) -> Void) -> LoopReply {
            attempt(i, body) { .ok(mode: $0.mode) }
        }
        switch command {
        case .channel(let i, let c):
            do throws(CommandRejection) {
                switch try channels[i].controller.apply(c) {
                case .mode(let m): return .ok(mode: m)
                case .setpoint(let mpa, _): return .setpoint(mpa: mpa, ramp: channels[i].controller.pid.parameters.setpointRampRate)
                case .program(let p): return .program(p)
                case .acknowledged(let cleared, let remaining): return .acknowledged([(i, cleared, remaining, channels[i].controller.mode)])
                }
            } catch { return .rejected(error) }
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
            guard let plant = channels[i].backend as? any SimulatedPlantControl else { return .unavailable("channel is not simulated") }
            plant.inject(j)
            return .ok(mode: channels[i].controller.mode)
        case .reconfigure(let i, let s):
            guard s.name == channels[i].settings.name, s.divider == channels[i].settings.divider else {
                return .rejected(.unsafe("reconfigure: the channel's name and loop rate need a restart"))
            }
            let before = channels[i].settings.control
            channels[i].settings = s
            return mode(i) { c in if s.control != before { c.reconfigure(s.control) } }
        case .push(let i, let v):
            // Stamped with their acquisition time on the loop's clock (plant time runs
            // `timeScale` times faster than the wall clock on a fast simulated rig).
            let at = lastNow - v.age * timeScale
            for (s, value) in v.values { pushed[i][s] = Sample(value: value, time: at) }
            return .ok(mode: channels[i].controller.mode)
        case .calibrate(let i, let action):
            switch PressCore.calibrate(calibrations[i], history: rawHistory[i].rows, action: action) {
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
            if channels[i].backend.mirrors { channels[i].backend.mirror(channels[i].controller.state, now: now) }
            let forces = channels[i].controller.lastReadings.loadCellForces
            windows[i].add(channels[i].controller.publishedPressure, nonUniformity: nonUniformity(forces), forces: forces)
            if now - windows[i].start >= logPeriod - 1e-9 {
                let state = channels[i].controller.state
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
                for e in LogSample.extraSignals { pendingSamples[pendingSamples.count - 1].signals[e] = state.readings[e]?.value }
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
