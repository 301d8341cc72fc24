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
    /// Hold the stack thickness at this many µm (nil: as measured now).
    case gap(Double?)
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
        case .gap(let t): try holdGap(t)
        }
        return .mode(mode)
    }

    /// Regulate to `mpa`, optionally ramping at `ramp` MPa/s (else the configured ramp).
    /// The operator takes the setpoint from whoever owns it.
    public mutating func setTarget(_ mpa: Double, ramp: Double? = nil) throws(CommandRejection) {
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

    /// Clears the faults whose conditions have gone (see ``SafetyPolicy/acknowledge(core:sources:checks:)``).
    @discardableResult
    public mutating func acknowledge() -> [FaultRecord] { safety.acknowledge(core: &core, sources: &sources, checks: &checks) }

    public mutating func startProgram(_ p: PressureProgram) throws(CommandRejection) { try sources.startProgram(p, faults: faults, &core) }

    /// Resumes a paused program (refused while tripped).
    public mutating func resumeProgram() throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        try sources.resumeProgram(&core)
    }

    /// Starts a relay experiment at the present setpoint (see ``SetpointSources/startAutotune(_:faults:_:)``).
    public mutating func startAutotune(_ settings: AutotuneSettings? = nil) throws(CommandRejection) {
        try sources.startAutotune(settings ?? core.parameters.autotune, faults: faults, &core)
    }

    public mutating func cancelAutotune(reason: String = "operator cancelled") { sources.cancelAutotune(reason: reason, &core) }

    /// Starts a critical-stack-pressure sweep (see ``SetpointSources/startSweep(_:faults:_:)``).
    public mutating func startSweep(_ s: SweepSettings) throws(CommandRejection) { try sources.startSweep(s, faults: faults, &core) }

    public mutating func cancelSweep(reason: String = "operator cancelled", now: Double? = nil) { sources.cancelSweep(reason: reason, now: now, &core) }

    public mutating func lockSupervisor(reason: String = "operator") throws(CommandRejection) { try sources.lockSupervisor(reason: reason, &core) }
    public mutating func unlockSupervisor() throws(CommandRejection) { try sources.unlockSupervisor(&core) }
    public mutating func pauseProgram() throws(CommandRejection) { try sources.pauseProgram(&core) }
    public mutating func stopProgram() throws(CommandRejection) { try sources.stopProgram(&core) }
}
