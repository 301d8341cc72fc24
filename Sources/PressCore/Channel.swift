import PressNumerics
/// One channel: a pipeline of small components over the channel's signals (LinuxCNC's
/// HAL components joined by named signals; Klipper's heaters delegating to a control
/// object chosen from a table).
///
/// ```
/// readings (ChannelReadings: the signal frame and the digital inputs)
///   → FaultChecks      each check owns its settings and memory; typed conditions
///   → SafetyPolicy     latch, safe action, ramp to safety, automatic recovery
///   → SetpointSources  who owns the setpoint (SetpointArbiter) and every source of it
///   → ControlLaw       from ControlLaws.table, owning its state, its PID included
///   → output stage     (ChannelCore) hold / release / trip register, authority cap
///   → observers        excursions, authority
/// ```
///
/// Pure and deterministic: fed readings and a monotonic time, it returns the actuator
/// output. Safety is decided first on this tick's reading, so a trip changes the output
/// returned by the same call.
public struct ChannelController: Sendable {
    var core: ChannelCore
    var checks: FaultChecks
    var safety = SafetyPolicy()
    var sources: SetpointSources

    /// - Parameter initialOutput: the actuator's present output (read back from the
    ///   hardware, or its safe output), so the first tick does not move it.
    public init(parameters: ChannelParameters, initialOutput: Double? = nil) {
        core = ChannelCore(parameters: parameters, initialOutput: initialOutput)
        checks = FaultChecks(parameters)
        sources = SetpointSources(parameters: parameters)
    }

    // MARK: What the channel is doing

    public var parameters: ChannelParameters { core.parameters }
    public var mode: ChannelMode { core.mode }
    public var target: Double? { core.target }
    public var pid: PIDController { core.law.pid }
    public var faults: FaultLatch { safety.faults }
    public var arbiter: SetpointArbiter { sources.arbiter }
    public var setpointOwner: SetpointOwner { sources.arbiter.owner }
    public var program: ProgramRunner? { sources.program }
    public var sweep: CSPSweep? { sources.sweep }
    public var lastSweep: SweepResult? { sources.lastSweep }
    public var supervisor: ImpedanceSupervisor? { sources.supervisor }
    /// The soft-short detector the channel judges with (nil when not configured).
    public var shortDetector: ShortDetector? { checks.first(SoftShortCheck.self)?.detector }
    public var lastTune: AutotuneResult? { core.lastTune }
    public var authority: AuthorityMonitor { core.authority }
    /// True while a `ramp` safe action is taking the pressure to the safe pressure.
    public var rampingToSafe: Bool { sources.arbiter.safety }
    /// The relay experiment in progress.
    public var autotuner: RelayAutotuner? { sources.autotuner(core) }
    /// The online identification of the adaptive and learned laws.
    public var adapter: PlantAdapter? { ((core.law as? AutotuneLaw)?.regulator ?? core.law).adaptiveLaw?.adapter }
    public var recoveryCount: Int { safety.recovery.count }
    public var openExcursion: ExcursionRecord? { core.excursions.open }
    public var excursionStats: ExcursionStats { core.excursions.stats }
    /// Added to the output before limits every tick (benchmarks' oracle; zero otherwise).
    public var externalFeedforward: Double {
        get { core.externalFeedforward }
        set { core.externalFeedforward = newValue }
    }
    /// What is computing the output now.
    public var activeControl: ActiveControl { core.law.active }

    /// Takes the events produced since the last call.
    public mutating func drainEvents() -> [ChannelEvent] {
        defer { core.events.removeAll(keepingCapacity: true) }
        return core.events
    }

    // MARK: The tick

    /// One control step: checks, safety, the setpoint's owner, the control law.
    /// - Returns: the actuator output to apply now.
    public mutating func step(now: Double, readings: ChannelReadings) -> Double {
        let dt = core.last.time.map { now - $0 } ?? 0
        core.last.time = now
        core.last.readings = readings

        // 1–3. Fault checks on this tick's reading; new faults latch and take their safe
        //      action before anything else.
        let p = core.parameters
        var input = CheckInput(now: now, readings: readings, parameters: p, mode: core.mode, target: core.target, output: core.output,
                               outputSaturated: core.law.pid.lastTerms.saturated,
                               neededOutput: core.target.map { p.feedforward.gain > 0 ? core.totalFeedforward($0) : p.safeOutput },
                               lastPressure: core.last.pressure, latched: safety.faults.codes)
        let present = checks.judge(&input)
        let pressure = input.pressure
        core.last.stale = input.stale
        let tripped = safety.latch(present, now: now, pressure: pressure, core: &core, sources: &sources, checks: &checks)
        if let pressure { core.last.pressure = pressure }
        if core.excursions.track(now: now, pressure: pressure, target: core.target, mode: core.mode, band: p.band,
                                 faultFired: tripped, authorityLost: core.authority.isLost, altered: readings.altered) {
            core.closeExcursion(now: now)
        }
        safety.stepRecovery(now: now, pressure: pressure, core: &core, sources: &sources)

        // 4. The setpoint's owner moves it: a resume after a restart, a program, a sweep,
        //    the supervisor.
        sources.stepResume(pressure: pressure, &core)
        if core.mode != .tripped, pressure != nil { sources.stepProgram(now: now, readings: readings, &core) }
        sources.stepSweep(now: now, pressure: pressure, readings: readings, &core)
        if sources.supervisor != nil { sources.stepSupervisor(now: now, pressure: pressure, readings: readings, &core) }
        assert(sources.arbiter.task == sources.taskInForce(core), "setpoint arbiter out of step")

        // 5. The output.
        if let u = safety.rampOutput(pressure: pressure, dt: dt, core: &core, sources: &sources) { return u }
        if core.mode == .constantGap, var g = core.gap {
            // The stack thickness held; the law's PID tracks the output (bumpless back).
            let u = g.update(thickness: readings.thickness, now: now, dt: dt, staleAfter: p.sensor.staleAfter)
            core.gap = g
            core.law.interrupt()
            core.hold(at: u)
            return core.law.pid.update(setpoint: 0, measurement: pressure ?? core.last.pressure ?? 0, dt: dt)
        }
        guard core.mode == .regulating else {
            core.law.interrupt()
            if sources.autotuner(core) != nil { sources.cancelAutotune(reason: "channel left regulation (\(core.mode.rawValue))", &core) }
            return core.law.pid.update(setpoint: core.target ?? 0, measurement: pressure ?? core.last.pressure ?? 0, dt: dt)
        }
        guard let target = core.target, let pressure else { core.law.interrupt(); return core.output }
        return regulate(now: now, target: target, pressure: pressure, dt: dt, readings: readings)
    }

    /// The control law's output, capped while actuator authority is lost (an experiment
    /// runs uncapped, with no feedforward).
    private mutating func regulate(now: Double, target: Double, pressure: Double, dt: Double, readings: ChannelReadings) -> Double {
        if core.law is AutotuneLaw {
            let tick = ControlTick(now: now, dt: dt, target: target, pressure: pressure, readings: readings, feedforward: 0, ceiling: nil)
            return core.law.update(tick, events: &core.events) ?? sources.endAutotune(pressure: pressure, &core)
        }
        let ff = core.totalFeedforward(target)
        let gain = core.law.modelGain
        let pid = core.law.pid
        let p = core.parameters
        let change = core.authority.update(now: now, dt: dt, target: target, pressure: pressure, band: p.band, output: pid.output,
                                           atUpperLimit: pid.lastTerms.saturated && pid.lastTerms.unlimited > pid.output,
                                           modelGain: gain > 0 ? gain : nil, modelOutput: gain > 0 ? ff : nil, outputMax: p.pid.outputMax,
                                           play: p.actuatorPlay, settled: core.excursions.settledTarget == target)
        switch change {
        case .lost(let cap, let why)?:
            if core.excursions.open != nil, core.excursions.open!.kind == .disturbance { core.excursions.open!.kind = .saturation }
            core.events.append(.authority(state: .lost, detail: "the pressure (\(fmt3(pressure)) MPa, setpoint \(fmt3(target))) does not answer the output: \(why); output capped at \(fmt3(cap)), what the setpoint needs plus half the band, until the pressure is back in band"))
        case .regained?:
            core.events.append(.authority(state: .regained, detail: "pressure \(fmt3(pressure)) MPa back in band; output no longer capped"))
        case nil: break
        }
        var tick = ControlTick(now: now, dt: dt, target: target, pressure: pressure, readings: readings, feedforward: ff, ceiling: core.authority.ceiling)
        if core.law.wantsPreview { tick.preview = sources.preview(now: now, readings: readings, core) }
        return core.law.update(tick, events: &core.events) ?? core.output
    }

    // MARK: Published state

    /// The pressure ``state`` publishes (nil while the force sample is stale or invalid),
    /// and the last readings: for the loop's per-tick log window, without building the
    /// whole published state every tick.
    public var publishedPressure: Double? {
        core.last.stale ? nil : core.last.readings.force.flatMap { f in f.value.isFinite ? core.parameters.pressure(fromForce: f.value) : nil }
    }
    public var lastReadings: ChannelReadings { core.last.readings }

    /// The state to publish after a tick.
    public var state: ChannelState {
        let p = publishedPressure
        let c = core, pid = core.law.pid
        var inBand = false
        if c.mode == .regulating, let t = c.target, let p, t > 0 { inBand = Band.contains(p, target: t, band: c.parameters.band) }
        return ChannelState(
            name: c.parameters.name, mode: c.mode, time: c.last.time ?? 0, target: c.target,
            workingSetpoint: c.mode == .regulating ? pid.workingSetpoint : nil,
            pressure: p, force: c.last.readings.force?.value, stale: c.last.stale,
            output: pid.output, terms: pid.lastTerms, faults: safety.faults.records,
            inBand: inBand, readings: c.last.readings, ramp: pid.parameters.setpointRampRate, program: sources.program,
            limits: c.parameters.limits, cellArea: c.parameters.cellArea,
            control: ControlStatus(
                strategy: c.parameters.strategy, autotune: autotuner, lastTune: c.lastTune, memory: adapter?.memory,
                kp: pid.parameters.kp, ki: pid.parameters.ki, feedforwardGain: c.law.modelGain,
                activeControl: activeControl, sweep: sources.sweep, lastSweep: sources.lastSweep, supervisor: sources.supervisor,
                setpointOwner: sources.arbiter.owner, mpc: (((c.law as? AutotuneLaw)?.regulator ?? c.law) as? MPCLaw)?.status),
            excursion: c.excursions.open, excursions: c.excursions.stats, authorityLost: c.authority.isLost, recoveries: safety.recovery.count,
            gapTarget: c.gap?.target)
    }
}

extension ControlLaw {
    /// This law as the adaptive law, if it is one.
    var adaptiveLaw: AdaptiveLaw? { (self as? AdaptiveLaw) ?? (self as? MPCLaw)?.base }
}
