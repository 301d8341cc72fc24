import PressNumerics
/// The setpoint's task sources that follow a plan: pressure programs, sweeps and the
/// impedance-aware supervisor.
extension SetpointSources {
    // MARK: Programs

    /// Loads and starts `p`; it takes over the setpoint from the next tick (a sweep or
    /// autotune in progress is cancelled, a pending resume dropped).
    mutating func startProgram(_ p: PressureProgram, faults: FaultLatch, _ core: inout ChannelCore) throws(CommandRejection) {
        if let e = p.validationErrors(limits: core.parameters.limits).first { throw .invalidProgram(step: e.step, message: e.message) }
        guard core.mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        let grant = try take(.program, faults: faults)
        for owner in grant.ended { stop(owner, reason: "program \(p.name) started", &core) }
        // A ramp step starts where the pressure is: on a regulating channel its setpoint;
        // otherwise (released, holding) the measured pressure, since an old setpoint
        // still stored would let a ramp to it "finish" at once — never below zero (a
        // released load cell's noise).
        let measured = core.last.pressure.map { max(0, $0) }
        let fromSetpoint = core.mode == .regulating ? core.target != nil : measured == nil
        let start = fromSetpoint ? core.target : measured
        program = ProgramRunner(program: p, startSetpoint: start,
                                origin: start.map { ProgramOrigin(pressure: $0, source: fromSetpoint ? .setpoint : .measuredPressure, mode: core.mode) })
        core.events.append(.programState(name: p.name, state: .started, detail: "\(p.steps.count) steps"))
        core.events.append(.programStep(name: p.name, index: 0, step: p.steps[0].name))
        handedOver(grant.handover, &core)
    }

    mutating func pauseProgram(_ core: inout ChannelCore) throws(CommandRejection) {
        guard var r = program, r.state == .running else { throw .noProgram("no running program to pause") }
        r.pause(); program = r
        core.events.append(.programState(name: r.program.name, state: .paused, detail: "step \(r.index + 1)"))
    }

    /// Resumes a paused program; on the next tick the channel regulates at the program's
    /// setpoint again, also from `holding` or `released`.
    mutating func resumeProgram(_ core: inout ChannelCore) throws(CommandRejection) {
        guard var r = program, r.state == .paused else { throw .noProgram("no paused program to resume") }
        r.resume(); program = r
        core.events.append(.programState(name: r.program.name, state: .resumed, detail: "step \(r.index + 1)"))
    }

    /// Stops the program; the channel keeps regulating at the present setpoint.
    mutating func stopProgram(_ core: inout ChannelCore) throws(CommandRejection) {
        guard let r = program else { throw .noProgram("no program loaded") }
        program = nil
        core.events.append(.programState(name: r.program.name, state: .stopped, detail: "step \(r.index + 1)"))
        ended(.program, &core)
    }

    /// Restores a program persisted before a restart (paused when it was paused). It owns
    /// the setpoint as it did (a pending resume still restarts regulation first).
    mutating func restoreProgram(_ r: ProgramRunner, _ core: inout ChannelCore) {
        var r = r
        r.rebase()
        program = r
        if r.state == .running || r.state == .paused { handedOver(arbiter.restore(.program), &core) }
    }

    mutating func pauseProgramForSafety(_ why: String, _ core: inout ChannelCore) {
        guard var r = program, r.state == .running else { return }
        r.pause(); program = r
        core.events.append(.programState(name: r.program.name, state: .paused, detail: why))
    }

    /// One tick of a running program: it owns the setpoint while running (and starts
    /// regulation when it was loaded on a released or holding channel).
    mutating func stepProgram(now: Double, readings: ChannelReadings, _ core: inout ChannelCore) {
        guard var r = program, r.state == .running else { return }
        let entered = r.update(now: now) { name in name == "charging" ? readings.charging : nil }
        for i in entered { core.events.append(.programStep(name: r.program.name, index: i, step: r.program.steps[i].name)) }
        if r.state == .finished { core.events.append(.programState(name: r.program.name, state: .finished, detail: "")) }
        if r.state == .failed { core.events.append(.programState(name: r.program.name, state: .failed, detail: r.failure ?? "")) }
        program = r.state == .finished ? nil : r
        // A program resumed after a hold, a release or an acknowledged trip takes the
        // channel back into regulation at its setpoint (resuming is the operator's
        // decision that it should run again).
        if let sp = r.setpoint, sp != core.target || core.mode != .regulating || (r.ramp ?? core.parameters.pid.setpointRampRate) != core.ramp {
            applyTarget(clamped(sp, core), ramp: r.ramp, &core)
        }
        if r.state == .finished || r.state == .failed { ended(.program, &core) }
    }

    // MARK: Critical-stack-pressure sweep

    /// Starts a sweep: it takes over the setpoint, steps through its levels, measures
    /// interfacial resistance at each and fits the knee. Refused unless the channel is
    /// regulating with nothing else owning the setpoint, and the levels inside its limits.
    mutating func startSweep(_ s: SweepSettings, faults: FaultLatch, _ core: inout ChannelCore) throws(CommandRejection) {
        if let e = s.validationErrors(limits: core.parameters.limits).first { throw .unsafe("\(e.field) \(e.message)") }
        guard core.mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard core.mode == .regulating else { throw .unsafe("the channel must be regulating (set a setpoint first)") }
        try mayTake(.sweep, faults: faults)
        // No resistance yet (pushes or an analyser's first result still to come): the
        // sweep starts anyway; each level waits for its measurements and the sweep aborts
        // when they do not come within the measurement timeout.
        let waiting = core.last.readings.interfacialResistance == nil
        let grant = try take(.sweep, faults: faults)
        sweep = CSPSweep(settings: s)
        applyTarget(s.from, ramp: nil, &core)
        let path = s.direction == .downUp ? "\(fmt3(s.from)) → \(fmt3(s.to)) → \(fmt3(s.from)) MPa" : "\(fmt3(s.from)) → \(fmt3(s.to)) MPa"
        core.events.append(.sweep(state: .started, detail: "\(path) in \(s.levels.count) levels, \(fmt0(s.dwell)) s each"
                                      + (s.sweepProtocol == .dynamic ? ", dynamic (growth > \(fmt3(s.growthThresholdPerHour * 100)) %/h)" : "")
                                      + (waiting ? "; no interfacial-resistance measurement yet: each level waits for pushed or analysed results" : "")))
        handedOver(grant.handover, &core)
    }

    /// Ends a running sweep; what was measured is kept and fitted, and the setpoint goes
    /// to the sweep's return pressure.
    mutating func cancelSweep(reason: String, now: Double?, _ core: inout ChannelCore) {
        guard var s = sweep else { return }
        s.abort(now: now ?? core.last.time ?? 0, reason: reason)
        finishSweep(s, &core)
    }

    private mutating func finishSweep(_ s: CSPSweep, _ core: inout ChannelCore) {
        sweep = nil
        defer { ended(.sweep, &core) }
        guard let r = s.result else { return }
        lastSweep = r
        let back = s.settings.returnTo ?? s.settings.from
        if core.mode == .regulating { applyTarget(clamped(back, core), ramp: nil, &core) }
        core.events.append(.sweepFinished(r))
    }

    /// One tick of a running sweep (regulating only; leaving regulation ends it).
    mutating func stepSweep(now: Double, pressure: Double?, readings: ChannelReadings, _ core: inout ChannelCore) {
        guard var s = sweep else { return }
        guard core.mode == .regulating else { return cancelSweep(reason: "channel left regulation (\(core.mode.rawValue))", now: now, &core) }
        let before = s.points.count
        let band = core.parameters.band
        let inBand = pressure.map { p in Band.contains(p, target: s.setpoint, band: band) } ?? false
        let area = core.parameters.cellArea
        s.update(now: now, pressure: pressure, inBand: inBand && core.target == s.setpoint,
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
            core.events.append(.sweep(state: .level, detail: "\(fmt3(p.pressure)) MPa\(leg): \(fmt3(p.resistance)) ± \(fmt3(p.resistanceSD)) Ω·cm² (\(m)\(j)\(g))"))
        }
        if s.finished { return finishSweep(s, &core) }
        sweep = s
        if core.target != s.setpoint { applyTarget(s.setpoint, ramp: nil, &core) }
    }

    // MARK: Impedance-aware supervisor

    /// Stops the supervisor moving the setpoint (it keeps learning).
    mutating func lockSupervisor(reason: String, _ core: inout ChannelCore) throws(CommandRejection) {
        guard var s = supervisor else { throw .unsafe("the impedance-aware supervisor is not enabled on this channel") }
        guard !s.locked else { return }
        s.lock(reason); supervisor = s
        core.events.append(.supervisor("locked (\(reason))"))
        ended(.supervisor, &core)
    }

    /// Lets the supervisor move the setpoint again.
    mutating func unlockSupervisor(_ core: inout ChannelCore) throws(CommandRejection) {
        guard var s = supervisor else { throw .unsafe("the impedance-aware supervisor is not enabled on this channel") }
        guard s.locked else { return }
        s.unlock(now: core.last.time ?? 0); supervisor = s
        supervisorConverged = false
        core.events.append(.supervisor("unlocked"))
        handedOver(try? take(.supervisor, faults: FaultLatch()).handover, &core)
    }

    /// Restores the supervisor's learned map and lock persisted before a restart (when
    /// its settings have not changed).
    mutating func restoreSupervisor(_ saved: ImpedanceSupervisor?, _ core: inout ChannelCore) {
        guard let saved, let s = supervisor, saved.settings == s.settings else { return }
        supervisor = saved
        syncSupervisorFallback(&core)
    }

    /// Makes the arbiter's fallback the supervisor exactly while one is enabled and unlocked.
    mutating func syncSupervisorFallback(_ core: inout ChannelCore) {
        if let s = supervisor, !s.locked { handedOver(try? take(.supervisor, faults: FaultLatch()).handover, &core) } else { ended(.supervisor, &core) }
    }

    /// A reload: a supervisor whose settings changed starts afresh.
    mutating func reconfigureSupervisor(_ settings: SupervisorSettings?, _ core: inout ChannelCore) {
        guard settings != supervisor?.settings else { return }
        supervisor = settings.map { ImpedanceSupervisor(settings: $0) }
        syncSupervisorFallback(&core)
    }

    mutating func stepSupervisor(now: Double, pressure: Double?, readings: ChannelReadings, _ core: inout ChannelCore) {
        // It learns whenever the channel regulates with nothing else owning the setpoint
        // (also while locked: then it only does not move the setpoint).
        guard var s = supervisor, core.mode == .regulating, let t = core.target, arbiter.task == nil, !arbiter.safety else { return }
        let band = core.parameters.band
        let inBand = pressure.map { Band.contains($0, target: t, band: band) } ?? false
        let d = s.update(now: now, setpoint: t, pressure: pressure, inBand: inBand, resistance: readings.interfacialResistance)
        supervisor = s
        if let d {
            supervisorConverged = false
            applyTarget(clamped(d.setpoint, core), ramp: nil, &core)
            core.events.append(.supervisor("setpoint \(fmt3(t)) → \(fmt3(d.setpoint)) MPa: \(d.reason)"))
        } else if s.convergedAt != nil && !supervisorConverged {
            supervisorConverged = true
            core.events.append(.supervisor(s.lastReason ?? "converged"))
        }
    }
}
