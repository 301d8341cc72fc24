import Testing
@testable import PressCore

/// Issue 22: in a 27-hour unattended run about a hundred `excursion` events of 10–20 ms
/// (noise crossing the band's edge for one or two ticks) buried the real ones. An
/// excursion is an event only when it lasts `excursionMinDuration` or goes
/// `excursionMinDepth` deep; every one is still counted.
@Suite("Excursion events: what is worth recording")
struct ExcursionEventTests {
    static func params() -> ChannelParameters {
        ChannelParameters(
            name: "X", cellArea: 1,
            pid: PIDParameters(kp: 100, ki: 1000, outputMin: 0, outputMax: 10_000, outputRateLimit: 2000),
            limits: PressureLimits(minSetpoint: 0.5, maxSetpoint: 10, trip: 12),
            sensor: SensorLimits(minForce: -20, maxForce: 2000, staleAfter: 0.25), safeOutput: 0)
    }

    /// Regulating at 5 MPa on readings the test dictates (the plant is the test).
    func settled() throws -> (ChannelController, Double) {
        var c = ChannelController(parameters: Self.params())
        var t = 0.0
        _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: 0, time: t)))
        try c.setTarget(5, ramp: 100)
        for _ in 0..<200 { t += 0.01; _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: 500, time: t))) }
        _ = c.drainEvents()
        return (c, t)
    }

    func excursions(_ events: [ChannelEvent]) -> [ExcursionRecord] {
        events.compactMap { if case .excursion(let x) = $0 { return x }; return nil }
    }

    @Test("noise crossing the band's edge for a tick or two: counted, not recorded")
    func briefCrossingsAreCounted() throws {
        var (c, t) = try settled()
        var events: [ChannelEvent] = []
        // 40 crossings of 1–2 ticks to 5.3 % above the setpoint, one every second.
        for k in 0..<4000 {
            t += 0.01
            let out = k % 100 < (k / 100 % 2 == 0 ? 1 : 2)
            _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: out ? 526.5 : 500.5, time: t)))
            events += c.drainEvents()
        }
        #expect(excursions(events).isEmpty, "\(excursions(events).count) events for crossings of 10–20 ms")
        #expect(c.excursionStats.count == 40)
        #expect(c.excursionStats.brief == 40)
    }

    @Test("an excursion that lasts, or one that goes deep, is recorded")
    func realExcursionsAreRecorded() throws {
        var (c, t) = try settled()
        var events: [ChannelEvent] = []
        // 0.8 s at 6 % above (lasts), then a single tick at 9 % above (deep).
        for k in 0..<300 {
            t += 0.01
            let f = k < 80 ? 530.0 : (k == 150 ? 545.0 : 500.5)
            _ = c.step(now: t, readings: ChannelReadings(force: Sample(value: f, time: t)))
            events += c.drainEvents()
        }
        let x = excursions(events)
        #expect(x.count == 2)
        #expect(abs((x.first?.duration ?? 0) - 0.8) < 0.02)
        #expect(abs((x.last?.worstError ?? 0) - 0.45) < 1e-9)
        #expect(c.excursionStats.brief == 0)
    }

    @Test("an excursion while the reading is deliberately altered is the injection's: cause injected")
    func injectedReading() throws {
        var (c, t) = try settled()
        var events: [ChannelEvent] = []
        for k in 0..<200 {
            t += 0.01
            var r = ChannelReadings(force: Sample(value: k < 100 ? 700 : 500.5, time: t))
            r.altered = k < 100
            _ = c.step(now: t, readings: r)
            events += c.drainEvents()
        }
        #expect(excursions(events).map(\.kind) == [.injected])
    }
}
