/// One channel's control logic: sensor checks, trips, mode machine, who owns the
/// setpoint and the control law.
///
/// Pure and deterministic: it is fed readings and a monotonic time, it returns the
/// actuator output. The runtime calls ``step(now:readings:)`` once per tick and applies
/// commands between ticks. Each tick decides safety first (sensor, over-pressure, fault
/// latch and safe action), then lets the setpoint's owner (``SetpointArbiter``) move the
/// setpoint, then asks the control law in force (``Regulator``, or an experiment swapped
/// in over it) for the output.
public struct ChannelController: Sendable {
    public private(set) var parameters: ChannelParameters
    public private(set) var mode: ChannelMode = .released
    public private(set) var target: Double?
    public private(set) var pid: PIDController
    public private(set) var faults = FaultLatch()
    /// Time, reading and pressure of the last tick.
    private var last = LastTick()
    private var events: [ChannelEvent] = []
    /// Who owns the setpoint, and the rules of who may take it from whom.
    public private(set) var arbiter: SetpointArbiter
    /// Set by ``restore(mode:target:ramp:faults:)``: regulation resumes on the first
    /// valid measurement, bumplessly from the actuator's present output.
    private var pendingResume: (target: Double, ramp: Double?)?
    /// The loaded pressure program.
    public private(set) var program: ProgramRunner?
    /// The `cannot_reach_setpoint` watch.
    private var saturation = SaturationWatch()
    /// The control law in force when no experiment runs (pid, adaptive, learned).
    private var regulator: Regulator
    /// The relay experiment swapped in over the regulator while it runs.
    private var experiment: AutotuneLaw?
    /// The last successful autotune; its gains replace the configured ones.
    public private(set) var lastTune: AutotuneResult?
    /// The critical-stack-pressure sweep in progress, and the last one's result.
    public private(set) var sweep: CSPSweep?
    public private(set) var lastSweep: SweepResult?
    /// The impedance-aware supervisor (nil when not enabled).
    public private(set) var supervisor: ImpedanceSupervisor?
    private var supervisorConverged = false
    /// Frozen-sensor check.
    private var frozen = FrozenSensorWatch()
    /// Soft-short detection on the cell voltage (nil when off).
    public private(set) var shortDetector: ShortDetector?
    /// Automatic recovery from faults that cleared by themselves.
    private var recovery = RecoveryState()
    /// Loss of actuator authority, and excursions out of the band.
    public private(set) var authority = AuthorityMonitor()
    private var excursions = ExcursionTracker()
    /// Added to the output before limits every tick. For benchmarks (an oracle that
    /// knows the true disturbance); the daemon leaves it at zero.
    public var externalFeedforward: Double = 0

    /// Where a `ramp` safe action takes the pressure: the safe pressure, or lower when
    /// the channel was already below it (a ramp to safety never raises the pressure).
    private var safetyRampGoal: Double?
    /// True while a `ramp` safe action is taking the pressure to the safe pressure.
    public var rampingToSafe: Bool { arbiter.safety }
    /// Online identification for the adaptive and learned strategies.
    public var adapter: PlantAdapter? { regulator.adapter }
    /// The relay experiment in progress.
    public var autotuner: RelayAutotuner? { experiment?.tuner }
    /// Automatic recoveries since start.
    public var recoveryCount: Int { recovery.count }
    /// The excursion out of the band in progress, and the counts so far.
    public var openExcursion: ExcursionRecord? { excursions.open }
    public var excursionStats: ExcursionStats { excursions.stats }
    /// Who owns the setpoint now.
    public var setpointOwner: SetpointOwner { arbiter.owner }

    /// - Parameter initialOutput: the actuator's present output (read back from the
    ///   hardware, or its safe output), so the first tick does not move it.
    public init(parameters: ChannelParameters, initialOutput: Double? = nil) {
        self.parameters = parameters
        self.pid = PIDController(parameters: parameters.pid, initialOutput: initialOutput ?? parameters.safeOutput)
        self.pid.setManual(output: initialOutput ?? parameters.safeOutput)
        if let o = initialOutput, o != parameters.safeOutput { mode = .holding }
        regulator = Regulator(parameters: parameters, lastTune: nil, memory: nil)
        supervisor = parameters.supervisor.map { ImpedanceSupervisor(settings: $0) }
        shortDetector = parameters.shortDetection.flatMap { $0.enabled ? ShortDetector(settings: $0) : nil }
        arbiter = SetpointArbiter(supervisor: supervisor.map { !$0.locked } ?? false)
    }

    // MARK: Setpoint ownership

    /// Asks the arbiter for the setpoint on behalf of `requester`; refused as the command
    /// error the channel reports.
    private mutating func take(_ requester: SetpointOwner) throws(CommandRejection) -> SetpointGrant {
        switch arbiter.request(requester) {
        case .success(let g): return g
        case .failure(let why): throw rejection(why)
        }
    }

    /// Throws when `requester` may not take the setpoint now (checked before the
    /// command's own remaining checks; ``take(_:)`` then grants it).
    private func mayTake(_ requester: SetpointOwner) throws(CommandRejection) {
        if case .refuse(let why) = arbiter.rule(for: requester) { throw rejection(why) }
    }

    private func rejection(_ why: SetpointRefusal) -> CommandRejection {
        if case .safetyActive = why { return .faultLatched(faults.records.map(\.code)) }
        return .unsafe(why.message)
    }

    /// Records a change of owner in the event stream.
    private mutating func handedOver(_ h: SetpointHandover?) {
        if let h { events.append(.setpointOwner(h)) }
    }

    /// Stops the work of `owner`, whose setpoint a granted request took (the arbiter has
    /// already moved the ownership; this ends what it was doing).
    private mutating func stop(_ owner: SetpointOwner, reason: String) {
        switch owner {
        case .program:
            program = nil
            events.append(.programState(name: "", state: .stopped, detail: reason))
        case .sweep: cancelSweep(reason: reason)
        case .autotune: cancelAutotune(reason: reason)
        case .supervisor: try? lockSupervisor(reason: reason + "; unlock to let it move the setpoint again")
        case .resume: pendingResume = nil
        case .operator, .safety: break
        }
    }

    /// `owner` ended (finished, cancelled, stopped, locked).
    private mutating func ended(_ owner: SetpointOwner) { handedOver(arbiter.end(owner)) }

    /// Starts or stops the `ramp` safe action's ownership of the setpoint.
    private mutating func setRampingToSafe(_ on: Bool) {
        if on { handedOver(try? take(.safety).handover) } else { ended(.safety) }
    }

    /// The task that should own the setpoint by the channel's own state (a debug
    /// cross-check of the arbiter).
    private var taskInForce: SetpointOwner? {
        if experiment != nil { return .autotune }
        if sweep != nil { return .sweep }
        if let r = program, r.state == .running || r.state == .paused { return .program }
        return pendingResume != nil ? .resume : nil
    }

    // MARK: Impedance-aware supervisor

    /// Stops the supervisor moving the setpoint (it keeps learning).
    public mutating func lockSupervisor(reason: String = "operator") throws(CommandRejection) {
        guard var s = supervisor else { throw .unsafe("the impedance-aware supervisor is not enabled on this channel") }
        guard !s.locked else { return }
        s.lock(reason); supervisor = s
        events.append(.supervisor("locked (\(reason))"))
        ended(.supervisor)
    }

    /// Lets the supervisor move the setpoint again.
    public mutating func unlockSupervisor() throws(CommandRejection) {
        guard var s = supervisor else { throw .unsafe("the impedance-aware supervisor is not enabled on this channel") }
        guard s.locked else { return }
        s.unlock(now: last.time ?? 0); supervisor = s
        supervisorConverged = false
        events.append(.supervisor("unlocked"))
        handedOver(try? take(.supervisor).handover)
    }

    /// Restores the supervisor's learned map and lock persisted before a restart (when
    /// its settings have not changed).
    public mutating func restoreSupervisor(_ saved: ImpedanceSupervisor?) {
        guard let saved, let s = supervisor, saved.settings == s.settings else { return }
        supervisor = saved
        syncSupervisorFallback()
    }

    /// Makes the arbiter's fallback the supervisor exactly while one is enabled and
    /// unlocked.
    private mutating func syncSupervisorFallback() {
        if let s = supervisor, !s.locked { handedOver(try? take(.supervisor).handover) } else { ended(.supervisor) }
    }

    private mutating func stepSupervisor(now: Double, pressure: Double?, readings: ChannelReadings) {
        // It learns whenever the channel regulates with nothing else owning the setpoint
        // (also while locked: then it only does not move the setpoint).
        guard var s = supervisor, mode == .regulating, let t = target, arbiter.task == nil, !arbiter.safety else { return }
        let inBand = pressure.map { abs($0 - t) <= parameters.band * t } ?? false
        let d = s.update(now: now, setpoint: t, pressure: pressure, inBand: inBand, resistance: readings.interfacialResistance)
        supervisor = s
        if let d {
            supervisorConverged = false
            applyTarget(min(max(d.setpoint, parameters.limits.minSetpoint), parameters.limits.maxSetpoint), ramp: nil)
            events.append(.supervisor("setpoint \(fmt3(t)) → \(fmt3(d.setpoint)) MPa: \(d.reason)"))
        } else if s.convergedAt != nil && !supervisorConverged {
            supervisorConverged = true
            events.append(.supervisor(s.lastReason ?? "converged"))
        }
    }

    // MARK: Gains, adaptation and autotune

    private var gainScale: Double { regulator.gainScale }

    /// PID parameters in force: the base (configured or autotuned) gains times the
    /// adaptive scale, with `ramp`.
    private func effectivePID(ramp: Double?) -> PIDParameters { regulator.pidParameters(parameters, ramp: ramp) }

    /// Everything added to the PID's output at `target`: the static inverse, the learned
    /// disturbance feedforward and the external one. Entering regulation accounts for
    /// all of it, so that the first regulated output equals the present one.
    private func totalFeedforward(_ target: Double) -> Double {
        regulator.totalFeedforward(parameters, target, external: externalFeedforward)
    }

    /// Restores an autotune result and learned memory persisted before a restart.
    public mutating func restoreLearning(tune: AutotuneResult?, memory: ControllerMemory?) {
        if let tune { adoptTune(tune) }
        regulator = Regulator(parameters: parameters, lastTune: lastTune, memory: memory)
        pid.setParameters(effectivePID(ramp: pid.parameters.setpointRampRate))
    }

    /// Makes `r`'s gains and static inverse the channel's base.
    private mutating func adoptTune(_ r: AutotuneResult) {
        lastTune = r
        parameters.pid.kp = r.kp
        parameters.pid.ki = r.ki
        parameters.pid.kd = 0
        parameters.feedforward = r.feedforward
    }

    /// Starts a relay experiment at the present setpoint. Refused unless the channel is
    /// regulating, in band, with nothing else owning the setpoint (program, sweep), and
    /// the excursion fits in its limits.
    public mutating func startAutotune(_ settings: AutotuneSettings? = nil) throws(CommandRejection) {
        let s = settings ?? parameters.autotune
        if let e = s.validationErrors().first { throw .unsafe("\(e.field) \(e.message)") }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard mode == .regulating, let t = target else { throw .unsafe("the channel must be regulating at the pressure to tune at") }
        try mayTake(.autotune)
        guard let p = last.pressure, abs(p - t) <= parameters.band * t, pid.workingSetpoint.map({ abs($0 - t) < 1e-9 }) ?? true else {
            throw .unsafe("the pressure must be settled in band at the setpoint \(fmt3(t)) MPa")
        }
        guard t + s.maxExcursion * 1.5 < parameters.limits.trip else {
            throw .unsafe("setpoint \(fmt3(t)) MPa + 1.5 × excursion \(fmt3(s.maxExcursion)) MPa reaches the trip level \(fmt3(parameters.limits.trip)) MPa")
        }
        guard t - s.maxExcursion >= parameters.limits.minSetpoint else {
            throw .unsafe("setpoint \(fmt3(t)) MPa − excursion \(fmt3(s.maxExcursion)) MPa is below the minimum setpoint \(fmt3(parameters.limits.minSetpoint)) MPa")
        }
        let grant = try take(.autotune)
        let inverse = parameters.feedforward.gain > 0 ? parameters.feedforward.gain * gainScale : (lastTune.map { 1 / $0.processGain } ?? 0)
        experiment = AutotuneLaw(tuner: RelayAutotuner(settings: s, setpoint: t, bias: pid.output, inverseGain: inverse,
                                                       outputMin: parameters.pid.outputMin, outputMax: parameters.pid.outputMax, limits: parameters.limits))
        pid.setManual(output: pid.output)
        events.append(.autotune(state: .started, detail: "at \(fmt3(t)) MPa, excursion ±\(fmt3(s.maxExcursion)) MPa, rule \(s.rule.rawValue)"))
        handedOver(grant.handover)
    }

    /// Stops a running experiment; the output returns to where it started and the old
    /// gains stay.
    /// When the channel has left regulation (a fault's safe action, hold, release) the
    /// output is left where that put it: the experiment's bias is restored only while
    /// regulating.
    public mutating func cancelAutotune(reason: String = "operator cancelled") {
        guard let t = autotuner else { return }
        experiment = nil
        if mode == .regulating {
            pid.setManual(output: t.bias)
            pid.setAutomatic(measurement: last.pressure ?? t.setpoint, feedforward: totalFeedforward(t.setpoint))
        }
        events.append(.autotune(state: .cancelled, detail: reason))
        ended(.autotune)
    }

    /// The experiment `tuner` ended by itself (done or failed): the regulator takes over
    /// again, bumplessly from the experiment's bias, with the new gains when it is done.
    private mutating func endAutotune(_ tuner: RelayAutotuner, pressure: Double) -> Double {
        experiment = nil
        switch tuner.phase {
        case .done(let r):
            let ramp = pid.parameters.setpointRampRate
            adoptTune(r)
            regulator = Regulator(parameters: parameters, lastTune: lastTune, memory: nil)
            pid.setManual(output: r.bias)
            pid.setParameters(effectivePID(ramp: ramp))
            pid.setAutomatic(measurement: pressure, feedforward: totalFeedforward(target ?? r.setpoint))
            events.append(.autotune(state: .done, detail: "rule \(r.rule.rawValue): kp \(fmt3(r.kp)) ki \(fmt3(r.ki)); Ku \(fmt3(r.ultimateGain)) Pu \(fmt3(r.ultimatePeriod)) s; K \(r.processGain) MPa/unit, τ \(fmt3(r.timeConstant)) s, θ \(fmt3(r.deadTime)) s"))
        case .failed(let why):
            pid.setManual(output: tuner.bias)
            pid.setAutomatic(measurement: pressure, feedforward: totalFeedforward(tuner.setpoint))
            events.append(.autotune(state: .failed, detail: why))
        default:
            break
        }
        ended(.autotune)
        return pid.output
    }

    // MARK: Critical-stack-pressure sweep

    /// Starts a sweep: it takes over the setpoint, steps down through its levels,
    /// measures interfacial resistance at each and fits the knee. Refused unless the
    /// channel is regulating with an interfacial-resistance signal, with nothing else
    /// owning the setpoint (program, autotune), and the levels inside its limits.
    public mutating func startSweep(_ s: SweepSettings) throws(CommandRejection) {
        if let e = s.validationErrors(limits: parameters.limits).first { throw .unsafe("\(e.field) \(e.message)") }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard mode == .regulating else { throw .unsafe("the channel must be regulating (set a setpoint first)") }
        try mayTake(.sweep)
        // No resistance yet (pushes or an analyser's first result still to come): the
        // sweep starts anyway; each level waits for its measurements and the sweep aborts
        // when they do not come within the measurement timeout.
        let waiting = last.readings.interfacialResistance == nil
        let grant = try take(.sweep)
        sweep = CSPSweep(settings: s)
        applyTarget(s.from, ramp: nil)
        let path = s.direction == .downUp ? "\(fmt3(s.from)) → \(fmt3(s.to)) → \(fmt3(s.from)) MPa" : "\(fmt3(s.from)) → \(fmt3(s.to)) MPa"
        events.append(.sweep(state: .started, detail: "\(path) in \(s.levels.count) levels, \(fmt0(s.dwell)) s each"
                                 + (s.sweepProtocol == .dynamic ? ", dynamic (growth > \(fmt3(s.growthThresholdPerHour * 100)) %/h)" : "")
                                 + (waiting ? "; no interfacial-resistance measurement yet: each level waits for pushed or analysed results" : "")))
        handedOver(grant.handover)
    }

    /// Ends a running sweep; what was measured is kept and fitted, and the setpoint goes
    /// to the sweep's return pressure.
    public mutating func cancelSweep(reason: String = "operator cancelled", now: Double? = nil) {
        guard var s = sweep else { return }
        s.abort(now: now ?? last.time ?? 0, reason: reason)
        finishSweep(s)
    }

    private mutating func finishSweep(_ s: CSPSweep) {
        sweep = nil
        defer { ended(.sweep) }
        guard let r = s.result else { return }
        lastSweep = r
        let back = s.settings.returnTo ?? s.settings.from
        if mode == .regulating { applyTarget(min(max(back, parameters.limits.minSetpoint), parameters.limits.maxSetpoint), ramp: nil) }
        events.append(.sweepFinished(r))
    }

    /// Restores the last sweep result persisted before a restart.
    public mutating func restoreSweep(_ r: SweepResult?) { lastSweep = r }

    /// One tick of a running sweep (regulating only).
    private mutating func stepSweep(now: Double, pressure: Double?, readings: ChannelReadings) {
        guard var s = sweep else { return }
        let before = s.points.count
        let inBand = pressure.map { p in abs(p - s.setpoint) <= parameters.band * s.setpoint } ?? false
        let area = parameters.cellArea
        s.update(now: now, pressure: pressure, inBand: inBand && target == s.setpoint,
                 resistance: readings.interfacialResistance, temperature: readings.temperature,
                 currentDensity: readings.current.map { Sample(value: $0.value / area, time: $0.time) })
        if s.points.count > before, let p = s.points.last {
            let j = p.currentDensity.map { ", \(fmt3($0)) mA/cm²" } ?? ""
            let m = p.samples == 1 ? "1 measurement" : "\(p.samples) measurements"
            var g = ""
            if let b = p.slope, let se = p.slopeSE, p.grows != nil {
                g = ", \(fmt3(b)) ± \(fmt3(se)) Ω·cm²/h" + (p.grows == true ? ", grows" : "")
            }
            let leg = s.settings.direction == .downUp ? " (\(p.leg?.rawValue ?? "down"))" : ""
            events.append(.sweep(state: .level, detail: "\(fmt3(p.pressure)) MPa\(leg): \(fmt3(p.resistance)) ± \(fmt3(p.resistanceSD)) Ω·cm² (\(m)\(j)\(g))"))
        }
        if s.finished { return finishSweep(s) }
        sweep = s
        if target != s.setpoint { applyTarget(s.setpoint, ramp: nil) }
    }

    // MARK: Restore after a restart

    /// Restores the state persisted before a restart. Call before the first tick, on a
    /// controller created with the actuator's present output.
    /// - Latched faults come back latched (their conditions are judged again on the
    ///   first tick) and the channel stays tripped until acknowledged.
    /// - A channel that was regulating resumes on the first valid measurement, from the
    ///   present output and with the ramp starting at the measured pressure: no spike.
    public mutating func restore(mode saved: ChannelMode, target: Double?, ramp: Double?, faults savedFaults: [FaultRecord]) {
        if !savedFaults.isEmpty {
            _ = faults.update(present: Dictionary(savedFaults.map { ($0.code, $0.message) }, uniquingKeysWith: { a, _ in a }), now: 0)
            changeMode(.tripped, reason: "faults latched before restart")
            self.target = target
            // The trip's safe action again: a restart moments after a trip must not leave
            // the actuator where the crash found it (half way back, or still pressing).
            // `ramp` needs a measurement, which there is not yet: it holds.
            let action = savedFaults.filter { !$0.code.isAlarmOnly }.map { safeAction(for: $0.code) }.reduce(SafeAction.hold) { $0.combined(with: $1) }
            if action == .release { pid.setManual(output: parameters.safeOutput) }
            return
        }
        switch saved {
        case .regulating:
            if let target, let grant = try? take(.resume) {
                pendingResume = (target, ramp)
                changeMode(.holding, reason: "resuming after restart")
                handedOver(grant.handover)
            }
        case .holding, .tripped: changeMode(.holding, reason: "restored")
        case .released:
            pid.setManual(output: parameters.safeOutput)
            changeMode(.released, reason: "restored")
        }
        self.target = target
    }

    /// An operator's hold or release after a restart is a decision about the channel:
    /// the saved target is not resumed behind it later.
    private mutating func dropPendingResume() {
        guard pendingResume != nil else { return }
        pendingResume = nil
        ended(.resume)
    }

    /// The resume saved before a restart, on the first valid measurement.
    private mutating func stepResume(pressure: Double?) {
        guard let r = pendingResume, pressure != nil, mode == .holding else { return }
        pendingResume = nil
        applyTarget(min(max(r.target, parameters.limits.minSetpoint), parameters.limits.maxSetpoint), ramp: r.ramp)
        events.append(.setpointChanged(target: r.target, ramp: pid.parameters.setpointRampRate))
        ended(.resume)
    }

    /// Takes the events produced since the last call.
    public mutating func drainEvents() -> [ChannelEvent] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    private mutating func changeMode(_ new: ChannelMode, reason: String) {
        guard new != mode else { return }
        events.append(.modeChanged(from: mode, to: new, reason: reason))
        mode = new
    }

    // MARK: Commands

    /// Regulate to `mpa`, optionally ramping at `ramp` MPa/s (else the configured ramp).
    /// The operator takes the setpoint from whoever owns it: a program is stopped, a
    /// sweep or autotune cancelled, the supervisor locked, a pending resume dropped.
    public mutating func setTarget(_ mpa: Double, ramp: Double? = nil) throws(CommandRejection) {
        let l = parameters.limits
        guard mpa.isFinite, mpa >= l.minSetpoint, mpa <= l.maxSetpoint else {
            throw .outOfRange(value: mpa, min: l.minSetpoint, max: l.maxSetpoint)
        }
        if let ramp, !RampRate.valid(ramp) { throw .invalidRamp(ramp) }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        let grant = try take(.operator)
        pendingResume = nil // also under a restored program
        for owner in grant.ended { stop(owner, reason: "operator set a setpoint") }
        applyTarget(mpa, ramp: ramp)
        handedOver(grant.handover)
        events.append(.setpointChanged(target: mpa, ramp: pid.parameters.setpointRampRate))
    }

    /// Moves the target (and ramp) and enters regulation bumplessly if needed.
    /// - Parameter resuming: regulation resumes at the same target after an automatic
    ///   recovery: the pressure had settled there, and an excursion that began with the
    ///   fault goes on until the pressure is back in band.
    private mutating func applyTarget(_ mpa: Double, ramp: Double?, resuming: Bool = false) {
        if autotuner != nil { cancelAutotune(reason: "new setpoint") }
        if !resuming && (mpa != target || mode != .regulating) {
            // A new approach (a new target, or regulation starting again): not settled.
            excursions.settledTarget = nil
            authority.reset()
            if excursions.open != nil {
                if excursions.open!.kind == .disturbance { excursions.open!.kind = .setpointChange }
                closeExcursion(now: last.time ?? 0)
            }
        }
        let p = effectivePID(ramp: ramp ?? parameters.pid.setpointRampRate)
        if p != pid.parameters { pid.setParameters(p) }
        target = mpa
        if mode != .regulating {
            pid.setAutomatic(measurement: last.pressure ?? 0, feedforward: totalFeedforward(mpa))
            changeMode(.regulating, reason: "setpoint \(fmt3(mpa)) MPa")
        }
    }

    // MARK: Programs

    /// Loads and starts `p`; it takes over the setpoint from the next tick (a sweep or
    /// autotune in progress is cancelled, a pending resume dropped).
    public mutating func startProgram(_ p: PressureProgram) throws(CommandRejection) {
        if let e = p.validationErrors(limits: parameters.limits).first { throw .invalidProgram(step: e.step, message: e.message) }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        let grant = try take(.program)
        for owner in grant.ended { stop(owner, reason: "program \(p.name) started") }
        // A ramp step starts where the pressure is: on a regulating channel its
        // setpoint; otherwise (released, holding) the measured pressure, since an old
        // setpoint still stored would let a ramp to it "finish" at once — never below
        // zero (a released load cell's noise).
        let measured = last.pressure.map { max(0, $0) }
        let fromSetpoint = mode == .regulating ? target != nil : measured == nil
        let start = fromSetpoint ? target : measured
        program = ProgramRunner(program: p, startSetpoint: start,
                                origin: start.map { ProgramOrigin(pressure: $0, source: fromSetpoint ? .setpoint : .measuredPressure, mode: mode) })
        events.append(.programState(name: p.name, state: .started, detail: "\(p.steps.count) steps"))
        events.append(.programStep(name: p.name, index: 0, step: p.steps[0].name))
        handedOver(grant.handover)
    }

    public mutating func pauseProgram() throws(CommandRejection) {
        guard var r = program, r.state == .running else { throw .noProgram("no running program to pause") }
        r.pause(); program = r
        events.append(.programState(name: r.program.name, state: .paused, detail: "step \(r.index + 1)"))
    }

    /// Resumes a paused program; on the next tick the channel regulates at the program's
    /// setpoint again, also from `holding` or `released`. Refused while tripped.
    public mutating func resumeProgram() throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard var r = program, r.state == .paused else { throw .noProgram("no paused program to resume") }
        r.resume(); program = r
        events.append(.programState(name: r.program.name, state: .resumed, detail: "step \(r.index + 1)"))
    }

    /// Stops the program; the channel keeps regulating at the present setpoint.
    public mutating func stopProgram() throws(CommandRejection) {
        guard let r = program else { throw .noProgram("no program loaded") }
        program = nil
        events.append(.programState(name: r.program.name, state: .stopped, detail: "step \(r.index + 1)"))
        ended(.program)
    }

    /// Restores a program persisted before a restart (paused when it was paused). It
    /// owns the setpoint as it did (a pending resume still restarts regulation first).
    public mutating func restoreProgram(_ r: ProgramRunner) {
        var r = r
        r.rebase()
        program = r
        if r.state == .running || r.state == .paused { handedOver(arbiter.restore(.program)) }
    }

    private mutating func pauseProgramForSafety(_ why: String) {
        guard var r = program, r.state == .running else { return }
        r.pause(); program = r
        events.append(.programState(name: r.program.name, state: .paused, detail: why))
    }

    /// One tick of a running program: it owns the setpoint while running (and starts
    /// regulation when it was loaded on a released or holding channel).
    private mutating func stepProgram(now: Double, readings: ChannelReadings) {
        guard var r = program, r.state == .running else { return }
        let entered = r.update(now: now) { name in name == "charging" ? readings.charging : nil }
        for i in entered { events.append(.programStep(name: r.program.name, index: i, step: r.program.steps[i].name)) }
        if r.state == .finished { events.append(.programState(name: r.program.name, state: .finished, detail: "")) }
        if r.state == .failed { events.append(.programState(name: r.program.name, state: .failed, detail: r.failure ?? "")) }
        program = r.state == .finished ? nil : r
        // A program resumed after a hold, a release or an acknowledged trip takes the
        // channel back into regulation at its setpoint (resuming is the operator's
        // decision that it should run again).
        if let sp = r.setpoint, sp != target || mode != .regulating || (r.ramp ?? parameters.pid.setpointRampRate) != pid.parameters.setpointRampRate {
            applyTarget(min(max(sp, parameters.limits.minSetpoint), parameters.limits.maxSetpoint), ramp: r.ramp)
        }
        if r.state == .finished || r.state == .failed { ended(.program) }
    }

    /// Freeze the actuator at its present output.
    public mutating func hold() throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        dropPendingResume()
        pauseProgramForSafety("operator hold")
        pid.setManual(output: pid.output)
        changeMode(.holding, reason: "operator hold")
    }

    /// Drive the actuator to its safe output. Always allowed, also when tripped.
    public mutating func release() {
        setRampingToSafe(false)
        dropPendingResume()
        pauseProgramForSafety("operator release")
        pid.setManual(output: parameters.safeOutput)
        if mode != .tripped { changeMode(.released, reason: "operator release") }
    }

    /// Clears the faults whose conditions have gone. When none remain a tripped channel
    /// goes to `holding` (the actuator stays where the safe action left it; regulating
    /// again takes a new setpoint). Returns the faults that stay latched.
    @discardableResult
    public mutating func acknowledge() -> [FaultRecord] {
        let before = faults.records.map(\.code)
        let remaining = faults.acknowledge()
        let cleared = before.filter { c in !remaining.contains { $0.code == c } }
        // A new window and noise baseline after a suspected short was acknowledged.
        if cleared.contains(.cellShortSuspected) { shortDetector?.reset() }
        events.append(.faultsAcknowledged(cleared: cleared, remaining: remaining.map(\.code)))
        if remaining.isEmpty && mode == .tripped {
            recovery.beforeTrip = nil
            recovery.goodSince = nil
            setRampingToSafe(false)
            pid.setManual(output: pid.output)
            changeMode(.holding, reason: "faults acknowledged")
        }
        return remaining
    }

    /// Replaces every parameter (configuration reload): gains change bumplessly, new
    /// limits apply from the next tick. A target now outside the limits is clamped.
    public mutating func reconfigure(_ p: ChannelParameters) {
        let ramp = pid.parameters.setpointRampRate
        let memory = adapter?.memory
        // Everything fed forward before the change, to keep the output continuous: a
        // new feedforward gain, strategy or adaptive scale is absorbed by the integrator.
        let before = target.map(totalFeedforward)
        parameters = p
        if let t = lastTune { adoptTune(t) }
        regulator = Regulator(parameters: parameters, lastTune: lastTune, memory: p.strategy == .pid ? nil : memory)
        let shortSettings = p.shortDetection.flatMap { $0.enabled ? $0 : nil }
        if shortSettings != shortDetector?.settings { shortDetector = shortSettings.map { ShortDetector(settings: $0) } }
        if p.supervisor != supervisor?.settings {
            supervisor = p.supervisor.map { ImpedanceSupervisor(settings: $0) }
            syncSupervisorFallback()
        }
        pid.setParameters(effectivePID(ramp: target != nil ? (ramp ?? p.pid.setpointRampRate) : p.pid.setpointRampRate))
        if let t = target {
            let clamped = min(max(t, p.limits.minSetpoint), p.limits.maxSetpoint)
            if clamped != t {
                // Recorded, never silent: the new limits moved the setpoint.
                target = clamped
                events.append(.setpointChanged(target: clamped, ramp: pid.parameters.setpointRampRate))
                events.append(.configuration("setpoint \(fmt3(t)) MPa is outside the reloaded limits \(fmt3(p.limits.minSetpoint))…\(fmt3(p.limits.maxSetpoint)) MPa: moved to \(fmt3(clamped)) MPa"))
            }
        }
        if let b = before, let t = target, pid.mode == .automatic { pid.shiftIntegral(by: b - totalFeedforward(t)) }
    }

    // MARK: Tick

    /// One control step. Safety checks run first, on this tick's reading, so a trip
    /// changes the output returned by this same call; then the setpoint's owner moves
    /// the setpoint; then the control law in force computes the output.
    /// - Returns: the actuator output to apply now.
    public mutating func step(now: Double, readings: ChannelReadings) -> Double {
        let dt = last.time.map { now - $0 } ?? 0
        last.time = now
        last.readings = readings

        // 1–3. Safety, decided before control on this tick's reading: sensor checks,
        //      over-pressure and the other fault inputs, the saturation watch; new faults
        //      latch and take their safe action.
        var (present, pressure) = judgeFaults(now: now, readings: readings)
        watchSaturation(now: now, pressure: pressure, present: &present)
        let tripped = latch(present, now: now, pressure: pressure)
        if let pressure { last.pressure = pressure }
        trackExcursion(now: now, pressure: pressure, faultFired: tripped)
        stepRecovery(now: now, pressure: pressure)

        // 4. The setpoint's owner moves it: a resume after a restart, a program, a
        //    sweep (a fault or leaving regulation ends it), the supervisor.
        stepResume(pressure: pressure)
        if mode != .tripped, pressure != nil { stepProgram(now: now, readings: readings) }
        if sweep != nil {
            if mode == .regulating { stepSweep(now: now, pressure: pressure, readings: readings) }
            else { cancelSweep(reason: "channel left regulation (\(mode.rawValue))", now: now) }
        }
        if supervisor != nil { stepSupervisor(now: now, pressure: pressure, readings: readings) }
        assert(arbiter.task == taskInForce, "setpoint arbiter out of step: \(String(describing: arbiter.task)) vs \(String(describing: taskInForce))")

        // 5. The output.
        return control(now: now, dt: dt, pressure: pressure, readings: readings)
    }

    /// Steps 1 and 2: the faults present on this reading, and the pressure to regulate on
    /// (nil without a valid, fresh, plausible force sample).
    private mutating func judgeFaults(now: Double, readings: ChannelReadings) -> (present: [FaultCode: String], pressure: Double?) {
        // 1. Sensor plausibility and staleness.
        var present: [FaultCode: String] = [:]
        let s = parameters.sensor
        var pressure: Double?
        last.stale = false
        if let f = readings.force {
            let age = now - f.time
            if age > s.staleAfter {
                last.stale = true
                present[.sensorStale] = "force sample is \(Int((age * 1000).rounded())) ms old (limit \(Int((s.staleAfter * 1000).rounded())) ms)"
            }
            if !f.value.isFinite || f.value < s.minForce || f.value > s.maxForce {
                present[.sensorRange] = "force \(fmt3(f.value)) N outside plausible range \(fmt3(s.minForce))…\(fmt3(s.maxForce)) N"
            } else if !last.stale {
                pressure = parameters.pressure(fromForce: f.value)
            }
        } else if now > s.staleAfter {
            last.stale = true
            present[.sensorStale] = "no force sample received"
        }
        if let msg = frozen.check(readings.force, now: now, sensor: s) { present[.sensorFrozen] = msg; pressure = nil }

        // 2. Over-pressure: judged on every valid sample, in every mode. A reading
        //    beyond the sensor's upper range cannot rule out over-pressure (a saturated
        //    load cell means "at least this much"), so it is judged too: fail safe.
        var judged = pressure
        if judged == nil, let f = readings.force?.value, f.isFinite, f > s.maxForce { judged = parameters.pressure(fromForce: f) }
        if let p = judged, p > parameters.limits.trip {
            present[.overPressure] = "stack pressure \(fmt3(p)) MPa above trip level \(fmt3(parameters.limits.trip)) MPa"
        }

        // Soft short: judged on distinct, fresh voltage measurements at steady current —
        // not again once suspected (the first evidence is the one that matters, and a
        // flickering short must not fire a fault every few ticks) until acknowledged,
        // and not on a released channel.
        if shortDetector != nil, mode != .released, !faults.records.contains(where: { $0.code == .cellShortSuspected }),
           let e = shortDetector!.update(now: now, voltage: readings.voltage, current: readings.current, pressure: pressure ?? last.pressure,
                                         resistance: readings.interfacialResistance, area: parameters.cellArea) {
            present[.cellShortSuspected] = e.message
        }
        if readings.emergencyStop == true { present[.emergencyStop] = "emergency-stop input active" }
        if readings.limitSwitch == true { present[.limitSwitch] = "travel limit switch active (output \(fmt3(pid.output)))" }
        if let limit = parameters.nonUniformityAlarm, let f = readings.force?.value, f >= parameters.nonUniformityMinForce ?? 0.05 * s.maxForce,
           let u = nonUniformity(readings.loadCellForces), u > limit {
            present[.nonUniformLoad] = "load cells differ by \(fmt3(u * 100)) % of their mean (alarm at \(fmt3(limit * 100)) %)"
        }
        return (present, pressure)
    }

    /// Saturation: regulating, the output held by its limit, the pressure outside the
    /// band, for longer than the timeout.
    private mutating func watchSaturation(now: Double, pressure: Double?, present: inout [FaultCode: String]) {
        if mode == .regulating, let t = target, let p = pressure {
            let outside = abs(p - t) > parameters.band * t
            if !outside { saturation.lastGoodOutput = pid.output; saturation.since = nil }
            else if pid.lastTerms.saturated { saturation.since = saturation.since ?? now }
            else { saturation.since = nil }
            if let since = saturation.since, now - since >= parameters.limits.saturationTimeout {
                present[.cannotReachSetpoint] = "pressure \(fmt3(p)) MPa, setpoint \(fmt3(t)) MPa: output at its limit (\(fmt3(pid.output))) for \(fmt0(now - since)) s"
            }
        } else if mode != .tripped {
            saturation.since = nil
        } else if faults.records.contains(where: { $0.code == .cannotReachSetpoint }), let t = target, let p = pressure,
                  abs(p - t) > 2 * parameters.band * t {
            // Tripped by it: its cause is present for as long as the pressure stays far
            // from the setpoint at the held output — beyond twice the band, since friction
            // or hysteresis alone can leave a held output just outside it (an
            // acknowledgement must not clear it while the supply is still short).
            // A fixed text: this runs every tick of the trip (status shows the numbers).
            present[.cannotReachSetpoint] = "the pressure is still more than twice the band from the setpoint at the held output"
        }
    }

    /// Step 3: latches the faults present and takes the safe action of those that fired
    /// (release beats ramp beats hold). Returns true when one fired.
    private mutating func latch(_ present: [FaultCode: String], now: Double, pressure: Double?) -> Bool {
        let allFired = faults.update(present: present, now: now)
        // An alarm is raised once: one that comes and goes while still latched is not
        // raised again (it takes no action to repeat).
        for r in allFired where r.code.isAlarmOnly && r.raisedAt == now { events.append(.faultRaised(r, action: .hold)) }
        let fired = allFired.filter { !$0.code.isAlarmOnly }
        guard !fired.isEmpty else { return false }
        var action = SafeAction.hold
        for r in fired {
            let a = safeAction(for: r.code)
            action = action.combined(with: a)
            events.append(.faultRaised(r, action: a))
        }
        // Ramping needs a measurement: with a sensor fault among the causes, hold.
        if action == .ramp && fired.contains(where: { $0.code == .sensorRange || $0.code == .sensorStale || $0.code == .sensorFrozen }) { action = .hold }
        if mode != .tripped { recovery.beforeTrip = (mode, target, program?.state == .running) }
        if action != .ramp { setRampingToSafe(false) }
        switch action {
        case .release: pid.setManual(output: parameters.safeOutput)
        case .ramp:
            var p = pid.parameters
            p.setpointRampRate = parameters.limits.safeRamp
            pid.setParameters(p)
            // From the measured pressure down, at the safe ramp rate, to the safe
            // pressure or to what the channel was asking for if that is lower: a ramp to
            // safety never raises the pressure. (`control` also pulls the ramp down to
            // the reading when the trip came from a glitch; see there.)
            let measured = pressure ?? last.pressure ?? 0
            safetyRampGoal = ([parameters.limits.safePressure, target, pid.workingSetpoint].compactMap { $0 }).min()
            if fired.contains(where: { $0.code == .cellShortSuspected }) {
                // A suspected short goes to its own safe pressure, and never above the
                // pressure measured now (more pressure drives lithium further in).
                let shortSafe = parameters.shortDetection?.safePressure ?? parameters.limits.safePressure
                safetyRampGoal = ([shortSafe, target, pid.workingSetpoint, measured].compactMap { $0 }).min()
            }
            if pid.mode == .manual { pid.setAutomatic(measurement: measured) }
            else { pid.resetWorkingSetpoint(to: measured) }
            setRampingToSafe(true)
        case .hold:
            // A channel that cannot reach its setpoint goes back to the last output
            // that held the pressure in band, so that a returning supply does not
            // overshoot; other holds freeze the output where it is.
            // Without such an output (it never got there: no air from the start),
            // what the feedforward model says the setpoint needs, else the safe
            // output — never the limit the output wound up against.
            let onlySaturation = fired.allSatisfy { $0.code == .cannotReachSetpoint }
            let needed = target.map { parameters.feedforward.gain > 0 ? totalFeedforward($0) : parameters.safeOutput } ?? parameters.safeOutput
            pid.setManual(output: onlySaturation ? (saturation.lastGoodOutput ?? needed) : pid.output)
        }
        pauseProgramForSafety(fired.map(\.code.rawValue).joined(separator: ","))
        if excursions.open != nil { excursions.open!.kind = .fault }
        authority.reset()
        saturation.since = nil
        changeMode(.tripped, reason: fired.map(\.code.rawValue).joined(separator: ","))
        return true
    }

    /// Step 5: the output. A `ramp` safe action regulates down to the safe pressure
    /// while tripped; regulating, the control law in force (the experiment swapped in,
    /// else the regulator) computes it; otherwise the PID tracks the held output so the
    /// return to automatic is bumpless. Without a valid measurement this tick the output
    /// is held: the loop never acts on an old or implausible reading.
    private mutating func control(now: Double, dt: Double, pressure: Double?, readings: ChannelReadings) -> Double {
        if mode == .tripped && rampingToSafe {
            // It stops (holds) when the measurement is lost.
            guard let pressure, pid.mode == .automatic else {
                setRampingToSafe(false)
                pid.setManual(output: pid.output)
                return pid.output
            }
            // A ramp that starts from an over-reading (a glitch, not a real over-pressure)
            // sits far above the true pressure once the reading is true again: the loop
            // would drive the cell up to it. The ramp never runs more than a band above
            // the measured pressure; it goes on down from there.
            let goal = safetyRampGoal ?? parameters.limits.safePressure
            if let w = pid.workingSetpoint, w - pressure > parameters.band * max(pressure, goal) {
                pid.resetWorkingSetpoint(to: max(pressure, goal))
            }
            return pid.update(setpoint: goal, measurement: pressure, dt: dt)
        }
        if mode == .regulating {
            guard let target, let pressure else { regulator.interrupt(); return pid.output }
            if var x = experiment {
                let tick = ControlTick(now: now, dt: dt, target: target, pressure: pressure, readings: readings, feedforward: 0, ceiling: nil)
                guard let u = x.update(tick, parameters: parameters, pid: &pid, events: &events) else {
                    return endAutotune(x.tuner, pressure: pressure)
                }
                experiment = x
                return u
            }
            return regulate(now: now, target: target, pressure: pressure, dt: dt, readings: readings)
        }
        regulator.interrupt()
        if experiment != nil { cancelAutotune(reason: "channel left regulation (\(mode.rawValue))") }
        return pid.update(setpoint: target ?? 0, measurement: pressure ?? last.pressure ?? 0, dt: dt)
    }

    /// Regulation with the regulator (pid, adaptive, learned), its output capped while
    /// actuator authority is lost.
    private mutating func regulate(now: Double, target: Double, pressure: Double, dt: Double, readings: ChannelReadings) -> Double {
        let ff = totalFeedforward(target)
        let gain = parameters.feedforward.gain * gainScale
        let change = authority.update(now: now, dt: dt, target: target, pressure: pressure, band: parameters.band,
                                      output: pid.output, atUpperLimit: pid.lastTerms.saturated && pid.lastTerms.unlimited > pid.output,
                                      modelGain: gain > 0 ? gain : nil, modelOutput: gain > 0 ? ff : nil,
                                      outputMax: parameters.pid.outputMax, play: parameters.actuatorPlay,
                                      settled: excursions.settledTarget == target)
        switch change {
        case .lost(let cap, let why)?:
            if excursions.open != nil, excursions.open!.kind == .disturbance { excursions.open!.kind = .saturation }
            events.append(.authority(state: .lost, detail: "the pressure (\(fmt3(pressure)) MPa, setpoint \(fmt3(target))) does not answer the output: \(why); output capped at \(fmt3(cap)), what the setpoint needs plus half the band, until the pressure is back in band"))
        case .regained?:
            events.append(.authority(state: .regained, detail: "pressure \(fmt3(pressure)) MPa back in band; output no longer capped"))
        case nil: break
        }
        let tick = ControlTick(now: now, dt: dt, target: target, pressure: pressure, readings: readings, feedforward: ff, ceiling: authority.ceiling)
        return regulator.update(tick, parameters: parameters, pid: &pid, events: &events) ?? pid.output
    }

    /// The safe action a fault takes on this channel.
    func safeAction(for code: FaultCode) -> SafeAction {
        switch code {
        case .overPressure: return parameters.limits.tripAction
        case .emergencyStop: return .release
        case .sensorRange, .sensorStale, .sensorFrozen: return parameters.sensor.faultAction == .ramp ? .hold : parameters.sensor.faultAction
        case .cannotReachSetpoint: return parameters.limits.saturationAction
        case .nonUniformLoad, .limitSwitch, .restoredStateStale: return .hold
        case .cellShortSuspected: return .ramp
        }
    }

    /// Opens an excursion when a settled, regulated pressure leaves its band; closes it
    /// (one `excursion` event) when the pressure is back in band or regulation ends
    /// by an operator's hold or release.
    private mutating func trackExcursion(now: Double, pressure: Double?, faultFired: Bool) {
        if excursions.open != nil, faultFired { excursions.open!.kind = .fault }
        guard let t = target, t > 0 else { return }
        if excursions.open != nil, mode == .holding || mode == .released {
            closeExcursion(now: now)
            return
        }
        guard let p = pressure else { return }
        let inside = abs(p - t) <= parameters.band * t
        if mode == .regulating && inside { excursions.settledTarget = t }
        if var x = excursions.open {
            if abs(p - x.setpoint) > abs(x.worstError) { x.worstError = p - x.setpoint }
            excursions.open = x
            if inside { closeExcursion(now: now) }
        } else if !inside, excursions.settledTarget == t, mode == .regulating || mode == .tripped {
            excursions.open = ExcursionRecord(start: now, end: nil, setpoint: t, worstError: p - t,
                                              kind: mode == .tripped ? .fault : (authority.isLost ? .saturation : .disturbance))
        }
        if excursions.open != nil, last.readings.altered { excursions.open!.kind = .injected }
    }

    /// Ends the excursion in progress: counted always, an event when it lasted or went
    /// deep enough to matter (or a fault or an injection was behind it).
    private mutating func closeExcursion(now: Double) {
        guard var x = excursions.open else { return }
        x.end = now
        excursions.open = nil
        let significant = (x.duration ?? 0) >= parameters.excursionMinDuration || abs(x.worstError) >= parameters.excursionMinDepth * x.setpoint
            || x.kind == .fault || x.kind == .injected
        excursions.stats.add(x, recorded: significant)
        if significant { events.append(.excursion(x)) }
    }

    /// Clears latched faults that are all recoverable and have been absent for the
    /// sensor's `recoverAfter`, and resumes what the channel was doing (regulation at the
    /// same target, bumplessly from the held output; a program paused by the trip).
    /// At most `maxRecoveriesPerHour`; past that the faults stay latched for an operator.
    private mutating func stepRecovery(now: Double, pressure: Double?) {
        let s = parameters.sensor
        guard mode == .tripped, s.recoverAfter > 0, faults.isLatched,
              faults.records.allSatisfy({ $0.code.isRecoverable && !$0.active }), pressure != nil else {
            recovery.goodSince = nil
            return
        }
        let since = recovery.goodSince ?? now
        recovery.goodSince = since
        guard now - since >= s.recoverAfter else { return }
        let codes = faults.records.map(\.code)
        recovery.times.removeAll { now - $0 >= 3600 }
        guard recovery.times.count < s.maxRecoveriesPerHour else {
            if !recovery.budgetReported {
                recovery.budgetReported = true
                events.append(.recovery(state: .latched, codes: codes, detail: "\(recovery.times.count) automatic recoveries in the last hour (max_recoveries_per_hour = \(s.maxRecoveriesPerHour)); acknowledge to resume"))
            }
            return
        }
        recovery.times.append(now)
        recovery.count += 1
        recovery.budgetReported = false
        recovery.goodSince = nil
        let raised = faults.records.map(\.raisedAt).min() ?? now
        _ = faults.acknowledge()
        setRampingToSafe(false)
        pid.setManual(output: pid.output)
        changeMode(.holding, reason: "recovered: \(codes.map(\.rawValue).joined(separator: ","))")
        let before = recovery.beforeTrip
        recovery.beforeTrip = nil
        var resumed = "holding"
        if before?.mode == .regulating, let t = before?.target {
            applyTarget(min(max(t, parameters.limits.minSetpoint), parameters.limits.maxSetpoint), ramp: nil, resuming: true)
            resumed = "regulating at \(fmt3(t)) MPa"
            if before?.programRunning == true, var r = program, r.state == .paused {
                r.resume(); program = r
                events.append(.programState(name: r.program.name, state: .resumed, detail: "after automatic recovery"))
            }
        } else if before?.mode == .released {
            pid.setManual(output: parameters.safeOutput)
            changeMode(.released, reason: "recovered")
            resumed = "released"
        }
        events.append(.recovery(state: .resumed, codes: codes, detail: "signal good for \(fmt3(s.recoverAfter)) s after \(fmt3(now - raised)) s; \(resumed) (\(recovery.times.count) of \(s.maxRecoveriesPerHour) recoveries this hour)"))
    }

    /// The state to publish after a tick.
    /// The pressure ``state`` publishes (nil while the force sample is stale or invalid),
    /// and the last readings: for the loop's per-tick log window, without building the
    /// whole published state every tick.
    public var publishedPressure: Double? {
        last.stale ? nil : last.readings.force.flatMap { f in f.value.isFinite ? parameters.pressure(fromForce: f.value) : nil }
    }
    public var lastReadings: ChannelReadings { last.readings }

    public var state: ChannelState {
        let p = publishedPressure
        var inBand = false
        if mode == .regulating, let t = target, let p, t > 0 { inBand = abs(p - t) <= parameters.band * t }
        return ChannelState(
            name: parameters.name, mode: mode, time: last.time ?? 0, target: target,
            workingSetpoint: mode == .regulating ? pid.workingSetpoint : nil,
            pressure: p, force: last.readings.force?.value, stale: last.stale,
            output: pid.output, terms: pid.lastTerms, faults: faults.records,
            inBand: inBand, readings: last.readings, ramp: pid.parameters.setpointRampRate, program: program,
            limits: parameters.limits, cellArea: parameters.cellArea,
            control: ControlStatus(
                strategy: parameters.strategy, autotune: autotuner, lastTune: lastTune, memory: adapter?.memory,
                kp: pid.parameters.kp, ki: pid.parameters.ki, feedforwardGain: parameters.feedforward.gain * gainScale,
                activeControl: activeControl, sweep: sweep, lastSweep: lastSweep, supervisor: supervisor,
                setpointOwner: arbiter.owner),
            excursion: excursions.open, excursions: excursions.stats, authorityLost: authority.isLost, recoveries: recovery.count)
    }

    /// What is computing the output now: the experiment swapped in, else the regulator.
    public var activeControl: ActiveControl { experiment?.active ?? regulator.active }
}

/// Time, reading and pressure of a channel's last tick.
private struct LastTick {
    var time: Double?
    /// The last valid pressure, MPa.
    var pressure: Double?
    var readings = ChannelReadings()
    /// The last force sample was older than the staleness limit.
    var stale = false
}

/// Since when the regulated pressure has been outside the band with the output
/// saturated, and the last output that held the pressure in band.
private struct SaturationWatch {
    var since: Double?
    var lastGoodOutput: Double?
}

/// Excursions out of the band: the target the pressure has settled in band at since it
/// was last set (excursions are judged only then: the approach to a new setpoint is not
/// one), the excursion in progress and the counts.
private struct ExcursionTracker {
    var settledTarget: Double?
    var open: ExcursionRecord?
    var stats = ExcursionStats()
}

/// Automatic recovery: what the channel was doing when the trip fired, since when every
/// latched fault has been recoverable and absent, and the recent recoveries.
private struct RecoveryState {
    var beforeTrip: (mode: ChannelMode, target: Double?, programRunning: Bool)?
    var goodSince: Double?
    var times: [Double] = []
    var count = 0
    var budgetReported = false
}

/// Frozen-sensor check: the value of the present run of identical samples, when it
/// began, the last sample time seen and how many fresh samples it has had.
private struct FrozenSensorWatch {
    private var run: (value: Double, since: Double, lastTime: Double, count: Int)?

    /// `sensor_frozen` when fresh samples (their time moves) have carried exactly the
    /// same value for `frozenAfter` seconds while the sensor is loaded.
    mutating func check(_ f: Sample?, now: Double, sensor: SensorLimits) -> String? {
        let limit = sensor.frozenAfter
        guard limit > 0, let f, f.value.isFinite, now - f.time <= sensor.staleAfter,
              abs(f.value) > 0.01 * sensor.maxForce else { run = nil; return nil }
        guard var r = run, r.value == f.value else {
            run = (f.value, f.time, f.time, 1)
            return nil
        }
        if f.time > r.lastTime { r.lastTime = f.time; r.count += 1 }
        run = r
        guard r.lastTime - r.since >= limit, r.count >= 5 else { return nil }
        return "force reading stuck at exactly \(fmt3(f.value)) N for \(Int(r.lastTime - r.since)) s over \(r.count) fresh samples"
    }
}

/// (max − min) / mean of several load cells' forces; nil for fewer than two or a
/// non-positive mean.
public func nonUniformity(_ forces: [Double]?) -> Double? {
    guard let f = forces, f.count >= 2 else { return nil }
    let mean = f.reduce(0, +) / Double(f.count)
    guard mean > 0 else { return nil }
    return (f.max()! - f.min()!) / mean
}
