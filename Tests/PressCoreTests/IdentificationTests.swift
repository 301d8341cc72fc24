import Testing
@testable import PressCore

/// Deterministic noise for the estimator tests (SplitMix64 + Box–Muller).
struct TestNoise {
    var state: UInt64
    mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (Double((z ^ (z >> 31)) >> 11) + 1) / 9_007_199_254_740_992.0
    }
    mutating func gaussian() -> Double {
        let u1 = uniform(), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

import Foundation

@Suite("Recursive least squares and the plant adapter")
struct IdentificationTests {
    @Test("RLS converges to a known plant from noisy data")
    func converges() {
        var rls = RecursiveLeastSquares(count: 3, forgetting: 0.99)
        var rng = TestNoise(state: 1)
        for _ in 0..<2000 {
            let x1 = rng.gaussian(), x2 = rng.gaussian()
            rls.update(y: 2 * x1 - 0.5 * x2 + 0.3 + 0.01 * rng.gaussian(), phi: [x1, x2, 1])
        }
        #expect(abs(rls.theta[0] - 2) < 0.01)
        #expect(abs(rls.theta[1] + 0.5) < 0.01)
        #expect(abs(rls.theta[2] - 0.3) < 0.01)
        #expect(rls.standardError(0) < 0.005)
    }

    @Test("without excitation neither the estimate nor the covariance moves")
    func noDriftWithoutExcitation() {
        var rls = RecursiveLeastSquares(count: 2, forgetting: 0.95, excitationThreshold: 1e-6)
        var rng = TestNoise(state: 2)
        for _ in 0..<500 { let x = rng.gaussian(); rls.update(y: 3 * x + 1, phi: [x, 1]) }
        let theta = rls.theta, p = rls.covariance
        // A loop holding still: regressors of zero (no movement) for a long time.
        for _ in 0..<100_000 { rls.update(y: rng.gaussian() * 0.1, phi: [0, 0]) }
        #expect(rls.theta == theta)
        #expect(rls.covariance == p)
        #expect(rls.skipped == 100_000)
    }

    @Test("forgetting with a regressor that excites one direction only keeps the covariance bounded")
    func covarianceBounded() {
        var rls = RecursiveLeastSquares(count: 2, forgetting: 0.9, maxCovarianceTrace: 50)
        for _ in 0..<10_000 { rls.update(y: 1, phi: [1, 0]) }
        #expect(rls.covarianceTrace <= 50 + 1e-9)
        #expect(rls.theta.allSatisfy { $0.isFinite })
    }

    @Test("a non-finite measurement is refused and changes nothing")
    func nonFinite() {
        var rls = RecursiveLeastSquares(count: 1)
        rls.update(y: 1, phi: [1])
        let t = rls.theta
        #expect(rls.update(y: .nan, phi: [1]) == nil)
        #expect(rls.update(y: 1, phi: [.infinity]) == nil)
        #expect(rls.theta == t)
    }

    /// Feeds the adapter a static plant p = gain·u + chargeGain·Q + noise for `seconds`.
    /// Closed loop: an integral controller holds the target, the learned feedforward is
    /// added to its output. `moves`: the target alternates 4.5 ↔ 5.5 MPa every 10 s (a
    /// pulsed program: settled setpoint moves that identify the gain); otherwise 5 MPa.
    /// Open loop (for a plant that answers backwards): the input random-walks.
    func feed(_ a: inout PlantAdapter, gain: Double, seconds: Double, start: Double = 0, rng: inout TestNoise,
              current: Double = 0, chargeGain: Double = 0, closedLoop: Bool = true, loopGain: Double = 2, ditherMpa: Double = 0.02,
              moves: Bool = false, limits: PressureLimits) -> [AdaptationUpdate] {
        var updates: [AdaptationUpdate] = []
        let k0 = a.memory.baseGain
        var integral = 5 / k0
        var dither = 0.0
        var charge = 0.0
        var offset: Double?
        var p = 5.0
        let dt = 0.01
        for k in 0..<Int(seconds / dt) {
            let t = start + Double(k) * dt
            let target = moves ? (Int(t / 10) % 2 == 0 ? 4.5 : 5.5) : 5
            if k % 100 == 0 { dither = ditherMpa / k0 * rng.gaussian() }
            if closedLoop { integral += loopGain / k0 * (target - p) * dt } else if k % 100 == 0 { integral += 0.05 / k0 * rng.gaussian() }
            let u = integral + dither + a.memory.disturbanceOutput
            let i = (Int(t / 30) % 2 == 0 ? 1.0 : -1.0) * current
            charge += i * dt / 3600
            // The pressure starts at 5 MPa whatever the gain, and follows the input from there.
            offset = offset ?? 5 - gain * u
            p = gain * u + offset! + chargeGain * charge + 0.002 * rng.gaussian()
            var r = ChannelReadings()
            r.current = Sample(value: i, time: t)
            r.temperature = Sample(value: 25, time: t)
            if let up = a.observe(now: t, dt: dt, pressure: p, output: u, target: target, readings: r, limits: limits, saturated: false) {
                updates.append(up)
            }
        }
        return updates
    }

    let limits = PressureLimits(minSetpoint: 0.1, maxSetpoint: 12, trip: 15)

    func adapter(_ strategy: ControlStrategy = .adaptive, base: Double = 0.002, forgetting: Double = 0.995, maxScale: Double = 1) -> PlantAdapter {
        var settings = AdaptationSettings()
        settings.maxScale = maxScale
        return PlantAdapter(strategy: strategy, settings: settings, memory: ControllerMemory(baseGain: base, bins: 6, forgetting: forgetting))
    }

    @Test("a plant three times stiffer than tuned: found from setpoint moves, validated, gains cut to a third")
    func stifferPlant() {
        let base = 0.002
        var a = adapter()
        var rng = TestNoise(state: 3)
        let ups = feed(&a, gain: 3 * base, seconds: 300, rng: &rng, moves: true, limits: limits)
        let k = a.memory.estimatedGain
        #expect(abs((k ?? 0) / (3 * base) - 1) < 0.1)
        #expect(abs(a.memory.scale - 1.0 / 3) < 0.05)
        #expect(ups.contains { $0.events.contains { $0.contains("validated on 3 moves") } })
    }

    @Test("a plant half as stiff keeps the tuned gains by default; with max_scale 4 they rise to twice the tuned ones once validated, not before")
    func softerPlant() {
        let base = 0.002
        var d = adapter()
        var rng0 = TestNoise(state: 4)
        _ = feed(&d, gain: 0.5 * base, seconds: 200, rng: &rng0, moves: true, limits: limits)
        #expect(abs((d.memory.estimatedGain ?? 0) / (0.5 * base) - 1) < 0.1)
        #expect(d.memory.scale == 1)
        var a = adapter(maxScale: 4)
        var rng = TestNoise(state: 4)
        // Two moves are not a validation: the gains stay.
        _ = feed(&a, gain: 0.5 * base, seconds: 25, rng: &rng, moves: true, limits: limits)
        #expect(a.memory.scale == 1)
        _ = feed(&a, gain: 0.5 * base, seconds: 200, start: 25, rng: &rng, moves: true, limits: limits)
        #expect(abs((a.memory.estimatedGain ?? 0) / (0.5 * base) - 1) < 0.1)
        #expect(abs(a.memory.scale - 2) < 0.1)
    }

    @Test("an hour of a quiet hold (dither and noise, no setpoint move): nothing learned, nothing changed")
    func quietHold() {
        var a = adapter()
        var rng = TestNoise(state: 7)
        let ups = feed(&a, gain: 0.002, seconds: 3600, rng: &rng, ditherMpa: 0.03, limits: limits)
        #expect(a.memory.estimate.observations == 0)
        #expect(a.memory.scale == 1)
        #expect(ups.allSatisfy { $0.events.isEmpty })
    }

    @Test("a plant that answers backwards (a miswired actuator): nothing it does validates, the gains never rise")
    func backwardsPlant() {
        let base = 0.002
        var a = adapter(forgetting: 0.95)
        var rng = TestNoise(state: 5)
        _ = feed(&a, gain: 2 * base, seconds: 200, rng: &rng, moves: true, limits: limits)
        #expect(abs(a.memory.scale - 0.5) < 0.05)
        let schedule = a.memory.schedule, s0 = a.memory.scale
        var scales: [Double] = []
        for k in 0..<20 {
            _ = feed(&a, gain: -2 * base, seconds: 10, start: 200 + Double(k) * 10, rng: &rng, closedLoop: false, moves: true, limits: limits)
            scales.append(a.memory.scale)
        }
        #expect(scales.allSatisfy { $0 >= 0.1 && $0 <= s0 + 1e-9 }, "\(scales) \(a.memory.schedule)")
        #expect(a.memory.schedule.allSatisfy { $0 == nil } || a.memory.schedule == schedule)
    }

    @Test("the gain in force that stops predicting (the plant changed back) gives way to the tuned gains")
    func mispredictionFallsBack() {
        let base = 0.002
        var a = adapter()
        var rng = TestNoise(state: 8)
        _ = feed(&a, gain: 3 * base, seconds: 200, rng: &rng, moves: true, limits: limits)
        #expect(a.memory.schedule.contains { $0 != nil })
        // The plant goes back to the tuned gain: the gain in force (3×) now mispredicts by
        // 67 % each move, the candidate follows the plant and is validated, or the
        // schedule is cleared; either way the gains come back to the tuned ones.
        _ = feed(&a, gain: base, seconds: 200, start: 200, rng: &rng, moves: true, limits: limits)
        #expect(abs(a.memory.scale - 1) < 0.1)
    }

    @Test("a fast loop that cancels breathing by itself: the model learns it but the feedforward stays off (nothing to gain)")
    func learnedStaysOffWhenFeedbackSuffices() {
        let base = 0.002
        var a = PlantAdapter(strategy: .learned, settings: .init(), memory: ControllerMemory(baseGain: base, bins: 6, forgetting: 0.995))
        var rng = TestNoise(state: 6)
        _ = feed(&a, gain: base, seconds: 400, rng: &rng, current: 20, chargeGain: 0.5, limits: limits)
        #expect(abs(a.memory.disturbance.theta[1] + 0.5) < 0.1, "the coefficient is learned all the same")
        #expect(a.memory.disturbanceVisible < 0.1)
        #expect(!a.memory.learnedActive)
    }

    @Test("the learned model learns what breathing requires of the actuator, takes over, and hands back when the plant changes under it")
    func learnedConfidence() {
        let base = 0.002
        var a = PlantAdapter(strategy: .learned, settings: .init(), memory: ControllerMemory(baseGain: base, bins: 6, forgetting: 0.995))
        var rng = TestNoise(state: 6)
        // 0.5 MPa per mAh of charge moved, ±20 mA cycling with a 60 s period: holding the
        // pressure takes −0.5 MPa-equivalents of output per mAh. A gentle loop (integral
        // 0.2 /s) lets the breathing show in the pressure, so feedforward can help.
        _ = feed(&a, gain: base, seconds: 400, rng: &rng, current: 20, chargeGain: 0.5, loopGain: 0.2, ditherMpa: 0.005, limits: limits)
        #expect(a.memory.learnedActive)
        #expect(a.memory.confidence > 0.7)
        #expect(abs(a.memory.disturbance.theta[1] + 0.5) < 0.1)
        #expect(a.memory.disturbanceOutput != 0)
        // The plant changes under it: the disturbance now pushes three times as hard the
        // other way (a different cell chemistry swapped in).
        let ups = feed(&a, gain: base, seconds: 200, start: 400, rng: &rng, current: 20, chargeGain: -1.5, loopGain: 0.2, ditherMpa: 0.005, limits: limits)
        #expect(a.memory.handovers >= 1)
        #expect(ups.contains { $0.handedOver != nil })
    }
}
