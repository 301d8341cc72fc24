/// What is computing a channel's output now.
///
/// The raw values are the status wire spelling (`control.active`).
public enum ActiveControl: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// The configured (or autotuned) PID with static feedforward.
    case pid
    /// The PID with gains scheduled from the online plant estimate.
    case adaptive
    /// The adaptive PID plus the learned disturbance feedforward.
    case learned
    /// A relay autotune experiment (the PID tracks its output).
    case autotune
    /// The model-predictive controller (`mpc`) with its setpoint preview.
    case mpc

    public var description: String { rawValue }
}

/// One regulating tick as a control law sees it. Safety has already been decided on
/// this tick's reading: a law only runs while the channel regulates, with a valid
/// measurement.
public struct ControlTick: Sendable {
    public var now: Double
    public var dt: Double
    public var target: Double
    public var pressure: Double
    public var readings: ChannelReadings
    /// Everything fed forward at `target` (the law's own and the external one).
    public var feedforward: Double
    /// The output cap while actuator authority is lost.
    public var ceiling: Double?
    /// The coming targets from whoever owns the setpoint (only for a law that
    /// ``ControlLaw/wantsPreview``).
    public var preview: SetpointPreview? = nil
}

/// A way of computing a regulating channel's output, owning its state, its PID included.
///
/// Every law carries a PID: it is the regulator itself (`pid`, `adaptive`, `learned`) or,
/// for a law that computes its output otherwise (the relay autotune), the tracker that
/// follows that output so that entering and leaving the law is bumpless. The channel's
/// output stage holds, releases and re-enters regulation through it
/// (``ChannelCore``); the law decides the output while regulating.
///
/// Laws come from ``ControlLaws/table`` by strategy name (Klipper's heaters choose their
/// control object from a table the same way); an experiment (the relay autotune) is
/// swapped in over the regulating law and hands it back when it ends.
public protocol ControlLaw: Sendable {
    /// What the status reports as computing the output.
    var active: ActiveControl { get }
    /// The law's PID (the regulator, or the tracker of the law's own output).
    var pid: PIDController { get set }
    /// PID parameters in force with setpoint ramp `ramp`: the base gains times any
    /// adaptation.
    func pidParameters(ramp: Double?) -> PIDParameters
    /// What the law feeds forward at `target`, output units (the external feedforward is
    /// the channel's).
    func feedforward(at target: Double) -> Double
    /// The static gain of the law's plant model, output units per MPa (0: unknown).
    var modelGain: Double { get }
    /// The output for this tick, or nil when the law has ended (an experiment done or
    /// failed) and the channel must swap the regulating law back.
    mutating func update(_ tick: ControlTick, events: inout [ChannelEvent]) -> Double?
    /// Regulation stopped (no measurement, or the channel left regulation).
    mutating func interrupt()
    /// What the law learned about the plant, for status and persistence (nil: nothing).
    var memory: ControllerMemory? { get }
    /// The law looks ahead: its ticks carry the setpoint preview.
    var wantsPreview: Bool { get }
}

extension ControlLaw {
    public mutating func interrupt() {}
    public var memory: ControllerMemory? { nil }
    public var wantsPreview: Bool { false }
}

/// The regulating laws by strategy: a new law is a type conforming to ``ControlLaw`` and
/// a row here.
public enum ControlLaws {
    /// What a law is made from: the channel's parameters (base gains from the last
    /// autotune already in them), the last autotune, what was learned before (kept when
    /// it fits), and the PID the channel was running (its state carries over).
    public struct Context: Sendable {
        public var parameters: ChannelParameters
        public var lastTune: AutotuneResult?
        public var memory: ControllerMemory?
        public var pid: PIDController
    }

    public typealias Maker = @Sendable (Context) -> any ControlLaw
    public static let table: [(strategy: ControlStrategy, make: Maker)] = [
        (.pid, { c in PIDLaw(c) }),
        (.adaptive, { c in AdaptiveLaw(c).map { $0 as any ControlLaw } ?? PIDLaw(c) }),
        (.learned, { c in AdaptiveLaw(c).map { $0 as any ControlLaw } ?? PIDLaw(c) }),
        (.mpc, { c in MPCLaw(c).map { $0 as any ControlLaw } ?? PIDLaw(c) }),
    ]

    /// The law for the parameters' strategy.
    public static func make(_ c: Context) -> any ControlLaw {
        (table.first { $0.strategy == c.parameters.strategy } ?? table[0]).make(c)
    }
}

/// The configured (or autotuned) PID with static feedforward. Nothing changes by itself.
public struct PIDLaw: ControlLaw {
    public var pid: PIDController
    let parameters: ChannelParameters

    init(_ c: ControlLaws.Context) { pid = c.pid; parameters = c.parameters }

    public var active: ActiveControl { .pid }

    public func pidParameters(ramp: Double?) -> PIDParameters {
        var p = parameters.pid
        p.setpointRampRate = ramp
        return p
    }

    public func feedforward(at target: Double) -> Double { parameters.feedforward.gain * target + parameters.feedforward.offset }

    public var modelGain: Double { parameters.feedforward.gain }

    public mutating func update(_ t: ControlTick, events: inout [ChannelEvent]) -> Double? {
        pid.update(setpoint: t.target, measurement: t.pressure, feedforward: t.feedforward, dt: t.dt, ceiling: t.ceiling)
    }
}

/// The PID with its gains scaled by the online plant estimate (`adaptive`), plus the
/// learned disturbance feedforward (`learned`): ``PlantAdapter`` does the identifying.
public struct AdaptiveLaw: ControlLaw {
    public var pid: PIDController
    let parameters: ChannelParameters
    private(set) var adapter: PlantAdapter

    /// Nil when the plant's nominal gain is unknown (no autotune, no feedforward gain):
    /// the channel then runs the plain PID.
    init?(_ c: ControlLaws.Context) {
        let base = c.lastTune?.processGain ?? (c.parameters.feedforward.gain > 0 ? 1 / c.parameters.feedforward.gain : nil)
        guard let base else { return nil }
        let a = c.parameters.adaptation
        var m = c.memory ?? ControllerMemory(baseGain: base, bins: a.scheduleBins, forgetting: a.forgetting)
        if m.schedule.count != a.scheduleBins || abs(m.baseGain / base - 1) > 1e-9 {
            m = ControllerMemory(baseGain: base, bins: a.scheduleBins, forgetting: a.forgetting)
        }
        pid = c.pid
        parameters = c.parameters
        adapter = PlantAdapter(strategy: c.parameters.strategy, settings: a, memory: m)
    }

    public var active: ActiveControl {
        switch adapter.strategy {
        case .learned: return adapter.memory.learnedActive ? .learned : .adaptive
        default: return .adaptive
        }
    }

    public var memory: ControllerMemory? { adapter.memory }
    var gainScale: Double { adapter.memory.scale }

    public func pidParameters(ramp: Double?) -> PIDParameters {
        var p = parameters.pid
        p.kp *= gainScale; p.ki *= gainScale; p.kd *= gainScale
        p.setpointRampRate = ramp
        return p
    }

    /// Static feedforward in force at `target`.
    func staticFeedforward(_ target: Double) -> Double {
        parameters.feedforward.gain * gainScale * target + parameters.feedforward.offset
    }

    public func feedforward(at target: Double) -> Double { staticFeedforward(target) + adapter.memory.disturbanceOutput }

    public var modelGain: Double { parameters.feedforward.gain * gainScale }

    public mutating func interrupt() { adapter.interrupt() }

    public mutating func update(_ t: ControlTick, events: inout [ChannelEvent]) -> Double? {
        let u = pid.update(setpoint: t.target, measurement: t.pressure, feedforward: t.feedforward, dt: t.dt, ceiling: t.ceiling)
        adapt(t, output: u, events: &events)
        return u
    }

    /// Identifies from this tick (output `u` applied) and puts new gains in force.
    mutating func adapt(_ t: ControlTick, output u: Double, events: inout [ChannelEvent]) {
        let staticFF = staticFeedforward(t.target)
        let update = adapter.observe(now: t.now, dt: t.dt, pressure: t.pressure, output: u, target: t.target, working: pid.workingSetpoint,
                                     readings: t.readings, limits: parameters.limits, band: parameters.band, play: parameters.actuatorPlay,
                                     saturated: pid.lastTerms.saturated)
        guard let update else { return }
        for e in update.events { events.append(.adaptation(e)) }
        if let h = update.handedOver { pid.shiftIntegral(by: h) }
        // New gains, bumplessly: P through setParameters, the feedforward change through
        // the integrator.
        let newPID = pidParameters(ramp: pid.parameters.setpointRampRate)
        if newPID != pid.parameters {
            pid.setParameters(newPID)
            pid.shiftIntegral(by: staticFF - staticFeedforward(t.target))
        }
    }
}

/// A relay autotune experiment swapped in over the regulating law: the relay computes
/// the output and the PID tracks it (manual at the relay's output), so that the return
/// is bumpless. Ends (nil output) when the experiment is done or has failed; the channel
/// then takes ``regulator`` back.
public struct AutotuneLaw: ControlLaw {
    private(set) var tuner: RelayAutotuner
    /// The regulating law it replaced.
    var regulator: any ControlLaw

    public var active: ActiveControl { .autotune }
    public var pid: PIDController {
        get { regulator.pid }
        set { regulator.pid = newValue }
    }
    public func pidParameters(ramp: Double?) -> PIDParameters { regulator.pidParameters(ramp: ramp) }
    public func feedforward(at target: Double) -> Double { regulator.feedforward(at: target) }
    public var modelGain: Double { regulator.modelGain }
    public var memory: ControllerMemory? { regulator.memory }
    public mutating func interrupt() { regulator.interrupt() }

    public mutating func update(_ t: ControlTick, events: inout [ChannelEvent]) -> Double? {
        let u = tuner.step(now: t.now, pressure: t.pressure)
        guard !tuner.phase.finished else { return nil }
        regulator.pid.setManual(output: u)
        return u
    }
}
