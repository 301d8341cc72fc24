/// Restoring a channel after a restart, and reloading its configuration.
extension ChannelController {
    /// Restores the state persisted before a restart. Call before the first tick, on a
    /// controller created with the actuator's present output.
    /// - Latched faults come back latched (their conditions are judged again on the
    ///   first tick) and the channel stays tripped until acknowledged.
    /// - A channel that was regulating resumes on the first valid measurement, from the
    ///   present output and with the ramp starting at the measured pressure: no spike.
    public mutating func restore(mode saved: ChannelMode, target: Double?, ramp: Double?, faults savedFaults: [FaultRecord]) {
        if !savedFaults.isEmpty {
            safety.faults.restore(savedFaults)
            core.changeMode(.tripped, reason: "faults latched before restart")
            core.target = target
            // The trip's safe action again: a restart moments after a trip must not leave
            // the actuator where the crash found it (half way back, or still pressing).
            // `ramp` needs a measurement, which there is not yet: it holds.
            let p = core.parameters
            let action = savedFaults.filter { !$0.code.isAlarmOnly }.map { SafetyPolicy.action(of: $0, p) }.reduce(SafeAction.hold) { $0.combined(with: $1) }
            if action == .release { core.holdSafe() }
            return
        }
        switch saved {
        case .regulating: if let target { sources.restoreResume(target: target, ramp: ramp, faults: faults, &core) }
        case .holding, .tripped: core.changeMode(.holding, reason: "restored")
        case .released:
            core.holdSafe()
            core.changeMode(.released, reason: "restored")
        }
        core.target = target
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
        let ramp = core.ramp
        let memory = adapter?.memory
        // Everything fed forward before the change, to keep the output continuous: a new
        // feedforward gain, strategy or adaptive scale is absorbed by the integrator.
        let before = core.target.map(core.totalFeedforward)
        core.parameters = p
        if let t = core.lastTune { core.adoptTune(t) }
        // The regulating law anew from the table (an experiment in progress keeps running
        // over the new one).
        let experiment = core.law as? AutotuneLaw
        let regulator = ControlLaws.make(.init(parameters: core.parameters, lastTune: core.lastTune, memory: p.strategy == .pid ? nil : memory,
                                               pid: core.law.pid))
        if var x = experiment { x.regulator = regulator; core.law = x } else { core.law = regulator }
        checks.reconfigure(core.parameters)
        sources.reconfigureSupervisor(p.supervisor, &core)
        core.law.pid.setParameters(core.lawPID(ramp: core.target != nil ? (ramp ?? p.pid.setpointRampRate) : p.pid.setpointRampRate))
        if let t = core.target {
            let clamped = min(max(t, p.limits.minSetpoint), p.limits.maxSetpoint)
            if clamped != t {
                // Recorded, never silent: the new limits moved the setpoint.
                core.target = clamped
                core.events.append(.setpointChanged(target: clamped, ramp: core.ramp))
                core.events.append(.configuration("setpoint \(fmt3(t)) MPa is outside the reloaded limits \(fmt3(p.limits.minSetpoint))…\(fmt3(p.limits.maxSetpoint)) MPa: moved to \(fmt3(clamped)) MPa"))
            }
        }
        if let b = before, let t = core.target, core.law.pid.mode == .automatic { core.law.pid.shiftIntegral(by: b - core.totalFeedforward(t)) }
    }
}
