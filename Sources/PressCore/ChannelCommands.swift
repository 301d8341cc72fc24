/// Everything that can be asked of a channel between ticks: the one vocabulary the loop,
/// the socket and pressctl map onto (``ChannelController/apply(_:)``).
public enum ChannelCommand: Sendable {
    /// Regulate to `mpa`, ramping at `ramp` MPa/s (nil: the configured ramp).
    case set(mpa: Double, ramp: Double?)
    case hold, release, acknowledge
    case programStart(PressureProgram), programPause, programResume, programStop
    /// Start a relay autotune (nil: the channel's configured settings), or cancel one.
    case autotune(AutotuneSettings?), autotuneCancel
    case sweep(SweepSettings), sweepCancel
    case supervisorLock(Bool)
    /// A configuration reload.
    case reconfigure(ChannelParameters)
}

/// What a command changed, for the reply.
public enum ChannelReply: Sendable {
    case mode(ChannelMode)
    case setpoint(mpa: Double, ramp: Double?)
    case program(ProgramRunner?)
    case acknowledged(cleared: [FaultCode], remaining: [FaultCode])
}

extension ChannelController {
    /// Applies one command; a refusal names why.
    @discardableResult
    public mutating func apply(_ command: ChannelCommand) throws(CommandRejection) -> ChannelReply {
        switch command {
        case .set(let mpa, let ramp):
            try setTarget(mpa, ramp: ramp)
            return .setpoint(mpa: mpa, ramp: core.ramp)
        case .hold: try hold()
        case .release: release()
        case .acknowledge:
            let before = faults.records.map(\.code)
            let remaining = acknowledge().map(\.code)
            return .acknowledged(cleared: before.filter { !remaining.contains($0) }, remaining: remaining)
        case .programStart(let p): try startProgram(p); return .program(program)
        case .programPause: try sources.pauseProgram(&core); return .program(program)
        case .programResume: try resumeProgram(); return .program(program)
        case .programStop: try sources.stopProgram(&core); return .program(program)
        case .autotune(let s): try startAutotune(s)
        case .autotuneCancel:
            guard autotuner != nil else { throw .unsafe("no autotune is running") }
            sources.cancelAutotune(reason: "operator cancelled", &core)
        case .sweep(let s): try startSweep(s)
        case .sweepCancel:
            guard sweep != nil else { throw .unsafe("no sweep is running") }
            sources.cancelSweep(reason: "operator cancelled", now: nil, &core)
        case .supervisorLock(let locked): if locked { try lockSupervisor() } else { try sources.unlockSupervisor(&core) }
        case .reconfigure(let p): reconfigure(p)
        }
        return .mode(mode)
    }

    /// Regulate to `mpa`, optionally ramping at `ramp` MPa/s (else the configured ramp).
    /// The operator takes the setpoint from whoever owns it.
    public mutating func setTarget(_ mpa: Double, ramp: Double? = nil) throws(CommandRejection) {
        let l = core.parameters.limits
        guard mpa.isFinite, mpa >= l.minSetpoint, mpa <= l.maxSetpoint else { throw .outOfRange(value: mpa, min: l.minSetpoint, max: l.maxSetpoint) }
        if let ramp, !RampRate.valid(ramp) { throw .invalidRamp(ramp) }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        try sources.setTarget(mpa, ramp: ramp, faults: faults, &core)
    }

    /// Freeze the actuator at its present output.
    public mutating func hold() throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        sources.dropPendingResume(&core)
        sources.pauseProgramForSafety("operator hold", &core)
        core.holdHere()
        core.changeMode(.holding, reason: "operator hold")
    }

    /// Drive the actuator to its safe output. Always allowed, also when tripped.
    public mutating func release() {
        sources.setRampingToSafe(false, &core)
        sources.dropPendingResume(&core)
        sources.pauseProgramForSafety("operator release", &core)
        core.holdSafe()
        if mode != .tripped { core.changeMode(.released, reason: "operator release") }
    }

    /// Clears the faults whose conditions have gone. When none remain a tripped channel
    /// goes to `holding` (the actuator stays where the safe action left it; regulating
    /// again takes a new setpoint). Returns the faults that stay latched.
    @discardableResult
    public mutating func acknowledge() -> [FaultRecord] {
        let before = faults.records.map(\.code)
        let remaining = safety.faults.acknowledge()
        let cleared = before.filter { c in !remaining.contains { $0.code == c } }
        checks.acknowledged(cleared)
        core.events.append(.faultsAcknowledged(cleared: cleared, remaining: remaining.map(\.code)))
        if remaining.isEmpty && mode == .tripped {
            safety.recovery.beforeTrip = nil
            safety.recovery.goodSince = nil
            sources.setRampingToSafe(false, &core)
            core.holdHere()
            core.changeMode(.holding, reason: "faults acknowledged")
        }
        return remaining
    }

    public mutating func startProgram(_ p: PressureProgram) throws(CommandRejection) {
        if let e = p.validationErrors(limits: core.parameters.limits).first { throw .invalidProgram(step: e.step, message: e.message) }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        try sources.startProgram(p, faults: faults, &core)
    }

    /// Resumes a paused program (refused while tripped).
    public mutating func resumeProgram() throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        try sources.resumeProgram(&core)
    }

    /// Starts a relay experiment at the present setpoint. Refused unless the channel is
    /// regulating, settled in band, with nothing else owning the setpoint, and the
    /// excursion fits in its limits.
    public mutating func startAutotune(_ settings: AutotuneSettings? = nil) throws(CommandRejection) {
        let s = settings ?? core.parameters.autotune
        if let e = s.validationErrors().first { throw .unsafe("\(e.field) \(e.message)") }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard mode == .regulating, let t = target else { throw .unsafe("the channel must be regulating at the pressure to tune at") }
        try sources.mayTake(.autotune, faults: faults)
        let l = core.parameters.limits
        guard let p = core.last.pressure, abs(p - t) <= core.parameters.band * t, pid.workingSetpoint.map({ abs($0 - t) < 1e-9 }) ?? true else {
            throw .unsafe("the pressure must be settled in band at the setpoint \(fmt3(t)) MPa")
        }
        guard t + s.maxExcursion * 1.5 < l.trip else {
            throw .unsafe("setpoint \(fmt3(t)) MPa + 1.5 × excursion \(fmt3(s.maxExcursion)) MPa reaches the trip level \(fmt3(l.trip)) MPa")
        }
        guard t - s.maxExcursion >= l.minSetpoint else {
            throw .unsafe("setpoint \(fmt3(t)) MPa − excursion \(fmt3(s.maxExcursion)) MPa is below the minimum setpoint \(fmt3(l.minSetpoint)) MPa")
        }
        try sources.startAutotune(s, at: t, faults: faults, &core)
    }

    public mutating func cancelAutotune(reason: String = "operator cancelled") { sources.cancelAutotune(reason: reason, &core) }

    /// Starts a critical-stack-pressure sweep. Refused unless the channel is regulating
    /// with nothing else owning the setpoint, and the levels inside its limits.
    public mutating func startSweep(_ s: SweepSettings) throws(CommandRejection) {
        if let e = s.validationErrors(limits: core.parameters.limits).first { throw .unsafe("\(e.field) \(e.message)") }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard mode == .regulating else { throw .unsafe("the channel must be regulating (set a setpoint first)") }
        try sources.mayTake(.sweep, faults: faults)
        try sources.startSweep(s, faults: faults, &core)
    }

    public mutating func cancelSweep(reason: String = "operator cancelled", now: Double? = nil) { sources.cancelSweep(reason: reason, now: now, &core) }

    public mutating func lockSupervisor(reason: String = "operator") throws(CommandRejection) { try sources.lockSupervisor(reason: reason, &core) }
    public mutating func unlockSupervisor() throws(CommandRejection) { try sources.unlockSupervisor(&core) }
    public mutating func pauseProgram() throws(CommandRejection) { try sources.pauseProgram(&core) }
    public mutating func stopProgram() throws(CommandRejection) { try sources.stopProgram(&core) }
}
