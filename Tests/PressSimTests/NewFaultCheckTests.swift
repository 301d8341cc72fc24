import Testing
@testable import PressCore
@testable import PressSim

/// Issue 23, proof 2: two fault checks built through the check table. On an independent
/// Modbus rig a transmitter image frozen for 5 s went unseen (the check then needed 5 s
/// of identical values) while the loop drove the pneumatic cell to +15 %.
@Suite("Fault checks: the fast frozen transmitter and over-temperature")
struct NewFaultCheckTests {
    @Test("a load cell whose value freezes while its samples keep coming is flagged within 1 s; ten minutes of a live one never are",
          arguments: ["spring", "pneumatic"])
    func fastFrozen(actuator: String) throws {
        var (sim, params) = simPlant(actuator, seed: 41)
        sim.cycler = CyclerProfile(current: 1, period: 7200)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(actuator == "spring" ? 5 : 2)
        var raised: [(Double, FaultRecord)] = []
        for _ in 0..<(600 * 100) {
            let s = loop.tick()
            for e in loop.controller.drainEvents() { if case .faultRaised(let r, _) = e { raised.append((s.time, r)) } }
        }
        #expect(raised.isEmpty, "\(actuator): a live load cell raised \(raised.map { "\($0.1.code) at \($0.0) s: \($0.1.message)" })")
        let frozenAt = loop.now
        sim.inject({ var j = SimInjection(); j.sensorFrozen = true; return j }())
        for _ in 0..<(10 * 100) {
            let s = loop.tick()
            for e in loop.controller.drainEvents() { if case .faultRaised(let r, _) = e { raised.append((s.time, r)) } }
        }
        let first = try #require(raised.first { $0.1.code == .sensorFrozen }, "\(actuator): not flagged within 10 s")
        #expect(first.0 - frozenAt <= 1, "\(actuator): flagged \(first.0 - frozenAt) s after the freeze: \(first.1.message)")
        #expect(loop.controller.mode == .tripped)
    }

    @Test("a cell above max_temperature_c trips on the same tick, with its safe action")
    func overTemperature() throws {
        var p = ChannelParameters(name: "T", cellArea: 1, pid: PIDParameters(kp: 100, ki: 1000, outputMin: 0, outputMax: 10_000, outputRateLimit: 2000),
                                  limits: PressureLimits(minSetpoint: 0.5, maxSetpoint: 10, trip: 12),
                                  sensor: SensorLimits(minForce: -20, maxForce: 2000, staleAfter: 0.25), safeOutput: 0)
        p.temperatureLimit = TemperatureLimit(maximum: 45, action: .release)
        var c = ChannelController(parameters: p)
        var t = 0.0
        func reading(_ celsius: Double) -> ChannelReadings {
            ChannelReadings(force: Sample(value: 500 + (Int(t * 100) % 2 == 0 ? 0.05 : -0.05), time: t), temperature: Sample(value: celsius, time: t))
        }
        _ = c.step(now: t, readings: reading(25))
        try c.setTarget(5)
        for k in 0..<300 { t += 0.01; _ = c.step(now: t, readings: reading(25 + Double(k) * 0.066)) } // up to 44.8 °C
        #expect(c.mode == .regulating)
        _ = c.drainEvents()
        t += 0.01
        let out = c.step(now: t, readings: reading(45.2))
        #expect(c.mode == .tripped, "not tripped on the tick the temperature crossed 45 °C")
        #expect(out == 0, "release: the safe output on that same tick, not \(out)")
        let fired = c.drainEvents().compactMap { e -> FaultRecord? in if case .faultRaised(let r, _) = e { return r }; return nil }
        #expect(fired.map(\.code) == [.overTemperature])
        #expect(fired.first?.message == "cell temperature 45.2 °C above the limit 45.0 °C")
    }
}
