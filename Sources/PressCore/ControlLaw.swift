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

    public var description: String { rawValue }
}

/// One regulating tick as a control law sees it. Safety has already been decided on
/// this tick's reading: a law only runs while the channel regulates, with a valid
/// measurement.
struct ControlTick {
    var now: Double
    var dt: Double
    var target: Double
    var pressure: Double
    var readings: ChannelReadings
    /// Everything fed forward at `target` (static inverse, learned and external).
    var feedforward: Double
    /// The output cap while actuator authority is lost.
    var ceiling: Double?
}

/// A way of computing a regulating channel's output.
///
/// The channel holds its ``Regulator`` (pid, adaptive, learned) and swaps an experiment
/// in over it while one runs, the way Klipper's heaters swap their control object for a
/// PID calibration: the experiment computes the output, the PID tracks it, and the
/// regulator takes over again bumplessly when it ends.
protocol ControlLaw: Sendable {
    /// What the status reports as computing the output.
    var active: ActiveControl { get }
    /// The output for this tick, or nil when the law has ended (an experiment done or
    /// failed) and the channel must swap back to its regulator.
    mutating func update(_ tick: ControlTick, parameters: ChannelParameters, pid: inout PIDController,
                         events: inout [ChannelEvent]) -> Double?
}

/// The channel's regular control law: the PID with static feedforward (`pid`), its gains
/// scheduled from an online estimate of the plant (`adaptive`), plus the learned
/// disturbance feedforward (`learned`).
struct Regulator: ControlLaw {
    /// Online identification for the adaptive and learned strategies (nil for `pid`, or
    /// when the plant's nominal gain is unknown).
    private(set) var adapter: PlantAdapter?

    /// Creates the adapter for the configured strategy (none for `pid`). It needs the
    /// plant's nominal gain: from the last autotune, else from the feedforward gain.
    init(parameters: ChannelParameters, lastTune: AutotuneResult?, memory: ControllerMemory?) {
        guard parameters.strategy != .pid else { adapter = nil; return }
        let base = lastTune?.processGain ?? (parameters.feedforward.gain > 0 ? 1 / parameters.feedforward.gain : nil)
        guard let base else { adapter = nil; return }
        let a = parameters.adaptation
        var m = memory ?? ControllerMemory(baseGain: base, bins: a.scheduleBins, forgetting: a.forgetting)
        if m.schedule.count != a.scheduleBins || abs(m.baseGain / base - 1) > 1e-9 {
            m = ControllerMemory(baseGain: base, bins: a.scheduleBins, forgetting: a.forgetting)
        }
        adapter = PlantAdapter(strategy: parameters.strategy, settings: a, memory: m)
    }

    var active: ActiveControl {
        guard let a = adapter else { return .pid }
        switch a.strategy {
        case .pid: return .pid
        case .adaptive: return .adaptive
        case .learned: return a.memory.learnedActive ? .learned : .adaptive
        }
    }

    var gainScale: Double { adapter?.memory.scale ?? 1 }

    /// PID parameters in force: the base (configured or autotuned) gains times the
    /// adaptive scale, with `ramp`.
    func pidParameters(_ parameters: ChannelParameters, ramp: Double?) -> PIDParameters {
        var p = parameters.pid
        p.kp *= gainScale; p.ki *= gainScale; p.kd *= gainScale
        p.setpointRampRate = ramp
        return p
    }

    /// Static feedforward in force at `target`.
    func staticFeedforward(_ parameters: ChannelParameters, _ target: Double) -> Double {
        parameters.feedforward.gain * gainScale * target + parameters.feedforward.offset
    }

    /// Everything added to the PID's output at `target`: the static inverse, the learned
    /// disturbance feedforward and the `external` one.
    func totalFeedforward(_ parameters: ChannelParameters, _ target: Double, external: Double) -> Double {
        staticFeedforward(parameters, target) + (adapter?.memory.disturbanceOutput ?? 0) + external
    }

    /// Regulation stopped (no measurement, or the channel left regulation).
    mutating func interrupt() { adapter?.interrupt() }

    mutating func update(_ t: ControlTick, parameters: ChannelParameters, pid: inout PIDController,
                         events: inout [ChannelEvent]) -> Double? {
        let staticFF = staticFeedforward(parameters, t.target)
        let u = pid.update(setpoint: t.target, measurement: t.pressure, feedforward: t.feedforward, dt: t.dt, ceiling: t.ceiling)
        guard var a = adapter else { return u }
        let update = a.observe(now: t.now, dt: t.dt, pressure: t.pressure, output: u, target: t.target, working: pid.workingSetpoint,
                               readings: t.readings, limits: parameters.limits, band: parameters.band, play: parameters.actuatorPlay,
                               saturated: pid.lastTerms.saturated)
        adapter = a
        guard let update else { return u }
        for e in update.events { events.append(.adaptation(e)) }
        if let h = update.handedOver { pid.shiftIntegral(by: h) }
        // New gains, bumplessly: P through setParameters, the feedforward change through
        // the integrator.
        let newPID = pidParameters(parameters, ramp: pid.parameters.setpointRampRate)
        if newPID != pid.parameters {
            pid.setParameters(newPID)
            pid.shiftIntegral(by: staticFF - staticFeedforward(parameters, t.target))
        }
        return u
    }
}

/// A relay autotune experiment swapped in over the regulator: the relay computes the
/// output and the PID tracks it (manual at the relay's output), so that the return is
/// bumpless. Ends (nil output) when the experiment is done or has failed.
struct AutotuneLaw: ControlLaw {
    private(set) var tuner: RelayAutotuner

    var active: ActiveControl { .autotune }

    mutating func update(_ t: ControlTick, parameters: ChannelParameters, pid: inout PIDController,
                         events: inout [ChannelEvent]) -> Double? {
        let u = tuner.step(now: t.now, pressure: t.pressure)
        guard !tuner.phase.finished else { return nil }
        pid.setManual(output: u)
        return u
    }
}
