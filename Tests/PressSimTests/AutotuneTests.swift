import Testing
@testable import PressCore
@testable import PressSim

/// A backend whose actuator does nothing: the pressure stays wherever it was.
/// A jammed actuator: the force does not answer the output. The load cell is live, so
/// its reading dithers by its last digit (a reading that never changes at all is a
/// frozen transmitter, `sensor_frozen`, which is another fault).
final class JammedBackend: ChannelBackend {
    let force: Double
    var time = 0.0
    private var tick = 0
    init(force: Double) { self.force = force }
    func read(now: Double) -> ChannelReadings {
        time = now; tick += 1
        return ChannelReadings(force: Sample(value: force + (tick % 2 == 0 ? 0.05 : -0.05), time: now))
    }
    func apply(output: Double, now: Double) {}
    var presentOutput: Double? { nil }
}

@Suite("Relay autotune on simulated plants")
struct AutotuneTests {
    /// Series stiffness of spring, frame and contact at 500 N, as MPa per µm on 1 cm².
    func springGain(_ rate: Double) -> Double { 1 / (1 / rate + 1 / 50 + 1 / (2 + 0.05 * 500)) / 100 }

    func springLoop(rate: Double, seed: UInt64 = 5) -> ClosedLoop {
        var v = ControlBenchmark.nominalVariant(.spring, area: 1)
        v.spring.springRate = rate
        let p = ControlBenchmark.channel(.spring, area: 1, capacity: v.loadCell.capacity)
        return ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0), backend: ControlBenchmark.makePlant(.spring, v, seed: seed))
    }

    @Test("spring fixtures from 0.05 to 2 N/µm: the experiment measures the static gain within 20 % and never leaves its excursion",
          arguments: [0.05, 0.2, 2.0])
    func springVariants(rate: Double) throws {
        var loop = springLoop(rate: rate)
        try loop.controller.setTarget(5)
        loop.run(for: 20)
        try loop.controller.startAutotune(AutotuneSettings(maxExcursion: 0.25, rule: .amigo))
        var peak = 0.0, low = 100.0
        while loop.controller.autotuner != nil && loop.now < 200 {
            let s = loop.tick()
            if let p = s.pressure { peak = max(peak, p); low = min(low, p) }
        }
        let r = try #require(loop.controller.lastTune)
        #expect(abs(r.processGain / springGain(rate) - 1) < 0.2)
        #expect(peak <= 5 + 1.5 * 0.25)
        #expect(low >= 5 - 1.5 * 0.25)
        #expect(loop.controller.parameters.pid.kp == r.kp)
        #expect(loop.controller.mode == .regulating)
        // The tuned loop holds ±5 % from here on.
        var outside = 0
        loop.run(for: 60) { s in if let p = s.pressure, abs(p - 5) > 0.25 { outside += 1 } }
        #expect(outside == 0)
    }

    @Test("the pneumatic channel: the static gain is found through the cylinder's friction, and the loop holds")
    func pneumatic() throws {
        let v = ControlBenchmark.nominalVariant(.pneumatic, area: 2)
        let p = ControlBenchmark.channel(.pneumatic, area: 2, capacity: v.loadCell.capacity)
        var loop = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0),
                              backend: ControlBenchmark.makePlant(.pneumatic, v, seed: 99))
        let r = try #require(ControlBenchmark.tune(&loop, at: 3).result)
        // 3117 mm² bore on 2 cm²: 15.6 MPa of stack pressure per MPa of command.
        #expect(abs(r.processGain / 15.585 - 1) < 0.15)
        #expect(r.kp > 0 && r.ki > 0)
        loop.run(for: 10) // back from the last relay half-period
        var outside = 0
        loop.run(for: 60) { s in if let p = s.pressure, abs(p - 3) > 0.15 { outside += 1 } }
        #expect(outside == 0)
    }

    @Test("every rule gives positive, finite PI gains from the same experiment", arguments: TuningRule.allCases)
    func rules(rule: TuningRule) throws {
        var loop = springLoop(rate: 0.2)
        try loop.controller.setTarget(5)
        loop.run(for: 20)
        try loop.controller.startAutotune(AutotuneSettings(rule: rule))
        loop.run(for: 60)
        let r = try #require(loop.controller.lastTune)
        #expect(r.rule == rule)
        #expect(r.kp.isFinite && r.kp >= 0 && r.ki.isFinite && r.ki > 0)
    }

    @Test("refused when it would be unsafe or meaningless")
    func refusals() throws {
        var loop = springLoop(rate: 0.2)
        // Not regulating.
        #expect(throws: CommandRejection.self) { try loop.controller.startAutotune() }
        try loop.controller.setTarget(5)
        loop.tick()
        // Not settled at the setpoint yet (ramping up from zero).
        #expect(throws: CommandRejection.unsafe("the pressure must be settled in band at the setpoint 5.0 MPa")) { try loop.controller.startAutotune() }
        loop.run(for: 20)
        // An excursion that could reach the trip level (15 MPa).
        try loop.controller.setTarget(11.5)
        loop.run(for: 20)
        #expect(throws: CommandRejection.self) { try loop.controller.startAutotune(AutotuneSettings(maxExcursion: 2.5)) }
        // A program running.
        try loop.controller.setTarget(5)
        loop.run(for: 15)
        try loop.controller.startProgram(PressureProgram(name: "p", steps: [.hold(mpa: nil, duration: 100)]))
        loop.tick()
        #expect(throws: CommandRejection.unsafe("a program is loaded; stop it first")) { try loop.controller.startAutotune() }
    }

    @Test("an over-pressure trip during the relay: the safe action wins, the experiment is cancelled, the bias is not restored")
    func tripDuringRelay() throws {
        var loop = springLoop(rate: 0.2)
        try loop.controller.setTarget(5)
        loop.run(for: 20)
        try loop.controller.startAutotune()
        while loop.now < 200 {
            loop.tick()
            if case .relay = loop.controller.autotuner?.phase { break }
        }
        #expect(loop.controller.autotuner != nil)
        (loop.backend as! SimChannel).inject(SimInjection(forceBias: 1500)) // the load cell reads 20 MPa > trip 15
        var out = loop.tick().output
        for _ in 0..<5 where loop.controller.mode != .tripped { out = loop.tick().output } // the next conversion
        #expect(loop.controller.mode == .tripped)
        #expect(out == loop.controller.parameters.safeOutput, "released, not back to the experiment's bias")
        loop.run(for: 1)
        #expect(loop.controller.autotuner == nil)
        #expect(loop.controller.pid.output == loop.controller.parameters.safeOutput)
        #expect(loop.controller.lastTune == nil)
    }

    @Test("a jammed actuator: the experiment fails, says why, and keeps the old gains and output")
    func jammed() throws {
        var p = ControlBenchmark.channel(.spring, area: 1, capacity: 2000)
        p.limits.saturationTimeout = 1000
        var loop = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 800), backend: JammedBackend(force: 500))
        try loop.controller.setTarget(5)
        loop.run(for: 8)
        let before = loop.controller.parameters.pid
        let output = loop.controller.pid.output
        try loop.controller.startAutotune()
        loop.run(for: 130)
        #expect(loop.controller.autotuner == nil)
        #expect(loop.controller.lastTune == nil)
        #expect(loop.controller.parameters.pid == before)
        let failures = loop.controller.drainEvents().compactMap { e -> String? in
            if case .autotune(.failed, let why) = e { return why }
            return nil
        }
        #expect(failures.count == 1)
        #expect(failures.first?.contains("did not follow the output ramp") == true)
        #expect(abs(loop.controller.pid.output - output) < 1)
    }

    @Test("no regular oscillation before the timeout: failure, not gains")
    func timeout() throws {
        let v = ControlBenchmark.nominalVariant(.pneumatic, area: 2)
        let p = ControlBenchmark.channel(.pneumatic, area: 2, capacity: v.loadCell.capacity)
        var loop = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0),
                              backend: ControlBenchmark.makePlant(.pneumatic, v, seed: 99))
        try loop.controller.setTarget(3)
        loop.run(for: 30)
        // 20 periods of ~0.6 s cannot fit in 10 s with the baseline and the gain measurement first.
        try loop.controller.startAutotune(AutotuneSettings(cycles: 20, timeout: 10))
        loop.run(for: 15)
        #expect(loop.controller.lastTune == nil)
        #expect(loop.controller.autotuner == nil)
        #expect(loop.controller.drainEvents().contains { if case .autotune(.failed, let why) = $0 { return why.contains("within 10 s") }; return false })
    }
}
