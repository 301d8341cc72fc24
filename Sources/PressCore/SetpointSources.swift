/// Every source of a channel's setpoint, and who owns it now: the operator's target, the
/// resume after a restart, a pressure program, a critical-stack-pressure sweep, the relay
/// autotune, the impedance-aware supervisor and a trip's ramp to safety. The rules of who
/// may take the setpoint from whom are ``SetpointArbiter``'s one table; this component
/// runs the sources and ends what a new owner takes over from.
public struct SetpointSources: Sendable {
    public internal(set) var arbiter: SetpointArbiter
    /// The loaded pressure program.
    public internal(set) var program: ProgramRunner?
    /// The critical-stack-pressure sweep in progress, and the last one's result.
    public internal(set) var sweep: CSPSweep?
    public internal(set) var lastSweep: SweepResult?
    /// The impedance-aware supervisor (nil when not enabled).
    public internal(set) var supervisor: ImpedanceSupervisor?
    var supervisorConverged = false
    /// Set by a restore: regulation resumes on the first valid measurement, bumplessly
    /// from the actuator's present output.
    var pendingResume: (target: Double, ramp: Double?)?

    init(parameters: ChannelParameters) {
        supervisor = parameters.supervisor.map { ImpedanceSupervisor(settings: $0) }
        arbiter = SetpointArbiter(supervisor: supervisor.map { !$0.locked } ?? false)
    }

    /// The relay experiment in progress (the control law swapped in over the regulator).
    func autotuner(_ core: ChannelCore) -> RelayAutotuner? { (core.law as? AutotuneLaw)?.tuner }

    // MARK: Ownership

    /// Takes the setpoint for `requester`, or says why not (as the command error).
    mutating func take(_ requester: SetpointOwner, faults: FaultLatch) throws(CommandRejection) -> SetpointGrant {
        switch arbiter.request(requester) {
        case .success(let g): return g
        case .failure(let why): throw rejection(why, faults)
        }
    }

    /// Throws when `requester` may not take the setpoint now (checked before a command's
    /// own checks; ``take(_:faults:)`` then grants it).
    func mayTake(_ requester: SetpointOwner, faults: FaultLatch) throws(CommandRejection) {
        if case .refuse(let why) = arbiter.rule(for: requester) { throw rejection(why, faults) }
    }

    private func rejection(_ why: SetpointRefusal, _ faults: FaultLatch) -> CommandRejection {
        if case .safetyActive = why { return .faultLatched(faults.records.map(\.code)) }
        return .unsafe(why.message)
    }

    func handedOver(_ h: SetpointHandover?, _ core: inout ChannelCore) {
        if let h { core.events.append(.setpointOwner(h)) }
    }

    /// `owner` ended (finished, cancelled, stopped, locked).
    mutating func ended(_ owner: SetpointOwner, _ core: inout ChannelCore) { handedOver(arbiter.end(owner), &core) }

    /// Stops the work of `owner`, whose setpoint a granted request took.
    mutating func stop(_ owner: SetpointOwner, reason: String, _ core: inout ChannelCore) {
        switch owner {
        case .program:
            program = nil
            core.events.append(.programState(name: "", state: .stopped, detail: reason))
        case .sweep: cancelSweep(reason: reason, now: nil, &core)
        case .autotune: cancelAutotune(reason: reason, &core)
        case .supervisor: try? lockSupervisor(reason: reason + "; unlock to let it move the setpoint again", &core)
        case .resume: pendingResume = nil
        case .operator, .safety: break
        }
    }

    /// Starts or stops a `ramp` safe action's ownership of the setpoint.
    mutating func setRampingToSafe(_ on: Bool, _ core: inout ChannelCore) {
        if on { handedOver(try? take(.safety, faults: FaultLatch()).handover, &core) } else { ended(.safety, &core) }
    }

    /// The task that should own the setpoint by the sources' own state (a debug
    /// cross-check of the arbiter).
    func taskInForce(_ core: ChannelCore) -> SetpointOwner? {
        if core.law is AutotuneLaw { return .autotune }
        if sweep != nil { return .sweep }
        if let r = program, r.state == .running || r.state == .paused { return .program }
        return pendingResume != nil ? .resume : nil
    }

    /// Moves the target and regulates to it; a running autotune is cancelled (a new
    /// setpoint ends the experiment).
    mutating func applyTarget(_ mpa: Double, ramp: Double?, resuming: Bool = false, _ core: inout ChannelCore) {
        if autotuner(core) != nil { cancelAutotune(reason: "new setpoint", &core) }
        core.regulate(at: mpa, ramp: ramp, resuming: resuming)
    }

    func clamped(_ mpa: Double, _ core: ChannelCore) -> Double {
        min(max(mpa, core.parameters.limits.minSetpoint), core.parameters.limits.maxSetpoint)
    }

    /// The targets coming over a control law's horizon: a running program's own
    /// (run ahead on a copy, digital inputs as they read now), else the target in force.
    func preview(now: Double, readings: ChannelReadings, _ core: ChannelCore) -> SetpointPreview {
        let target = core.target ?? 0
        let limits = core.parameters.limits
        guard let r = program, r.state == .running else { return { _, n in [Double](repeating: target, count: n) } }
        let charging = readings.charging
        return { step, n in
            var ahead = r
            var out: [Double] = []
            out.reserveCapacity(n)
            for i in 1...max(1, n) {
                ahead.update(now: now + step * Double(i)) { name in name == "charging" ? charging : nil }
                out.append(min(max(ahead.setpoint ?? target, limits.minSetpoint), limits.maxSetpoint))
            }
            return out
        }
    }

    // MARK: Operator

    /// The operator takes the setpoint from whoever owns it: a program is stopped, a
    /// sweep or autotune cancelled, the supervisor locked, a pending resume dropped.
    mutating func setTarget(_ mpa: Double, ramp: Double?, faults: FaultLatch, _ core: inout ChannelCore) throws(CommandRejection) {
        let l = core.parameters.limits
        guard mpa.isFinite, mpa >= l.minSetpoint, mpa <= l.maxSetpoint else { throw .outOfRange(value: mpa, min: l.minSetpoint, max: l.maxSetpoint) }
        if let ramp, !RampRate.valid(ramp) { throw .invalidRamp(ramp) }
        guard core.mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        let grant = try take(.operator, faults: faults)
        pendingResume = nil // also under a restored program
        for owner in grant.ended { stop(owner, reason: "operator set a setpoint", &core) }
        applyTarget(mpa, ramp: ramp, &core)
        handedOver(grant.handover, &core)
        core.events.append(.setpointChanged(target: mpa, ramp: core.ramp))
    }

    // MARK: Resume after a restart

    /// The mode and target saved before a restart (no fault latched): a channel that was
    /// regulating resumes on the first valid measurement, from the present output and with
    /// the ramp starting at the measured pressure (no spike); one that was released is
    /// released again.
    mutating func restore(mode saved: ChannelMode, target: Double?, ramp: Double?, faults: FaultLatch, _ core: inout ChannelCore) {
        switch saved {
        case .regulating:
            if let target, let grant = try? take(.resume, faults: faults) {
                pendingResume = (target, ramp)
                core.changeMode(.holding, reason: "resuming after restart")
                handedOver(grant.handover, &core)
            }
        case .holding, .tripped, .constantGap: core.changeMode(.holding, reason: "restored")
        case .released:
            core.holdSafe()
            core.changeMode(.released, reason: "restored")
        }
        core.target = target
    }

    /// An operator's hold or release after a restart is a decision about the channel:
    /// the saved target is not resumed behind it later.
    mutating func dropPendingResume(_ core: inout ChannelCore) {
        guard pendingResume != nil else { return }
        pendingResume = nil
        ended(.resume, &core)
    }

    /// The resume saved before a restart, on the first valid measurement.
    mutating func stepResume(pressure: Double?, _ core: inout ChannelCore) {
        guard let r = pendingResume, pressure != nil, core.mode == .holding else { return }
        pendingResume = nil
        applyTarget(clamped(r.target, core), ramp: r.ramp, &core)
        core.events.append(.setpointChanged(target: r.target, ramp: core.ramp))
        ended(.resume, &core)
    }
}
