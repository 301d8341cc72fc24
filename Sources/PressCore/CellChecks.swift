extension FaultCode {
    /// The cell's temperature above the channel's `max_temperature_c`.
    public static let overTemperature = FaultCode("over_temperature")
    /// The cell voltage collapsed, or its noise rose, at steady current: a soft short
    /// (lithium through the electrolyte, a crack) is suspected. The channel ramps down to
    /// its short-safe pressure (never up) and stays latched until acknowledged; the
    /// message carries the evidence (voltages, window, current, stack pressure).
    public static let cellShortSuspected = FaultCode("cell_short_suspected")
    /// The emergency-stop input is active.
    public static let emergencyStop = FaultCode("emergency_stop")
    /// A travel limit switch is active: the actuator reached the end of its travel.
    public static let limitSwitch = FaultCode("limit_switch")
    /// The load cells under one plate disagree: (max − min) / mean above the alarm
    /// threshold (tilt, a misaligned stack). An alarm: latched and reported, but the
    /// channel keeps regulating.
    public static let nonUniformLoad = FaultCode("non_uniform_load")
    /// Regulating, the output at its limit, and the pressure outside the band for longer
    /// than the saturation timeout: the actuator cannot reach the setpoint (e.g. the air
    /// supply is too low).
    public static let cannotReachSetpoint = FaultCode("cannot_reach_setpoint")
}

/// Settings of the over-temperature check (`[channels.X.limits] max_temperature_c`).
public struct TemperatureLimit: Sendable, Equatable, Codable {
    /// The cell temperature that trips the channel, °C.
    public var maximum: Double
    /// What the trip does.
    public var action: SafeAction
    public init(maximum: Double, action: SafeAction = .release) { self.maximum = maximum; self.action = action }
}

/// Over-temperature: the cell's measured temperature above its limit trips the channel on
/// the same tick, with its safe action. A stale temperature (older than the force's
/// `stale_after`, or the pushed signal's own limit) is not judged.
struct OverTemperatureCheck: FaultCheck {
    static let kinds = [FaultKind(code: .overTemperature, defaultAction: .release)]
    private var limit: TemperatureLimit

    init?(_ p: ChannelParameters) {
        guard let l = p.temperatureLimit else { return nil }
        limit = l
    }

    mutating func reconfigure(_ p: ChannelParameters) { if let l = p.temperatureLimit { limit = l } }

    func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        guard let t = c.readings.temperature, t.value.isFinite, t.value > limit.maximum else { return }
        let max = limit.maximum
        present[.overTemperature] = FaultCondition(.overTemperature, action: limit.action) {
            "cell temperature \(fmt3(t.value)) °C above the limit \(fmt3(max)) °C"
        }
    }
}

/// Soft-short detection on the cell voltage (``ShortDetector``): judged on distinct,
/// fresh voltage measurements at steady current — not again once suspected (the first
/// evidence is the one that matters, and a flickering short must not fire a fault every
/// few ticks) until acknowledged, and not on a released channel.
struct SoftShortCheck: FaultCheck {
    static let kinds = [FaultKind(code: .cellShortSuspected, defaultAction: .ramp)]
    private(set) var detector: ShortDetector

    init?(_ p: ChannelParameters) {
        guard let s = p.shortDetection, s.enabled else { return nil }
        detector = ShortDetector(settings: s)
    }

    mutating func reconfigure(_ p: ChannelParameters) {
        if let s = p.shortDetection, s.enabled, s != detector.settings { detector = ShortDetector(settings: s) }
    }

    mutating func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        guard c.mode != .released, !c.latched.contains(.cellShortSuspected),
              let e = detector.update(now: c.now, voltage: c.readings.voltage, current: c.readings.current, pressure: c.pressure ?? c.lastPressure,
                                      resistance: c.readings.interfacialResistance, area: c.parameters.cellArea) else { return }
        present[.cellShortSuspected] = FaultCondition(.cellShortSuspected, action: .ramp) { e.message }
    }

    /// A new window and noise baseline after a suspected short was acknowledged.
    mutating func acknowledged(_ cleared: [FaultCode]) { if cleared.contains(.cellShortSuspected) { detector.reset() } }
}

/// The emergency-stop input and the travel limit switch, when wired.
struct DigitalInputCheck: FaultCheck {
    static let kinds = [FaultKind(code: .emergencyStop, defaultAction: .release), FaultKind(code: .limitSwitch)]
    init(_ p: ChannelParameters) {}

    func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        if c.readings.emergencyStop == true {
            present[.emergencyStop] = FaultCondition(.emergencyStop, action: .release) { "emergency-stop input active" }
        }
        if c.readings.limitSwitch == true {
            let output = c.output
            present[.limitSwitch] = FaultCondition(.limitSwitch, action: .hold) { "travel limit switch active (output \(fmt3(output)))" }
        }
    }
}

/// Load cells under one plate that disagree: an alarm, judged only while the plate
/// carries a meaningful load (near zero the cells' noise and offsets alone differ by tens
/// of percent of their mean).
struct NonUniformLoadCheck: FaultCheck {
    static let kinds = [FaultKind(code: .nonUniformLoad, alarmOnly: true)]
    init?(_ p: ChannelParameters) { guard p.nonUniformityAlarm != nil else { return nil } }

    func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        let p = c.parameters
        guard let limit = p.nonUniformityAlarm, let f = c.readings.force?.value, f >= p.nonUniformityMinForce ?? 0.05 * p.sensor.maxForce,
              let u = nonUniformity(c.readings.loadCellForces), u > limit else { return }
        present[.nonUniformLoad] = FaultCondition(.nonUniformLoad, action: .hold) {
            "load cells differ by \(fmt3(u * 100)) % of their mean (alarm at \(fmt3(limit * 100)) %)"
        }
    }
}

/// `cannot_reach_setpoint`: regulating, the output held by its limit, the pressure
/// outside the band, for longer than the saturation timeout. It remembers the last
/// output that held the pressure in band: where its `hold` puts the output back, so a
/// returning air supply does not overshoot.
struct SaturationCheck: FaultCheck {
    static let kinds = [FaultKind(code: .cannotReachSetpoint)]
    private var since: Double?
    private(set) var lastGoodOutput: Double?
    init(_ p: ChannelParameters) {}

    mutating func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        let p = c.parameters
        let hold = lastGoodOutput ?? c.neededOutput ?? p.safeOutput
        if c.mode == .regulating, let t = c.target, let pressure = c.pressure {
            let outside = abs(pressure - t) > p.band * t
            if !outside { lastGoodOutput = c.output; since = nil }
            else if c.outputSaturated { since = since ?? c.now }
            else { since = nil }
            if let s = since, c.now - s >= p.limits.saturationTimeout {
                let now = c.now, output = c.output
                present[.cannotReachSetpoint] = FaultCondition(.cannotReachSetpoint, action: p.limits.saturationAction, holdOutput: lastGoodOutput ?? c.neededOutput ?? p.safeOutput) {
                    "pressure \(fmt3(pressure)) MPa, setpoint \(fmt3(t)) MPa: output at its limit (\(fmt3(output))) for \(fmt0(now - s)) s"
                }
            }
        } else if c.mode != .tripped {
            since = nil
        } else if c.latched.contains(.cannotReachSetpoint), let t = c.target, let pressure = c.pressure, abs(pressure - t) > 2 * p.band * t {
            // Tripped by it: its cause is present for as long as the pressure stays far
            // from the setpoint at the held output — beyond twice the band, since friction
            // or hysteresis alone can leave a held output just outside it (an
            // acknowledgement must not clear it while the supply is still short).
            present[.cannotReachSetpoint] = FaultCondition(.cannotReachSetpoint, action: p.limits.saturationAction, holdOutput: hold) {
                "the pressure is still more than twice the band from the setpoint at the held output"
            }
        }
    }

    mutating func tripped() { since = nil }
}

/// (max − min) / mean of several load cells' forces; nil for fewer than two or a
/// non-positive mean.
public func nonUniformity(_ forces: [Double]?) -> Double? {
    guard let f = forces, f.count >= 2 else { return nil }
    let mean = f.reduce(0, +) / Double(f.count)
    guard mean > 0 else { return nil }
    return (f.max()! - f.min()!) / mean
}
