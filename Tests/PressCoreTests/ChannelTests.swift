import Testing
@testable import PressCore

@Suite("Channel safety and modes")
struct ChannelTests {
    static let params = ChannelParameters(
        name: "T", cellArea: 1,
        pid: PIDParameters(kp: 100, ki: 1000, outputMin: 0, outputMax: 10_000, outputRateLimit: 2000),
        limits: PressureLimits(minSetpoint: 0.5, maxSetpoint: 10, trip: 12, tripAction: .release),
        sensor: SensorLimits(minForce: -20, maxForce: 2000, staleAfter: 0.2, faultAction: .hold),
        safeOutput: 0)

    /// Force in N for a pressure in MPa on the 1 cm² test cell.
    func reading(mpa: Double, at t: Double) -> ChannelReadings { ChannelReadings(force: Sample(value: mpa * 100, time: t)) }

    func regulating(at mpa: Double = 5) throws -> (ChannelController, Double) {
        var c = ChannelController(parameters: Self.params)
        var t = 0.0
        _ = c.step(now: t, readings: reading(mpa: 0, at: t))
        try c.setTarget(mpa)
        for _ in 0..<50 { t += 0.01; _ = c.step(now: t, readings: reading(mpa: mpa * 0.9, at: t)) }
        #expect(c.mode == .regulating)
        #expect(c.pid.output > 0)
        return (c, t)
    }

    @Test("starts released with the actuator at its safe output")
    func startsReleased() {
        var c = ChannelController(parameters: Self.params)
        #expect(c.mode == .released)
        #expect(c.step(now: 0.01, readings: reading(mpa: 3, at: 0.01)) == 0)
    }

    @Test("over-pressure trips in the same tick and releases the actuator")
    func overPressureSameTick() throws {
        var (c, t) = try regulating()
        t += 0.01
        let out = c.step(now: t, readings: reading(mpa: 12.5, at: t))
        #expect(out == Self.params.safeOutput)
        #expect(c.mode == .tripped)
        #expect(c.faults.records.map(\.code) == [.overPressure])
        #expect(c.faults.records[0].raisedAt == t)
        let events = c.drainEvents()
        #expect(events.contains { if case .faultRaised(let r, .release) = $0 { return r.code == .overPressure }; return false })
    }

    @Test("the trip fires in every mode, also while holding")
    func tripWhileHolding() throws {
        var (c, t) = try regulating()
        try c.hold()
        t += 0.01
        #expect(c.step(now: t, readings: reading(mpa: 13, at: t)) == 0)
        #expect(c.mode == .tripped)
    }

    @Test("a stale sensor holds the actuator and latches until acknowledged")
    func staleHolds() throws {
        var (c, t) = try regulating()
        let lastSample = t
        var held: Double?
        for _ in 0..<40 {
            t += 0.01
            let out = c.step(now: t, readings: reading(mpa: 4.5, at: lastSample))
            if c.mode == .tripped {
                // Within the staleness limit the loop may still act; from the trip on, the
                // output is frozen.
                #expect(t - lastSample > 0.2)
                if held == nil { held = out }
                #expect(out == held)
            } else {
                #expect(t - lastSample <= 0.2 + 1e-9)
            }
        }
        #expect(c.mode == .tripped)
        #expect(c.faults.activeCodes == [.sensorStale])
        #expect(c.state.stale)
        // Acknowledging while the cause persists clears nothing.
        #expect(c.acknowledge().map(\.code) == [.sensorStale])
        #expect(c.mode == .tripped)
        #expect(throws: CommandRejection.faultLatched([.sensorStale])) { try c.setTarget(5) }
        // Sensor back: still latched until acknowledged.
        t += 0.01
        _ = c.step(now: t, readings: reading(mpa: 4.5, at: t))
        #expect(c.mode == .tripped)
        #expect(c.faults.records.first?.active == false)
        #expect(c.acknowledge().isEmpty)
        #expect(c.mode == .holding)
        try c.setTarget(5)
        #expect(c.mode == .regulating)
    }

    @Test("an implausible reading (NaN, infinite, below range) is a sensor fault and is never regulated on")
    func implausible() throws {
        for bad in [Double.nan, -100, -.infinity, .infinity] {
            var (c, t) = try regulating()
            let held = c.pid.output
            t += 0.01
            let out = c.step(now: t, readings: ChannelReadings(force: Sample(value: bad, time: t)))
            #expect(out == held)
            #expect(c.faults.activeCodes.contains(.sensorRange))
        }
    }

    @Test("a reading beyond the sensor's range and the trip level releases: over-range is not an excuse")
    func overRangeIsOverPressure() throws {
        var (c, t) = try regulating()
        t += 0.01
        #expect(c.step(now: t, readings: reading(mpa: 25, at: t)) == Self.params.safeOutput) // 2500 N > 2000 N capacity
        #expect(Set(c.faults.activeCodes) == [.overPressure, .sensorRange])
    }

    @Test("no sample at all after the staleness limit is a fault")
    func neverDelivered() {
        var c = ChannelController(parameters: Self.params)
        _ = c.step(now: 0.1, readings: ChannelReadings())
        #expect(c.faults.records.isEmpty)
        _ = c.step(now: 0.3, readings: ChannelReadings())
        #expect(c.faults.activeCodes == [.sensorStale])
    }

    @Test("setpoints outside the limits are refused and change nothing")
    func limits() throws {
        var (c, _) = try regulating(at: 5)
        #expect(throws: CommandRejection.outOfRange(value: 10.5, min: 0.5, max: 10)) { try c.setTarget(10.5) }
        #expect(throws: CommandRejection.outOfRange(value: 0.1, min: 0.5, max: 10)) { try c.setTarget(0.1) }
        #expect(throws: (any Error).self) { try c.setTarget(.nan) }
        #expect(throws: CommandRejection.invalidRamp(-1)) { try c.setTarget(5, ramp: -1) }
        #expect(c.target == 5)
    }

    @Test("release is always allowed and drives the safe output; hold freezes")
    func releaseAndHold() throws {
        var (c, t) = try regulating()
        try c.hold()
        let frozen = c.pid.output
        for _ in 0..<20 { t += 0.01; #expect(c.step(now: t, readings: reading(mpa: 1, at: t)) == frozen) }
        c.release()
        t += 0.01
        #expect(c.step(now: t, readings: reading(mpa: 1, at: t)) == 0)
        #expect(c.mode == .released)
    }

    @Test("limits validation names the key")
    func limitsValidation() {
        let e = PressureLimits(minSetpoint: 1, maxSetpoint: 10, trip: 9).validationErrors()
        #expect(e.map(\.field) == ["trip_mpa"])
    }

    @Test("pressure is force divided by the cell area")
    func pressureConversion() {
        var p = Self.params
        p.cellArea = 50
        #expect(p.pressure(fromForce: 10_000) == 2) // 2 MPa on a 50 cm² pouch is 10 kN
        #expect(p.force(fromPressure: 1) == 5000)
    }
}

/// `non_uniform_load` (issue 27): three load cells under one plate.
@Suite("Non-uniform load")
struct NonUniformLoadTests {
    static func controller() -> ChannelController {
        var p = ChannelTests.params
        p.nonUniformityAlarm = 0.10 // 10 %
        return ChannelController(parameters: p)
    }

    /// Steps `c` for `ticks` ticks of 10 ms with the load cells' forces from `cells(k)`;
    /// returns the `non_uniform_load` alarms raised.
    static func run(_ c: inout ChannelController, from t0: Double, ticks: Int, cells: (Int) -> [Double]) -> [String] {
        var raised: [String] = []
        for k in 0..<ticks {
            let t = t0 + Double(k) * 0.01
            let f = cells(k)
            var r = ChannelReadings(force: Sample(value: f.reduce(0, +), time: t))
            r.loadCellForces = f
            _ = c.step(now: t, readings: r)
            for e in c.drainEvents() { if case .faultRaised(let r, _) = e, r.code == .nonUniformLoad { raised.append(r.message) } }
        }
        return raised
    }

    @Test("at zero load (the first samples after start) the cells' noise is not judged: no alarm")
    func notAtZeroLoad() {
        var c = Self.controller()
        // Three cells reading a few tenths of a newton: (max − min)/mean swings from 3 % to 110 %.
        let raised = Self.run(&c, from: 0, ticks: 100) { k in k % 2 == 0 ? [0.3, -0.1, 0.5] : [0.30, 0.30, 0.31] }
        #expect(raised.isEmpty, "alarms at zero load: \(raised)")
        #expect(!c.faults.records.contains { $0.code == .nonUniformLoad })
    }

    @Test("with a meaningful load on the plate a real imbalance raises the alarm once, however often it comes and goes")
    func onceUnderLoad() {
        var c = Self.controller()
        // 500 N on the plate (5 % of the 2000 N range is the threshold: 100 N).
        let raised = Self.run(&c, from: 0, ticks: 100) { k in k % 2 == 0 ? [150, 170, 180] : [165, 167, 168] }
        #expect(raised.count == 1, "raised \(raised.count) times: \(raised)")
        #expect(raised.first?.contains("load cells differ by 18") == true, "\(raised)")
        #expect(c.faults.records.contains { $0.code == .nonUniformLoad })
        #expect(c.mode == .released, "an alarm: no safe action")
    }

    @Test("the threshold is configurable: below it nothing is judged")
    func threshold() {
        var p = ChannelTests.params
        p.nonUniformityAlarm = 0.10
        p.nonUniformityMinForce = 1000
        var c = ChannelController(parameters: p)
        #expect(Self.run(&c, from: 0, ticks: 20) { _ in [150, 170, 180] }.isEmpty, "500 N < 1000 N: not judged")
        #expect(Self.run(&c, from: 1, ticks: 20) { _ in [300, 340, 360] }.count == 1, "1000 N: judged")
    }
}
