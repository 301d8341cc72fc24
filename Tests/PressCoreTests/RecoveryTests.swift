import Testing
@testable import PressCore

/// Faults that clear on their own (issue 12, findings 1 and 4): a bus hiccup must not end
/// an unattended run, a frozen transmitter must not be regulated on, and everything that
/// may have hurt the cell still latches.
@Suite("Automatic recovery and frozen sensors")
struct RecoveryTests {
    static func params(recoverAfter: Double = 2, maxPerHour: Int = 6, frozenAfter: Double = 5) -> ChannelParameters {
        ChannelParameters(
            name: "T", cellArea: 1,
            pid: PIDParameters(kp: 100, ki: 1000, outputMin: 0, outputMax: 10_000, outputRateLimit: 2000),
            limits: PressureLimits(minSetpoint: 0.5, maxSetpoint: 10, trip: 12, tripAction: .release),
            sensor: SensorLimits(minForce: -20, maxForce: 2000, staleAfter: 0.25, faultAction: .hold,
                                 frozenAfter: frozenAfter, recoverAfter: recoverAfter, maxRecoveriesPerHour: maxPerHour),
            safeOutput: 0)
    }

    /// A reading with a little dither, as a live transmitter gives.
    func reading(_ mpa: Double, _ t: Double) -> ChannelReadings {
        ChannelReadings(force: Sample(value: mpa * 100 + (Int(t * 100) % 2 == 0 ? 0.05 : -0.05), time: t))
    }

    func regulating(_ p: ChannelParameters) throws -> (ChannelController, Double) {
        var c = ChannelController(parameters: p)
        var t = 0.0
        _ = c.step(now: t, readings: reading(0, t))
        try c.setTarget(5)
        for _ in 0..<100 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, t)) }
        _ = c.drainEvents()
        return (c, t)
    }

    func recoveries(_ events: [ChannelEvent], _ state: RecoveryEventState) -> [String] {
        events.compactMap { if case .recovery(let s, _, let d) = $0, s == state { return d }; return nil }
    }

    @Test("a 2 s burst of stale samples holds the output, then regulation resumes at the same setpoint once samples have been good for recover_after_s")
    func staleBurstRecovers() throws {
        var (c, t) = try regulating(Self.params())
        let last = t
        var events: [ChannelEvent] = []
        var held: Double?
        // 2 s without a new sample (DEVICE_BUSY replies): the last sample keeps its time.
        while t < last + 2 { t += 0.01; let out = c.step(now: t, readings: reading(4.9, last)); if c.mode == .tripped { held = held ?? out; #expect(out == held) } }
        #expect(c.mode == .tripped && c.faults.activeCodes == [.sensorStale])
        events += c.drainEvents()
        // Samples again: tripped for recover_after_s (2 s), then regulating at 5 MPa.
        let back = t
        var resumedAt: Double?
        while t < back + 3 {
            t += 0.01
            _ = c.step(now: t, readings: reading(4.95, t))
            if resumedAt == nil, c.mode == .regulating { resumedAt = t }
        }
        events += c.drainEvents()
        let r = try #require(resumedAt, "never resumed")
        #expect(r - back >= 2 - 1e-9 && r - back <= 2.05, "resumed \(r - back) s after samples returned")
        #expect(c.target == 5)
        #expect(c.faults.records.isEmpty)
        #expect(recoveries(events, .resumed).count == 1)
        #expect(events.contains { if case .faultRaised(let f, .hold) = $0 { return f.code == .sensorStale }; return false })
    }

    @Test("the return to regulation is bumpless: the first output after recovery is the held output")
    func bumpless() throws {
        var (c, t) = try regulating(Self.params(recoverAfter: 0.5))
        let last = t
        while t < last + 1 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, last)) }
        let held = c.pid.output
        var outs: [Double] = []
        for _ in 0..<100 { t += 0.01; outs.append(c.step(now: t, readings: reading(4.9, t))) }
        #expect(c.mode == .regulating)
        // The output moves at most by one tick of the rate limit (2000/s · 0.01 s) per tick.
        var prev = held
        for o in outs { #expect(abs(o - prev) <= 20 + 1e-6); prev = o }
    }

    @Test("over-pressure, implausible readings and e-stop never recover by themselves")
    func damagingFaultsLatch() throws {
        for bad in [ChannelReadings(force: Sample(value: 1250, time: 0)), ChannelReadings(force: Sample(value: .nan, time: 0))] {
            var (c, t) = try regulating(Self.params(recoverAfter: 0.5))
            t += 0.01
            var r = bad; r.force!.time = t
            _ = c.step(now: t, readings: r)
            #expect(c.mode == .tripped)
            for _ in 0..<500 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, t)) }
            #expect(c.mode == .tripped, "recovered from \(c.faults.records.map(\.code))")
            #expect(recoveries(c.drainEvents(), .resumed).isEmpty)
        }
        var (c, t) = try regulating(Self.params(recoverAfter: 0.5))
        t += 0.01
        var e = reading(4.9, t); e.emergencyStop = true
        _ = c.step(now: t, readings: e)
        for _ in 0..<300 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, t)) }
        #expect(c.mode == .tripped)
    }

    @Test("a stale fault and an over-pressure together stay latched")
    func mixedLatch() throws {
        var (c, t) = try regulating(Self.params(recoverAfter: 0.5))
        t += 0.01
        _ = c.step(now: t, readings: reading(12.5, t))
        let last = t
        while t < last + 1 { t += 0.01; _ = c.step(now: t, readings: reading(12.5, last)) }
        #expect(Set(c.faults.records.map(\.code)) == [.overPressure, .sensorStale])
        for _ in 0..<300 { t += 0.01; _ = c.step(now: t, readings: reading(4, t)) }
        #expect(c.mode == .tripped)
    }

    @Test("after max_recoveries_per_hour recoveries the next fault latches with an event; an acknowledgement still works")
    func budget() throws {
        var (c, t) = try regulating(Self.params(recoverAfter: 0.5, maxPerHour: 3))
        var events: [ChannelEvent] = []
        for _ in 0..<4 {
            let last = t
            while t < last + 1 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, last)) }
            for _ in 0..<100 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, t)) }
            events += c.drainEvents()
        }
        #expect(recoveries(events, .resumed).count == 3)
        #expect(recoveries(events, .latched).count == 1)
        #expect(c.mode == .tripped)
        #expect(c.acknowledge().isEmpty)
        #expect(c.mode == .holding)
    }

    @Test("recover_after_s = 0 keeps the old behaviour: latched until acknowledged")
    func disabled() throws {
        var (c, t) = try regulating(Self.params(recoverAfter: 0))
        let last = t
        while t < last + 1 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, last)) }
        for _ in 0..<500 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, t)) }
        #expect(c.mode == .tripped)
    }

    @Test("a frozen transmitter (fresh samples, one value) is sensor_frozen within frozen_after_s: the output is held, and it recovers when the value moves")
    func frozen() throws {
        var (c, t) = try regulating(Self.params(recoverAfter: 1, frozenAfter: 3))
        let stuck = 490.0
        let start = t
        var firedAt: Double?
        var held: Double?
        while t < start + 5 {
            t += 0.01
            let out = c.step(now: t, readings: ChannelReadings(force: Sample(value: stuck, time: t)))
            if firedAt == nil, c.faults.activeCodes.contains(.sensorFrozen) { firedAt = t; held = out }
            if let held { #expect(out == held) }
        }
        let f = try #require(firedAt, "a frozen transmitter was not detected")
        #expect(f - start >= 3 - 0.02 && f - start <= 3.05)
        #expect(c.mode == .tripped)
        var resumed = false
        for _ in 0..<200 { t += 0.01; _ = c.step(now: t, readings: reading(4.9, t)); resumed = resumed || c.mode == .regulating }
        #expect(resumed)
    }

    @Test("no frozen fault for a live dithering reading, an unloaded sensor at 0 N, or samples that are merely stale")
    func notFrozen() throws {
        var (c, t) = try regulating(Self.params(frozenAfter: 1))
        for _ in 0..<500 { t += 0.01; _ = c.step(now: t, readings: reading(5, t)) }
        #expect(c.faults.records.isEmpty)
        var idle = ChannelController(parameters: Self.params(frozenAfter: 1))
        var u = 0.0
        for _ in 0..<500 { u += 0.01; _ = idle.step(now: u, readings: ChannelReadings(force: Sample(value: 0, time: u))) }
        #expect(idle.faults.records.isEmpty)
    }
}

@Suite("Trips across restarts and returning causes")
struct TripRestoreTests {
    static let params = RecoveryTests.params()

    @Test("a channel restored with an over-pressure latched takes the trip's safe action at once (release), not the output it had")
    func restoreReleases() {
        var c = ChannelController(parameters: Self.params, initialOutput: 5946)
        c.restore(mode: .tripped, target: 5, ramp: nil, faults: [FaultRecord(code: .overPressure, message: "x", raisedAt: 3, active: true)])
        #expect(c.mode == .tripped)
        #expect(c.step(now: 0.01, readings: ChannelReadings(force: Sample(value: 480, time: 0.01))) == Self.params.safeOutput)
    }

    @Test("an over-pressure that goes away and comes back while tripped fires again")
    func refires() throws {
        var p = Self.params
        p.limits.tripAction = .hold
        var c = ChannelController(parameters: p)
        var t = 0.0
        _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: 0, time: t)))
        try c.setTarget(5)
        for mpa in [5.0, 12.5, 11.0, 12.6] {
            for _ in 0..<20 { t += 0.01; _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: mpa * 100 + (Int(t * 100) % 2 == 0 ? 0.05 : -0.05), time: t))) }
        }
        let raised = c.drainEvents().filter { if case .faultRaised(let r, _) = $0 { return r.code == .overPressure }; return false }
        #expect(raised.count == 2)
    }

    @Test("acknowledging and setting the same target again: the trip's excursion ends there, and the approach from a released cell is not one")
    func approachAfterAck() throws {
        var c = ChannelController(parameters: Self.params)
        var t = 0.0
        func step(_ mpa: Double) { t += 0.01; _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: mpa * 100 + (Int(t * 100) % 2 == 0 ? 0.05 : -0.05), time: t))) }
        step(0)
        try c.setTarget(5)
        for _ in 0..<100 { step(5) }
        for _ in 0..<5 { step(12.5) }          // over-pressure: released
        for _ in 0..<50 { step(0) }            // backed off
        #expect(c.acknowledge().isEmpty)
        let again = t
        try c.setTarget(5)
        for k in 0..<500 { step(min(5, Double(k) * 0.01)) }  // the ramp back up
        let x = c.drainEvents().compactMap { e -> ExcursionRecord? in if case .excursion(let r) = e { return r }; return nil }
        #expect(x.count == 1 && x.first?.cause == "fault" && (x.first?.end ?? .infinity) <= again + 1e-9, "\(x)")
        #expect(c.openExcursion == nil)
    }
}
