/// Gains of constant-gap regulation (`[channels.X.gap]`), output units per µm of stack
/// thickness error (and per µm·s).
public struct GapSettings: Sendable, Equatable, Codable {
    public var kp: Double
    public var ki: Double
    public init(kp: Double, ki: Double) { self.kp = kp; self.ki = ki }

    /// Defaults that hold a few µm of breathing on the shipped fixtures with a loop time
    /// constant of a few seconds: a spring fixture's screw moves ~140 µm per µm of stack
    /// (a 0.2 N/µm spring against a cell of ~27 N/µm), a pneumatic channel's regulator
    /// ~0.01 MPa per µm (a 63 mm bore against the same cell).
    public static func defaults(pneumatic: Bool) -> GapSettings {
        pneumatic ? GapSettings(kp: 0, ki: 0.01) : GapSettings(kp: 0, ki: 50)
    }

    public func validationErrors() -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(kp.isFinite && kp >= 0) { e.append(("kp", "must be a finite number ≥ 0")) }
        if !(ki.isFinite && ki > 0) { e.append(("ki", "must be a finite number > 0")) }
        return e
    }
}

/// Constant-gap (constant-volume) regulation: the channel holds the measured stack
/// thickness — the thickness gauge's reading — and the pressure is whatever the cell
/// develops against it (what the field's fixed-gap cells measure, against which
/// constant-pressure cells are compared). More output compresses the stack, so the loop
/// acts directly: a thicker reading asks for more output. Without a gauge reading it
/// holds the actuator where it was (the actuator's position is the gap then). Trips stay
/// in force: the fault checks judge every tick whatever the mode.
public struct ConstantGap: Sendable {
    /// The thickness held, µm (nil: no gauge; the actuator is held).
    public let target: Double?
    private var pid: PIDController

    /// - Parameters:
    ///   - limits: the channel's output limits and rate (its PID parameters).
    ///   - output: the output when the mode starts (it starts from there, bumplessly).
    init(target: Double?, settings: GapSettings, limits: PIDParameters, output: Double, thickness: Double?) {
        self.target = target
        pid = PIDController(parameters: PIDParameters(kp: settings.kp, ki: settings.ki, outputMin: limits.outputMin, outputMax: limits.outputMax,
                                                      outputRateLimit: limits.outputRateLimit, action: .direct),
                            initialOutput: output)
        pid.setManual(output: output)
        if target != nil { pid.setAutomatic(measurement: thickness ?? target!) }
    }

    /// The output for this tick; the reading must be fresh (younger than `staleAfter`),
    /// else the output is held.
    mutating func update(thickness: Sample?, now: Double, dt: Double, staleAfter: Double) -> Double {
        guard let t = target, let g = thickness, g.value.isFinite, now - g.time <= staleAfter else { return pid.output }
        return pid.update(setpoint: t, measurement: g.value, dt: dt)
    }
}

extension ChannelController {
    /// Holds the stack thickness at `thickness` µm (nil: as measured now; without a gauge,
    /// the actuator where it is) and records the pressure the cell develops. The operator
    /// takes the setpoint (a program is stopped, a sweep or autotune cancelled). Refused
    /// while tripped; `set` returns to pressure regulation bumplessly.
    public mutating func holdGap(_ thickness: Double? = nil) throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        let now = core.last.time ?? 0, staleAfter = core.parameters.sensor.staleAfter
        let reading = core.last.readings.thickness.flatMap { g in now - g.time <= staleAfter && g.value.isFinite ? g.value : nil }
        if thickness != nil && reading == nil { throw .unsafe("no fresh stack-thickness reading on this channel: without a gauge, 'gap' holds the actuator where it is (give no thickness)") }
        if let t = thickness, !(t.isFinite && t > 0) { throw .unsafe("a stack thickness must be a positive number of µm") }
        let grant = try sources.take(.operator, faults: faults)
        sources.pendingResume = nil
        for owner in grant.ended { sources.stop(owner, reason: "operator held the gap", &core) }
        if sources.autotuner(core) != nil { sources.cancelAutotune(reason: "operator held the gap", &core) }
        core.closeExcursion(now: core.last.time ?? 0)
        core.authority.reset()
        core.holdHere()
        let target = thickness ?? reading
        core.gap = ConstantGap(target: target, settings: core.parameters.gap, limits: core.law.pid.parameters, output: core.output, thickness: reading)
        core.target = nil
        sources.handedOver(grant.handover, &core)
        core.changeMode(.constantGap, reason: target.map { "stack thickness held at \(fmt3($0)) µm" } ?? "actuator held (no thickness gauge)")
    }
}
