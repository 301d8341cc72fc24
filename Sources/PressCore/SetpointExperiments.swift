/// The relay autotune: a setpoint task that swaps its control law in over the regulating
/// one and hands it back when it ends (done, failed, cancelled).
extension SetpointSources {
    /// Starts a relay experiment at the present setpoint. Refused unless the channel is
    /// regulating, settled in band, with nothing else owning the setpoint (program,
    /// sweep), and the excursion fits in its limits.
    mutating func startAutotune(_ s: AutotuneSettings, faults: FaultLatch, _ core: inout ChannelCore) throws(CommandRejection) {
        if let e = s.validationErrors().first { throw .unsafe("\(e.field) \(e.message)") }
        guard core.mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        guard core.mode == .regulating, let t = core.target else { throw .unsafe("the channel must be regulating at the pressure to tune at") }
        try mayTake(.autotune, faults: faults)
        let l = core.parameters.limits
        guard let p = core.last.pressure, abs(p - t) <= core.parameters.band * t, core.law.pid.workingSetpoint.map({ abs($0 - t) < 1e-9 }) ?? true else {
            throw .unsafe("the pressure must be settled in band at the setpoint \(fmt3(t)) MPa")
        }
        guard t + s.maxExcursion * 1.5 < l.trip else {
            throw .unsafe("setpoint \(fmt3(t)) MPa + 1.5 × excursion \(fmt3(s.maxExcursion)) MPa reaches the trip level \(fmt3(l.trip)) MPa")
        }
        guard t - s.maxExcursion >= l.minSetpoint else {
            throw .unsafe("setpoint \(fmt3(t)) MPa − excursion \(fmt3(s.maxExcursion)) MPa is below the minimum setpoint \(fmt3(l.minSetpoint)) MPa")
        }
        let grant = try take(.autotune, faults: faults)
        let inverse = core.parameters.feedforward.gain > 0 ? core.law.modelGain : (core.lastTune.map { 1 / $0.processGain } ?? 0)
        let tuner = RelayAutotuner(settings: s, setpoint: t, bias: core.output, inverseGain: inverse,
                                   outputMin: core.parameters.pid.outputMin, outputMax: core.parameters.pid.outputMax, limits: l)
        core.law = AutotuneLaw(tuner: tuner, regulator: core.law)
        core.holdHere()
        core.events.append(.autotune(state: .started, detail: "at \(fmt3(t)) MPa, excursion ±\(fmt3(s.maxExcursion)) MPa, rule \(s.rule.rawValue)"))
        handedOver(grant.handover, &core)
    }

    /// Stops a running experiment; the output returns to where it started and the old
    /// gains stay. When the channel has left regulation (a fault's safe action, hold,
    /// release) the output is left where that put it: the experiment's bias is restored
    /// only while regulating.
    mutating func cancelAutotune(reason: String, _ core: inout ChannelCore) {
        guard let x = core.law as? AutotuneLaw else { return }
        let t = x.tuner
        core.law = x.regulator
        if core.mode == .regulating {
            core.hold(at: t.bias)
            core.law.pid.setAutomatic(measurement: core.last.pressure ?? t.setpoint, feedforward: core.totalFeedforward(t.setpoint))
        }
        core.events.append(.autotune(state: .cancelled, detail: reason))
        ended(.autotune, &core)
    }

    /// The experiment ended by itself (done or failed): the regulating law takes over
    /// again, bumplessly from the experiment's bias, with the new gains when it is done.
    /// Returns the output.
    mutating func endAutotune(pressure: Double, _ core: inout ChannelCore) -> Double {
        guard let x = core.law as? AutotuneLaw else { return core.output }
        let tuner = x.tuner
        core.law = x.regulator
        switch tuner.phase {
        case .done(let r):
            let ramp = core.ramp
            core.adoptTune(r)
            core.law = ControlLaws.make(.init(parameters: core.parameters, lastTune: core.lastTune, memory: nil, pid: core.law.pid))
            core.hold(at: r.bias)
            core.law.pid.setParameters(core.lawPID(ramp: ramp))
            core.law.pid.setAutomatic(measurement: pressure, feedforward: core.totalFeedforward(core.target ?? r.setpoint))
            core.events.append(.autotune(state: .done, detail: "rule \(r.rule.rawValue): kp \(fmt3(r.kp)) ki \(fmt3(r.ki)); Ku \(fmt3(r.ultimateGain)) Pu \(fmt3(r.ultimatePeriod)) s; K \(r.processGain) MPa/unit, τ \(fmt3(r.timeConstant)) s, θ \(fmt3(r.deadTime)) s"))
        case .failed(let why):
            core.hold(at: tuner.bias)
            core.law.pid.setAutomatic(measurement: pressure, feedforward: core.totalFeedforward(tuner.setpoint))
            core.events.append(.autotune(state: .failed, detail: why))
        default:
            break
        }
        ended(.autotune, &core)
        return core.output
    }
}

extension ChannelCore {
    /// Makes `r`'s gains and static inverse the channel's base.
    mutating func adoptTune(_ r: AutotuneResult) {
        lastTune = r
        parameters.pid.kp = r.kp
        parameters.pid.ki = r.ki
        parameters.pid.kd = 0
        parameters.feedforward = r.feedforward
    }
}
