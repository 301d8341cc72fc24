/// What a channel does with its actuator when a fault fires.
public enum SafeAction: String, Sendable, Codable, CaseIterable {
    /// Freeze the actuator where it is (the fixture keeps its present force).
    case hold
    /// Drive the actuator to its configured safe output (screw backed off, regulator
    /// vented) as fast as it can go.
    case release
    /// Keep regulating, but ramp down to the channel's safe pressure at its safe ramp
    /// rate (needs a valid measurement; without one the channel holds).
    case ramp

    /// The more protective of two actions: release > ramp > hold.
    public func combined(with other: SafeAction) -> SafeAction {
        if self == .release || other == .release { return .release }
        if self == .ramp || other == .ramp { return .ramp }
        return .hold
    }
}

/// One latched alarm.
public struct FaultRecord: Sendable, Equatable, Codable {
    public var code: FaultCode
    /// Human text naming the value and the limit that were crossed, as they were when it
    /// fired.
    public var message: String
    /// Monotonic time at which it first fired, s.
    public var raisedAt: Double
    /// True while the condition is still present. A record stays latched after the
    /// condition clears until it is acknowledged.
    public var active: Bool
    /// The safe action it took (nil: a record persisted before this was kept).
    public var action: SafeAction?

    public init(code: FaultCode, message: String, raisedAt: Double, active: Bool, action: SafeAction? = nil) {
        self.code = code; self.message = message; self.raisedAt = raisedAt; self.active = active; self.action = action
    }
}

/// Hard limits of a channel, in MPa of stack pressure.
public struct PressureLimits: Sendable, Equatable, Codable {
    /// Lowest setpoint an operator may ask for.
    public var minSetpoint: Double
    /// Highest setpoint an operator may ask for.
    public var maxSetpoint: Double
    /// Measured pressure above this trips the channel within the same tick.
    public var trip: Double
    /// What the over-pressure trip does.
    public var tripAction: SafeAction
    /// How long the output may sit at its limit with the pressure outside the band
    /// before `cannot_reach_setpoint` fires, s.
    public var saturationTimeout: Double
    /// What `cannot_reach_setpoint` does. `hold` returns to the last output that held
    /// the pressure in band (so a returning air supply does not overshoot).
    public var saturationAction: SafeAction
    /// Where the `ramp` action takes the pressure, MPa, and how fast, MPa/s.
    public var safePressure: Double
    public var safeRamp: Double

    public init(minSetpoint: Double, maxSetpoint: Double, trip: Double, tripAction: SafeAction = .release,
                saturationTimeout: Double = 30, saturationAction: SafeAction = .hold, safePressure: Double? = nil, safeRamp: Double = 0.5) {
        self.minSetpoint = minSetpoint; self.maxSetpoint = maxSetpoint
        self.trip = trip; self.tripAction = tripAction; self.saturationTimeout = saturationTimeout
        self.saturationAction = saturationAction; self.safePressure = safePressure ?? minSetpoint; self.safeRamp = safeRamp
    }

    public func validationErrors() -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(minSetpoint >= 0) { e.append(("min_mpa", "must be ≥ 0")) }
        if !(maxSetpoint > minSetpoint) { e.append(("max_mpa", "must be above min_mpa (\(minSetpoint))")) }
        if !(trip > maxSetpoint) { e.append(("trip_mpa", "must be above max_mpa (\(maxSetpoint)) so that regulating at the highest setpoint cannot trip")) }
        if !(saturationTimeout > 0) { e.append(("saturation_timeout_s", "must be > 0")) }
        if !(safePressure >= 0 && safePressure < trip) { e.append(("safe_mpa", "must be ≥ 0 and below trip_mpa (\(trip))")) }
        if !(safeRamp > 0) { e.append(("safe_ramp_mpa_per_s", "must be > 0")) }
        return e
    }
}

/// Plausibility limits of the force sensor.
public struct SensorLimits: Sendable, Equatable, Codable {
    /// Lowest plausible force, N (a little below zero allows for tare drift).
    public var minForce: Double
    /// Highest plausible force, N (the load cell's rated capacity).
    public var maxForce: Double
    /// A sample older than this is stale, s.
    public var staleAfter: Double
    /// What a sensor fault does.
    public var faultAction: SafeAction
    /// Fresh samples with exactly the same value for this long are `sensor_frozen`, s
    /// (0 turns the check off). Judged only while the sensor is loaded above 1 % of its
    /// range, where a live transmitter's last digit always moves.
    public var frozenAfter: Double
    /// The fast frozen-transmitter check: a run of exact repeats is frozen once chance
    /// would give it less than once in 1/`fastFrozenChance` (0 turns the check off), and
    /// not before `fastFrozenMinimum` s (see ``FastFrozenCheck``).
    public var fastFrozenChance: Double = 1e-9
    public var fastFrozenMinimum: Double = 0.2
    /// A recoverable fault (stale, frozen) clears by itself once the signal has been
    /// good for this long, s; regulation then resumes bumplessly. 0: always latch.
    public var recoverAfter: Double
    /// At most this many automatic recoveries in any hour; the next fault latches.
    public var maxRecoveriesPerHour: Int

    public init(minForce: Double, maxForce: Double, staleAfter: Double, faultAction: SafeAction = .hold,
                frozenAfter: Double = 5, recoverAfter: Double = 2, maxRecoveriesPerHour: Int = 6) {
        self.minForce = minForce; self.maxForce = maxForce
        self.staleAfter = staleAfter; self.faultAction = faultAction
        self.frozenAfter = frozenAfter; self.recoverAfter = recoverAfter; self.maxRecoveriesPerHour = maxRecoveriesPerHour
    }

    public func validationErrors() -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(maxForce > minForce) { e.append(("range_n", "upper bound must be above the lower bound")) }
        if !(staleAfter > 0) { e.append(("stale_after_ms", "must be > 0")) }
        if !(frozenAfter >= 0) { e.append(("frozen_after_s", "must be ≥ 0 (0 turns the check off)")) }
        if frozenAfter > 0 && frozenAfter <= staleAfter { e.append(("frozen_after_s", "must be longer than stale_after_ms")) }
        if !(recoverAfter >= 0) { e.append(("recover_after_s", "must be ≥ 0 (0: always latch)")) }
        if maxRecoveriesPerHour < 0 { e.append(("max_recoveries_per_hour", "must be ≥ 0")) }
        if !(fastFrozenChance >= 0 && fastFrozenChance < 1e-3) { e.append(("frozen_fast_chance", "must be 0 (off) or below 1e-3")) }
        if !(fastFrozenMinimum >= 0 && fastFrozenMinimum < 60) { e.append(("frozen_fast_min_s", "must be 0…60")) }
        return e
    }
}

/// The set of faults of one channel: which fired, which are still present, which
/// wait for an acknowledgement.
public struct FaultLatch: Sendable, Equatable {
    public private(set) var records: [FaultRecord] = []

    public init() {}

    /// True when any fault is latched (active or not yet acknowledged).
    public var isLatched: Bool { !records.isEmpty }
    public var activeCodes: [FaultCode] { records.filter(\.active).map(\.code) }
    public var codes: Set<FaultCode> { Set(records.map(\.code)) }

    /// Reports this tick's conditions. Returns the faults that newly fired, and the
    /// latched ones whose cause had gone and is back: their safe action is due again
    /// (an over-pressure that returns to a tripped, held channel must release it). Words
    /// are built for those only, when they fire.
    public mutating func update(present: [FaultCode: FaultCondition], now: Double) -> [FaultRecord] {
        var fired: [FaultRecord] = []
        for i in records.indices {
            let was = records[i].active
            let condition = present[records[i].code]
            records[i].active = condition != nil
            if !was, let c = condition {
                records[i].message = c.message
                records[i].action = c.action
                fired.append(records[i])
            }
        }
        for (code, c) in present.sorted(by: { $0.key < $1.key }) where !records.contains(where: { $0.code == code }) {
            let r = FaultRecord(code: code, message: c.message, raisedAt: now, active: true, action: c.action)
            records.append(r)
            fired.append(r)
        }
        return fired
    }

    /// Latches records restored after a restart (their conditions are judged again on
    /// the first tick).
    public mutating func restore(_ saved: [FaultRecord]) {
        for var r in saved.sorted(by: { $0.code < $1.code }) where !records.contains(where: { $0.code == r.code }) {
            r.active = true
            r.raisedAt = 0
            records.append(r)
        }
    }

    /// Clears every latched fault whose condition has gone. Returns the faults that are
    /// still present and therefore stay latched.
    public mutating func acknowledge() -> [FaultRecord] {
        records.removeAll { !$0.active }
        return records
    }
}
