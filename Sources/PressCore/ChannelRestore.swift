/// Restoring a channel after a restart, and reloading its configuration.
extension ChannelController {
    /// Restores the state persisted before a restart. Call before the first tick, on a
    /// controller created with the actuator's present output.
    /// - Latched faults come back latched (their conditions are judged again on the
    ///   first tick) and the channel stays tripped until acknowledged.
    /// - A channel that was regulating resumes on the first valid measurement, from the
    ///   present output and with the ramp starting at the measured pressure: no spike.
    public mutating func restore(mode saved: ChannelMode, target: Double?, ramp: Double?, faults savedFaults: [FaultRecord]) {
        if !savedFaults.isEmpty { return safety.restore(savedFaults, target: target, core: &core) }
        sources.restore(mode: saved, target: target, ramp: ramp, faults: faults, &core)
    }

    /// Restores an autotune result and learned memory persisted before a restart.
    public mutating func restoreLearning(tune: AutotuneResult?, memory: ControllerMemory?) {
        if let tune { core.adoptTune(tune) }
        core.law = ControlLaws.make(.init(parameters: core.parameters, lastTune: core.lastTune, memory: memory, pid: core.law.pid))
        core.law.pid.setParameters(core.lawPID(ramp: core.ramp))
    }

    /// Restores the last sweep result persisted before a restart.
    public mutating func restoreSweep(_ r: SweepResult?) { sources.lastSweep = r }
    public mutating func restoreProgram(_ r: ProgramRunner) { sources.restoreProgram(r, &core) }
    public mutating func restoreSupervisor(_ saved: ImpedanceSupervisor?) { sources.restoreSupervisor(saved, &core) }

    /// Replaces every parameter (configuration reload): gains change bumplessly, new
    /// limits apply from the next tick. A target now outside the limits is clamped.
    public mutating func reconfigure(_ p: ChannelParameters) {
        core.reconfigure(p, memory: adapter?.memory) { core in
            checks.reconfigure(core.parameters)
            sources.reconfigureSupervisor(p.supervisor, &core)
        }
    }
}
