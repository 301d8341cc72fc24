/// A measured value and the monotonic time at which the sensor produced it.
public struct Sample: Sendable, Equatable, Codable {
    public var value: Double
    /// Monotonic seconds (the same clock the loop uses).
    public var time: Double
    public init(value: Double, time: Double) { self.value = value; self.time = time }
}

/// What the backend read for one channel in one tick. Auxiliary signals are optional:
/// not every rig measures them.
public struct ChannelReadings: Sendable, Equatable {
    /// Total force on the cell, N. `nil` when the sensor has never delivered.
    public var force: Sample?
    /// Cell temperature, °C.
    public var temperature: Sample?
    /// Cell current, mA (positive = charging).
    public var current: Sample?
    /// Interfacial resistance, Ω·cm².
    public var interfacialResistance: Sample?

    public init(force: Sample? = nil, temperature: Sample? = nil, current: Sample? = nil, interfacialResistance: Sample? = nil) {
        self.force = force; self.temperature = temperature
        self.current = current; self.interfacialResistance = interfacialResistance
    }
}

/// A static inverse of the plant: actuator output ≈ gain × setpoint + offset.
/// For a pneumatic cylinder: gain = area_cell / area_bore, offset = preload / area_bore.
public struct Feedforward: Sendable, Equatable, Codable {
    public var gain: Double
    public var offset: Double
    public init(gain: Double = 0, offset: Double = 0) { self.gain = gain; self.offset = offset }
    public func callAsFunction(_ setpoint: Double) -> Double { gain * setpoint + offset }
}

/// Everything the control core needs to know about one channel.
public struct ChannelParameters: Sendable, Equatable {
    public var name: String
    /// Active cell area, cm². Stack pressure = force / area.
    public var cellArea: Double
    public var pid: PIDParameters
    public var feedforward: Feedforward
    public var limits: PressureLimits
    public var sensor: SensorLimits
    /// Actuator output of the vented / backed-off state.
    public var safeOutput: Double
    /// Half-width of the "in band" flag as a fraction of the setpoint (0.05 = ±5 %).
    public var band: Double

    public init(name: String, cellArea: Double, pid: PIDParameters, feedforward: Feedforward = .init(),
                limits: PressureLimits, sensor: SensorLimits, safeOutput: Double, band: Double = 0.05) {
        self.name = name; self.cellArea = cellArea; self.pid = pid; self.feedforward = feedforward
        self.limits = limits; self.sensor = sensor; self.safeOutput = safeOutput; self.band = band
    }

    /// Converts a force in N to a stack pressure in MPa on this channel's cell.
    public func pressure(fromForce newtons: Double) -> Double { newtons / (cellArea * 100) }
    /// Converts a stack pressure in MPa to the force in N on this channel's cell.
    public func force(fromPressure mpa: Double) -> Double { mpa * cellArea * 100 }
}

/// The operating state of a channel.
public enum ChannelMode: String, Sendable, Codable {
    /// Actuator at its safe output; nothing is regulated. The state at start-up.
    case released
    /// Actuator frozen where it is; nothing is regulated.
    case holding
    /// Closed loop on the setpoint.
    case regulating
    /// A fault fired; its safe action was taken. Stays until acknowledged.
    case tripped
}

/// Why a command was refused. Each case carries enough to name the problem.
public enum CommandRejection: Error, Sendable, Equatable {
    case outOfRange(value: Double, min: Double, max: Double)
    case faultLatched([FaultCode])
    case invalidRamp(Double)
}

/// Something worth recording that happened in a tick.
public enum ChannelEvent: Sendable, Equatable {
    case modeChanged(from: ChannelMode, to: ChannelMode, reason: String)
    case faultRaised(FaultRecord, action: SafeAction)
    case faultsAcknowledged(cleared: [FaultCode], remaining: [FaultCode])
    case setpointChanged(target: Double, ramp: Double?)
}

/// The published state of a channel after a tick.
public struct ChannelState: Sendable, Equatable {
    public var name: String
    public var mode: ChannelMode
    public var time: Double
    /// Operator's target, MPa (nil until one was set).
    public var target: Double?
    /// Ramped setpoint the PID is chasing, MPa.
    public var workingSetpoint: Double?
    /// Latest stack pressure, MPa (nil without a valid force sample).
    public var pressure: Double?
    public var force: Double?
    /// True when the force sample is older than the staleness limit.
    public var stale: Bool
    public var output: Double
    public var terms: PIDTerms
    public var faults: [FaultRecord]
    public var inBand: Bool
    public var readings: ChannelReadings
}

/// One channel's control logic: sensor checks, trips, mode machine and PID.
///
/// Pure and deterministic: it is fed readings and a monotonic time, it returns the
/// actuator output. The runtime calls ``step(now:readings:)`` once per tick and applies
/// commands between ticks.
public struct ChannelController: Sendable {
    public private(set) var parameters: ChannelParameters
    public private(set) var mode: ChannelMode = .released
    public private(set) var target: Double?
    public private(set) var pid: PIDController
    public private(set) var faults = FaultLatch()
    private var lastStep: Double?
    private var lastPressure: Double?
    private var lastReadings = ChannelReadings()
    private var lastStale = false
    private var events: [ChannelEvent] = []

    /// - Parameter initialOutput: the actuator's present output (read back from the
    ///   hardware, or its safe output), so the first tick does not move it.
    public init(parameters: ChannelParameters, initialOutput: Double? = nil) {
        self.parameters = parameters
        self.pid = PIDController(parameters: parameters.pid, initialOutput: initialOutput ?? parameters.safeOutput)
        if initialOutput == nil { self.pid.setManual(output: parameters.safeOutput) }
    }

    /// Takes the events produced since the last call.
    public mutating func drainEvents() -> [ChannelEvent] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    private mutating func changeMode(_ new: ChannelMode, reason: String) {
        guard new != mode else { return }
        events.append(.modeChanged(from: mode, to: new, reason: reason))
        mode = new
    }

    // MARK: Commands

    /// Regulate to `mpa`, optionally ramping at `ramp` MPa/s (else the configured ramp).
    public mutating func setTarget(_ mpa: Double, ramp: Double? = nil) throws(CommandRejection) {
        let l = parameters.limits
        guard mpa.isFinite, mpa >= l.minSetpoint, mpa <= l.maxSetpoint else {
            throw .outOfRange(value: mpa, min: l.minSetpoint, max: l.maxSetpoint)
        }
        if let ramp, !(ramp > 0 && ramp.isFinite) { throw .invalidRamp(ramp) }
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        var p = parameters.pid
        p.setpointRampRate = ramp ?? parameters.pid.setpointRampRate
        if p != pid.parameters { pid.setParameters(p) }
        target = mpa
        events.append(.setpointChanged(target: mpa, ramp: p.setpointRampRate))
        if mode != .regulating {
            pid.setAutomatic(measurement: lastPressure ?? 0, feedforward: parameters.feedforward(mpa))
            changeMode(.regulating, reason: "setpoint \(mpa) MPa")
        }
    }

    /// Freeze the actuator at its present output.
    public mutating func hold() throws(CommandRejection) {
        guard mode != .tripped else { throw .faultLatched(faults.records.map(\.code)) }
        pid.setManual(output: pid.output)
        changeMode(.holding, reason: "operator hold")
    }

    /// Drive the actuator to its safe output. Always allowed, also when tripped.
    public mutating func release() {
        pid.setManual(output: parameters.safeOutput)
        if mode != .tripped { changeMode(.released, reason: "operator release") }
    }

    /// Clears the faults whose conditions have gone. When none remain a tripped channel
    /// goes to `holding` (the actuator stays where the safe action left it; regulating
    /// again takes a new setpoint). Returns the faults that stay latched.
    @discardableResult
    public mutating func acknowledge() -> [FaultRecord] {
        let before = faults.records.map(\.code)
        let remaining = faults.acknowledge()
        let cleared = before.filter { c in !remaining.contains { $0.code == c } }
        events.append(.faultsAcknowledged(cleared: cleared, remaining: remaining.map(\.code)))
        if remaining.isEmpty && mode == .tripped {
            changeMode(.holding, reason: "faults acknowledged")
        }
        return remaining
    }

    /// Replaces the tuning without a bump.
    public mutating func setPIDParameters(_ p: PIDParameters) {
        parameters.pid = p
        pid.setParameters(p)
    }

    // MARK: Tick

    /// One control step. Safety checks run first, on this tick's reading, so a trip
    /// changes the output returned by this same call.
    /// - Returns: the actuator output to apply now.
    public mutating func step(now: Double, readings: ChannelReadings) -> Double {
        let dt = lastStep.map { now - $0 } ?? 0
        lastStep = now
        lastReadings = readings

        // 1. Sensor plausibility and staleness.
        var present: [FaultCode: String] = [:]
        let s = parameters.sensor
        var pressure: Double?
        lastStale = false
        if let f = readings.force {
            let age = now - f.time
            if age > s.staleAfter {
                lastStale = true
                present[.sensorStale] = "force sample is \(Int((age * 1000).rounded())) ms old (limit \(Int((s.staleAfter * 1000).rounded())) ms)"
            }
            if !f.value.isFinite || f.value < s.minForce || f.value > s.maxForce {
                present[.sensorRange] = "force \(f.value) N outside plausible range \(s.minForce)…\(s.maxForce) N"
            } else if !lastStale {
                pressure = parameters.pressure(fromForce: f.value)
            }
        } else if now > s.staleAfter {
            lastStale = true
            present[.sensorStale] = "no force sample received"
        }

        // 2. Over-pressure: judged on every valid sample, in every mode. A reading
        //    beyond the sensor's upper range cannot rule out over-pressure (a saturated
        //    load cell means "at least this much"), so it is judged too: fail safe.
        var judged = pressure
        if judged == nil, let f = readings.force?.value, f.isFinite, f > s.maxForce { judged = parameters.pressure(fromForce: f) }
        if let p = judged, p > parameters.limits.trip {
            present[.overPressure] = "stack pressure \(fmt(p)) MPa above trip level \(fmt(parameters.limits.trip)) MPa"
        }

        // 3. Latch and act.
        let fired = faults.update(present: present, now: now)
        if !fired.isEmpty {
            var action = SafeAction.hold
            for r in fired {
                let a = r.code == .overPressure ? parameters.limits.tripAction : parameters.sensor.faultAction
                action = action.combined(with: a)
                events.append(.faultRaised(r, action: a))
            }
            switch action {
            case .release: pid.setManual(output: parameters.safeOutput)
            case .hold: pid.setManual(output: pid.output)
            }
            changeMode(.tripped, reason: fired.map(\.code.rawValue).joined(separator: ","))
        }
        if let pressure { lastPressure = pressure }

        // 4. Regulate. Without a valid measurement this tick the output is held: the
        //    loop never acts on an old or implausible reading.
        if mode == .regulating {
            guard let target, let pressure else { return pid.output }
            return pid.update(setpoint: target, measurement: pressure, feedforward: parameters.feedforward(target), dt: dt)
        }
        // Not regulating (or no valid measurement this tick): keep tracking so that the
        // return to automatic is bumpless.
        return pid.update(setpoint: target ?? 0, measurement: pressure ?? lastPressure ?? 0, dt: dt)
    }

    /// The state to publish after a tick.
    public var state: ChannelState {
        let p = lastStale ? nil : lastReadings.force.flatMap { f in f.value.isFinite ? parameters.pressure(fromForce: f.value) : nil }
        var inBand = false
        if mode == .regulating, let t = target, let p, t > 0 { inBand = abs(p - t) <= parameters.band * t }
        return ChannelState(
            name: parameters.name, mode: mode, time: lastStep ?? 0, target: target,
            workingSetpoint: mode == .regulating ? pid.workingSetpoint : nil,
            pressure: p, force: lastReadings.force?.value, stale: lastStale,
            output: pid.output, terms: pid.lastTerms, faults: faults.records,
            inBand: inBand, readings: lastReadings)
    }
}

@inline(__always) func fmt(_ v: Double) -> String {
    let r = (v * 1000).rounded() / 1000
    return "\(r)"
}
