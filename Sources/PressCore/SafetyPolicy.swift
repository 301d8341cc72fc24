/// What a channel does about faults: latches what the checks report, takes the safe
/// action of those that fire (release beats ramp beats hold), runs a `ramp` action down to
/// the safe pressure, and resumes by itself when faults that clear on their own have
/// cleared (within an hourly budget).
public struct SafetyPolicy: Sendable {
    public internal(set) var faults = FaultLatch()
    /// Where a `ramp` safe action takes the pressure: the safe pressure, or lower when
    /// the channel was already below it (a ramp to safety never raises the pressure).
    var rampGoal: Double?
    var recovery = RecoveryState()

    /// Latches the conditions present and takes the safe action of those that fired.
    /// Returns true when a fault fired.
    mutating func latch(_ present: [FaultCode: FaultCondition], now: Double, pressure: Double?,
                        core: inout ChannelCore, sources: inout SetpointSources, checks: inout FaultChecks) -> Bool {
        let allFired = faults.update(present: present, now: now)
        // An alarm is raised once: one that comes and goes while still latched is not
        // raised again (it takes no action to repeat).
        for r in allFired where r.code.isAlarmOnly && r.raisedAt == now { core.events.append(.faultRaised(r, action: .hold)) }
        let fired = allFired.filter { !$0.code.isAlarmOnly }
        guard !fired.isEmpty else { return false }
        var action = SafeAction.hold
        for r in fired {
            let a = present[r.code]?.action ?? .hold
            action = action.combined(with: a)
            core.events.append(.faultRaised(r, action: a))
        }
        // Ramping needs a measurement: with a sensor fault among the causes, hold.
        if action == .ramp && fired.contains(where: { $0.code.isSensorFault }) { action = .hold }
        if core.mode != .tripped { recovery.beforeTrip = (core.mode, core.target, sources.program?.state == .running) }
        if action != .ramp { sources.setRampingToSafe(false, &core) }
        switch action {
        case .release: core.holdSafe()
        case .ramp:
            var p = core.law.pid.parameters
            p.setpointRampRate = core.parameters.limits.safeRamp
            core.law.pid.setParameters(p)
            // From the measured pressure down, at the safe ramp rate, to the safe pressure
            // or to what the channel was asking for if that is lower: a ramp to safety
            // never raises the pressure (`output` also pulls the ramp down to the reading
            // when the trip came from a glitch).
            let measured = pressure ?? core.last.pressure ?? 0
            let l = core.parameters.limits
            rampGoal = ([l.safePressure, core.target, core.law.pid.workingSetpoint].compactMap { $0 }).min()
            if fired.contains(where: { $0.code == .cellShortSuspected }) {
                // A suspected short goes to its own safe pressure, and never above the
                // pressure measured now (more pressure drives lithium further in).
                let shortSafe = core.parameters.shortDetection?.safePressure ?? l.safePressure
                rampGoal = ([shortSafe, core.target, core.law.pid.workingSetpoint, measured].compactMap { $0 }).min()
            }
            if core.law.pid.mode == .manual { core.law.pid.setAutomatic(measurement: measured) }
            else { core.law.pid.resetWorkingSetpoint(to: measured) }
            sources.setRampingToSafe(true, &core)
        case .hold:
            // A check that knows where the output should go (a channel that cannot reach
            // its setpoint goes back to the output that last held it, so that a returning
            // supply does not overshoot) says so; other holds freeze the output where it is.
            if let to = present[fired[0].code]?.holdOutput, fired.allSatisfy({ present[$0.code]?.holdOutput != nil }) { core.hold(at: to) }
            else { core.holdHere() }
        }
        sources.pauseProgramForSafety(fired.map(\.code.rawValue).joined(separator: ","), &core)
        if core.excursions.open != nil { core.excursions.open!.kind = .fault }
        core.authority.reset()
        checks.tripped()
        core.changeMode(.tripped, reason: fired.map(\.code.rawValue).joined(separator: ","))
        return true
    }

    /// Clears the faults whose conditions have gone. When none remain a tripped channel
    /// goes to `holding` (the actuator stays where the safe action left it; regulating
    /// again takes a new setpoint). Returns the faults that stay latched.
    mutating func acknowledge(core: inout ChannelCore, sources: inout SetpointSources, checks: inout FaultChecks) -> [FaultRecord] {
        let before = faults.records.map(\.code)
        let remaining = faults.acknowledge()
        let cleared = before.filter { c in !remaining.contains { $0.code == c } }
        checks.acknowledged(cleared)
        core.events.append(.faultsAcknowledged(cleared: cleared, remaining: remaining.map(\.code)))
        if remaining.isEmpty && core.mode == .tripped {
            recovery.beforeTrip = nil
            recovery.goodSince = nil
            sources.setRampingToSafe(false, &core)
            core.holdHere()
            core.changeMode(.holding, reason: "faults acknowledged")
        }
        return remaining
    }

    /// Latched faults restored after a restart: the channel comes up tripped and takes
    /// their safe action again (a restart moments after a trip must not leave the
    /// actuator where the crash found it; `ramp` needs a measurement, which there is not
    /// yet: it holds).
    mutating func restore(_ saved: [FaultRecord], target: Double?, core: inout ChannelCore) {
        faults.restore(saved)
        core.changeMode(.tripped, reason: "faults latched before restart")
        core.target = target
        let p = core.parameters
        let action = saved.filter { !$0.code.isAlarmOnly }.map { Self.action(of: $0, p) }.reduce(SafeAction.hold) { $0.combined(with: $1) }
        if action == .release { core.holdSafe() }
    }

    /// The output while a `ramp` safe action takes the pressure down; nil when none runs.
    /// It stops (holds) when the measurement is lost.
    mutating func rampOutput(pressure: Double?, dt: Double, core: inout ChannelCore, sources: inout SetpointSources) -> Double? {
        guard core.mode == .tripped && sources.arbiter.safety else { return nil }
        guard let pressure, core.law.pid.mode == .automatic else {
            sources.setRampingToSafe(false, &core)
            core.holdHere()
            return core.output
        }
        // A ramp that starts from an over-reading (a glitch, not a real over-pressure)
        // sits far above the true pressure once the reading is true again: the loop would
        // drive the cell up to it. The ramp never runs more than a band above the measured
        // pressure; it goes on down from there.
        let goal = rampGoal ?? core.parameters.limits.safePressure
        if let w = core.law.pid.workingSetpoint, w - pressure > core.parameters.band * max(pressure, goal) {
            core.law.pid.resetWorkingSetpoint(to: max(pressure, goal))
        }
        return core.law.pid.update(setpoint: goal, measurement: pressure, dt: dt)
    }

    /// Clears latched faults that are all recoverable and have been absent for the
    /// sensor's `recoverAfter`, and resumes what the channel was doing (regulation at the
    /// same target, bumplessly from the held output; a program paused by the trip). At
    /// most `maxRecoveriesPerHour`; past that the faults stay latched for an operator.
    mutating func stepRecovery(now: Double, pressure: Double?, core: inout ChannelCore, sources: inout SetpointSources) {
        let s = core.parameters.sensor
        guard core.mode == .tripped, s.recoverAfter > 0, faults.isLatched,
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
                core.events.append(.recovery(state: .latched, codes: codes, detail: "\(recovery.times.count) automatic recoveries in the last hour (max_recoveries_per_hour = \(s.maxRecoveriesPerHour)); acknowledge to resume"))
            }
            return
        }
        recovery.times.append(now)
        recovery.count += 1
        recovery.budgetReported = false
        recovery.goodSince = nil
        let raised = faults.records.map(\.raisedAt).min() ?? now
        _ = faults.acknowledge()
        sources.setRampingToSafe(false, &core)
        core.holdHere()
        core.changeMode(.holding, reason: "recovered: \(codes.map(\.rawValue).joined(separator: ","))")
        let before = recovery.beforeTrip
        recovery.beforeTrip = nil
        var resumed = "holding"
        if before?.mode == .regulating, let t = before?.target {
            sources.applyTarget(sources.clamped(t, core), ramp: nil, resuming: true, &core)
            resumed = "regulating at \(fmt3(t)) MPa"
            if before?.programRunning == true, var r = sources.program, r.state == .paused {
                r.resume(); sources.program = r
                core.events.append(.programState(name: r.program.name, state: .resumed, detail: "after automatic recovery"))
            }
        } else if before?.mode == .released {
            core.holdSafe()
            core.changeMode(.released, reason: "recovered")
            resumed = "released"
        }
        core.events.append(.recovery(state: .resumed, codes: codes, detail: "signal good for \(fmt3(s.recoverAfter)) s after \(fmt3(now - raised)) s; \(resumed) (\(recovery.times.count) of \(s.maxRecoveriesPerHour) recoveries this hour)"))
    }

    /// The safe action a restored record takes again (records from before the action
    /// was kept: the action its code takes with these parameters).
    static func action(of r: FaultRecord, _ p: ChannelParameters) -> SafeAction {
        if let a = r.action { return a }
        switch r.code {
        case .overPressure: return p.limits.tripAction
        case .cannotReachSetpoint: return p.limits.saturationAction
        case _ where r.code.isSensorFault: return p.sensor.faultAction == .ramp ? .hold : p.sensor.faultAction
        default: return r.code.kind?.defaultAction ?? .hold
        }
    }
}

/// Automatic recovery: what the channel was doing when the trip fired, since when every
/// latched fault has been recoverable and absent, and the recent recoveries.
struct RecoveryState: Sendable {
    var beforeTrip: (mode: ChannelMode, target: Double?, programRunning: Bool)?
    var goodSince: Double?
    var times: [Double] = []
    var count = 0
    var budgetReported = false
}
