import PressNumerics
/// What every component of a channel reads, and the output stage they act through.
///
/// The channel is a pipeline of small components (``ChannelController``): fault checks,
/// the safety policy, the setpoint's sources, the control law, the output stage and the
/// observers. They share this: the parameters in force, the mode, the target, the control
/// law (whose PID is the output register's tracker), the last tick, the observers and the
/// events to report. Only components change it, each through the methods here.
public struct ChannelCore: Sendable {
    public internal(set) var parameters: ChannelParameters
    public internal(set) var mode: ChannelMode = .released
    /// The target the control law regulates to (nil until one was set).
    public internal(set) var target: Double?
    /// The control law in force: the regulating law, or an experiment swapped in over it.
    var law: any ControlLaw
    /// The last successful autotune; its gains replace the configured ones.
    public internal(set) var lastTune: AutotuneResult?
    var last = LastTick()
    var events: [ChannelEvent] = []
    /// Excursions out of the band, and loss of actuator authority.
    var excursions = ExcursionTracker()
    public internal(set) var authority = AuthorityMonitor()
    /// Added to the output before limits every tick. For benchmarks (an oracle that
    /// knows the true disturbance); the daemon leaves it at zero.
    var externalFeedforward = 0.0
    /// Constant-gap regulation, while the channel holds the stack thickness.
    var gap: ConstantGap?

    init(parameters: ChannelParameters, initialOutput: Double?) {
        self.parameters = parameters
        var pid = PIDController(parameters: parameters.pid, initialOutput: initialOutput ?? parameters.safeOutput)
        pid.setManual(output: initialOutput ?? parameters.safeOutput)
        law = ControlLaws.make(.init(parameters: parameters, lastTune: nil, memory: nil, pid: pid))
        if let o = initialOutput, o != parameters.safeOutput { mode = .holding }
    }

    mutating func changeMode(_ new: ChannelMode, reason: String) {
        guard new != mode else { return }
        events.append(.modeChanged(from: mode, to: new, reason: reason))
        mode = new
        if new != .constantGap { gap = nil }
    }

    // MARK: The output stage

    /// The output applied.
    var output: Double { law.pid.output }

    /// Holds the output at `value` (manual): hold, release, a trip's safe action. The PID
    /// tracks it, so that regulation takes over from it without a bump.
    mutating func hold(at value: Double) { law.pid.setManual(output: value) }
    /// Holds the output where it is.
    mutating func holdHere() { law.pid.setManual(output: law.pid.output) }
    /// Holds the output at the actuator's safe output.
    mutating func holdSafe() { law.pid.setManual(output: parameters.safeOutput) }

    /// Everything fed forward at `target`: the law's and the external. Entering
    /// regulation accounts for all of it, so that the first regulated output equals the
    /// present one.
    func totalFeedforward(_ target: Double) -> Double { law.feedforward(at: target) + externalFeedforward }

    /// PID parameters in force with ramp `ramp`.
    func lawPID(ramp: Double?) -> PIDParameters { law.pidParameters(ramp: ramp) }

    /// The setpoint ramp in force, MPa/s (nil: steps).
    var ramp: Double? { law.pid.parameters.setpointRampRate }

    /// Regulates to `mpa` (ramping at `ramp`, else the configured ramp), entering
    /// regulation bumplessly if needed.
    /// - Parameter resuming: regulation resumes at the same target after an automatic
    ///   recovery: the pressure had settled there, and an excursion that began with the
    ///   fault goes on until the pressure is back in band.
    mutating func regulate(at mpa: Double, ramp: Double?, resuming: Bool = false) {
        if !resuming && (mpa != target || mode != .regulating) {
            // A new approach (a new target, or regulation starting again): not settled.
            excursions.settledTarget = nil
            authority.reset()
            if excursions.open != nil {
                if excursions.open!.kind == .disturbance { excursions.open!.kind = .setpointChange }
                closeExcursion(now: last.time ?? 0)
            }
        }
        let p = lawPID(ramp: ramp ?? parameters.pid.setpointRampRate)
        if p != law.pid.parameters { law.pid.setParameters(p) }
        target = mpa
        if mode != .regulating {
            law.pid.setAutomatic(measurement: last.pressure ?? 0, feedforward: totalFeedforward(mpa))
            changeMode(.regulating, reason: "setpoint \(fmt3(mpa)) MPa")
        }
    }

    /// Ends the excursion in progress: counted always, an event when it lasted or went
    /// deep enough to matter (or a fault or an injection was behind it).
    mutating func closeExcursion(now: Double) {
        if let x = excursions.close(now: now, parameters: parameters) { events.append(.excursion(x)) }
    }
}

/// Time, reading and pressure of a channel's last tick.
struct LastTick: Sendable {
    var time: Double?
    /// The last valid pressure, MPa.
    var pressure: Double?
    var readings = ChannelReadings()
    /// The last force sample was older than the staleness limit.
    var stale = false
}

/// Excursions out of the band (an observer): the target the pressure has settled in band
/// at since it was last set (excursions are judged only then: the approach to a new
/// setpoint is not one), the excursion in progress and the counts.
struct ExcursionTracker: Sendable {
    var settledTarget: Double?
    var open: ExcursionRecord?
    var stats = ExcursionStats()

    /// Follows this tick; returns true when the open excursion must close now (the
    /// channel left regulation by an operator's hold or release, or the pressure is back).
    mutating func track(now: Double, pressure: Double?, target: Double?, mode: ChannelMode, band: Double,
                        faultFired: Bool, authorityLost: Bool, altered: Bool) -> Bool {
        if open != nil, faultFired { open!.kind = .fault }
        guard let t = target, t > 0 else { return false }
        if open != nil, mode == .holding || mode == .released { return true }
        guard let p = pressure else { return false }
        let inside = Band.contains(p, target: t, band: band)
        if mode == .regulating && inside { settledTarget = t }
        var close = false
        if var x = open {
            if abs(p - x.setpoint) > abs(x.worstError) { x.worstError = p - x.setpoint }
            open = x
            close = inside
        } else if !inside, settledTarget == t, mode == .regulating || mode == .tripped {
            open = ExcursionRecord(start: now, end: nil, setpoint: t, worstError: p - t,
                                   kind: mode == .tripped ? .fault : (authorityLost ? .saturation : .disturbance))
        }
        if open != nil, altered, !close { open!.kind = .injected }
        return close
    }

    /// Ends the open excursion; returns it when it is worth an event.
    mutating func close(now: Double, parameters: ChannelParameters) -> ExcursionRecord? {
        guard var x = open else { return nil }
        x.end = now
        open = nil
        let significant = (x.duration ?? 0) >= parameters.excursionMinDuration || abs(x.worstError) >= parameters.excursionMinDepth * x.setpoint
            || x.kind == .fault || x.kind == .injected
        stats.add(x, recorded: significant)
        return significant ? x : nil
    }
}

extension ChannelCore {
    /// A reload: the regulating law anew from the table with what it learned (an
    /// experiment in progress keeps running over it), `components` told of it, the PID's
    /// parameters set and everything fed forward kept continuous (a new feedforward gain,
    /// strategy or adaptive scale is absorbed by the integrator).
    mutating func reconfigure(_ p: ChannelParameters, memory: ControllerMemory?, components: (inout ChannelCore) -> Void) {
        let ramp = self.ramp
        let before = target.map(totalFeedforward)
        parameters = p
        if let t = lastTune { adoptTune(t) }
        let regulator = ControlLaws.make(.init(parameters: parameters, lastTune: lastTune, memory: p.strategy == .pid ? nil : memory, pid: law.pid))
        if var x = law as? AutotuneLaw { x.regulator = regulator; law = x } else { law = regulator }
        components(&self)
        law.pid.setParameters(lawPID(ramp: target != nil ? (ramp ?? p.pid.setpointRampRate) : p.pid.setpointRampRate))
        if let t = target {
            let clamped = min(max(t, p.limits.minSetpoint), p.limits.maxSetpoint)
            if clamped != t {
                // Recorded, never silent: the new limits moved the setpoint.
                target = clamped
                events.append(.setpointChanged(target: clamped, ramp: self.ramp))
                events.append(.configuration("setpoint \(fmt3(t)) MPa is outside the reloaded limits \(fmt3(p.limits.minSetpoint))…\(fmt3(p.limits.maxSetpoint)) MPa: moved to \(fmt3(clamped)) MPa"))
            }
        }
        if let b = before, let t = target, law.pid.mode == .automatic { law.pid.shiftIntegral(by: b - totalFeedforward(t)) }
    }
}
