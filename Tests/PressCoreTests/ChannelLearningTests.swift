import Testing
@testable import PressCore

/// The adaptive and learned strategies inside the channel controller, on a static plant
/// p = gain·u + disturbance with a noisy 100 Hz sensor.
@Suite("Adaptive and learned strategies in the channel")
struct ChannelLearningTests {
    static func params(_ strategy: ControlStrategy) -> ChannelParameters {
        var p = ChannelParameters(
            name: "L", cellArea: 1,
            pid: PIDParameters(kp: 50, ki: 1000, outputMin: 0, outputMax: 20_000, outputRateLimit: 5000, setpointRampRate: 1),
            feedforward: Feedforward(gain: 500, offset: 0),
            limits: PressureLimits(minSetpoint: 0.5, maxSetpoint: 10, trip: 12),
            sensor: SensorLimits(minForce: -20, maxForce: 2000, staleAfter: 0.2), safeOutput: 0)
        p.strategy = strategy
        return p
    }

    struct Plant {
        var gain: Double
        var disturbance: (Double) -> Double = { _ in 0 }
        var rng = TestNoise(state: 9)
        mutating func force(u: Double, t: Double) -> Double { (gain * u + disturbance(t)) * 100 + 0.2 * rng.gaussian() }
    }

    /// Runs `seconds` of closed loop; returns the outputs.
    @discardableResult
    static func run(_ c: inout ChannelController, _ plant: inout Plant, from t0: Double, seconds: Double,
                    current: (Double) -> Double = { _ in 0 }) -> [Double] {
        var outputs: [Double] = []
        var u = c.pid.output
        var t = t0
        for _ in 0..<Int(seconds * 100) {
            t += 0.01
            var r = ChannelReadings(force: Sample(value: plant.force(u: u, t: t), time: t))
            r.current = Sample(value: current(t), time: t)
            r.temperature = Sample(value: 25, time: t)
            u = c.step(now: t, readings: r)
            outputs.append(u)
        }
        return outputs
    }

    @Test("adaptive: a plant four times stiffer than the tuning gets gains cut accordingly, without a bump in the output")
    func adaptiveCutsGains() throws {
        var c = ChannelController(parameters: Self.params(.adaptive))
        var plant = Plant(gain: 4 * 0.002)
        _ = c.step(now: 0, readings: ChannelReadings(force: Sample(value: 0, time: 0)))
        try c.setTarget(5)
        var outputs = Self.run(&c, &plant, from: 0, seconds: 30)
        // Setpoint steps (a pulsed program) excite the identification.
        for i in 0..<30 {
            try c.setTarget(i % 2 == 0 ? 5.5 : 4.5)
            outputs += Self.run(&c, &plant, from: 30 + Double(i) * 10, seconds: 10)
        }
        let m = try #require(c.adapter?.memory)
        #expect(abs((m.estimatedGain ?? 0) / (4 * 0.002) - 1) < 0.15)
        #expect(m.scale < 0.35)
        #expect(c.state.control.kp < 0.35 * 50)
        #expect(c.state.control.active == "adaptive")
        // Gains change at most 5 %/s and bumplessly: no tick-to-tick jump beyond what the
        // rate limit allows (5000/s × 0.01 s).
        let jumps = zip(outputs.dropFirst(), outputs).map { abs($0 - $1) }
        #expect(jumps.max()! <= 50 * (1 + 1e-6))
    }

    @Test("learned: takes over on breathing it can predict, and hands back to the adaptive PID without a bump")
    func learnedHandover() throws {
        var c = ChannelController(parameters: Self.params(.learned))
        // Breathing: 0.6 MPa per mAh, ±30 mA square, 60 s period. The plant is slow to
        // show it (the PID below is gentle), so there is something to predict.
        var charge = 0.0
        let current: (Double) -> Double = { t in (Int(t / 30) % 2 == 0 ? 30 : -30) }
        var plant = Plant(gain: 0.002)
        plant.disturbance = { _ in 0.6 * charge }
        _ = c.step(now: 0, readings: ChannelReadings(force: Sample(value: 0, time: 0)))
        try c.setTarget(5)
        var t = 0.0
        /// One tick: the cycler moves charge, the plant answers, the channel steps.
        func tick() -> Double {
            t += 0.01
            charge += current(t) * 0.01 / 3600
            var r = ChannelReadings(force: Sample(value: plant.force(u: c.pid.output, t: t), time: t))
            r.current = Sample(value: current(t), time: t)
            r.temperature = Sample(value: 25, time: t)
            return c.step(now: t, readings: r)
        }
        var outputs: [Double] = []
        for _ in 0..<60_000 { outputs.append(tick()) }
        let m = try #require(c.adapter?.memory)
        #expect(m.learnedActive)
        #expect(c.state.control.active == "learned")
        #expect(m.disturbanceOutput != 0)
        // The breathing coefficient: holding the pressure needs −0.6 MPa-equivalents of
        // output per mAh.
        #expect(abs(m.disturbance.theta[1] / (-0.6) - 1) < 0.25)

        // Now the cell changes (the breathing reverses); the model's predictions fail and
        // it hands over. The output must not jump at the handover.
        plant.disturbance = { _ in -1.8 * charge }
        var handoverTick: Int?
        var after: [Double] = []
        for i in 0..<30_000 {
            let before = c.adapter!.memory.learnedActive
            after.append(tick())
            if before && !c.adapter!.memory.learnedActive && handoverTick == nil { handoverTick = i }
        }
        let k = try #require(handoverTick)
        #expect(c.adapter!.memory.handovers >= 1)
        let prev = k > 0 ? after[k - 1] : outputs.last!
        #expect(abs(after[k] - prev) < 5, "output jumped \(after[k] - prev) at the handover")
        #expect(c.drainEvents().contains { if case .adaptation(let s) = $0 { return s.contains("handed over") }; return false })
    }

    @Test("re-entering regulation with a disturbance feedforward in force (after a hold) does not bump the output")
    func reentryIsBumpless() throws {
        // The external feedforward goes through the same sum as the learned one.
        var c = ChannelController(parameters: Self.params(.pid))
        c.externalFeedforward = -80   // µm fed forward on top of the PID
        var plant = Plant(gain: 0.002)
        _ = c.step(now: 0, readings: ChannelReadings(force: Sample(value: 0, time: 0)))
        try c.setTarget(5)
        Self.run(&c, &plant, from: 0, seconds: 20)
        try c.hold()
        let held = Self.run(&c, &plant, from: 20, seconds: 1).last!
        try c.setTarget(5)
        let first = Self.run(&c, &plant, from: 21, seconds: 0.01).first!
        #expect(abs(first - held) < 2, "output jumped from \(held) to \(first) on re-entry")
    }

    @Test("a reload that changes the feedforward gain or the strategy does not bump the output")
    func reloadIsBumpless() throws {
        var c = ChannelController(parameters: Self.params(.learned))
        var plant = Plant(gain: 0.002)
        _ = c.step(now: 0, readings: ChannelReadings(force: Sample(value: 0, time: 0)))
        try c.setTarget(5)
        let before = Self.run(&c, &plant, from: 0, seconds: 20).last!
        var p = Self.params(.pid)
        p.feedforward.gain = 400           // a different static inverse
        c.reconfigure(p)
        let after = Self.run(&c, &plant, from: 20, seconds: 0.01).first!
        #expect(abs(after - before) < 2, "output jumped from \(before) to \(after) on reload")
    }

    @Test("restoring a saved autotune and memory brings back the gains and what was learned")
    func restore() throws {
        let tune = AutotuneResult(rule: .amigo, ultimateGain: 700, ultimatePeriod: 0.1, processGain: 0.004, timeConstant: 0.02,
                                  deadTime: 0.04, relayAmplitude: 30, oscillationAmplitude: 0.12, kp: 80, ki: 3000,
                                  setpoint: 5, bias: 1300, cycles: 8)
        var memory = ControllerMemory(baseGain: 0.004, bins: 6, forgetting: 0.995)
        memory.scale = 0.5
        memory.schedule[2] = 0.008
        var c = ChannelController(parameters: Self.params(.adaptive))
        c.restoreLearning(tune: tune, memory: memory)
        #expect(c.lastTune == tune)
        #expect(c.adapter?.memory == memory)
        #expect(c.parameters.pid.kp == 80)
        #expect(c.parameters.feedforward.gain == 250)
        #expect(c.state.control.kp == 80 * 0.5)
        // A memory from a different tuning (another base gain) is not trusted.
        var c2 = ChannelController(parameters: Self.params(.adaptive))
        c2.restoreLearning(tune: nil, memory: memory)
        #expect(c2.adapter?.memory.scale == 1)
    }
}
