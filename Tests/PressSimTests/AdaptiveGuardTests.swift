import Testing
@testable import PressCore
@testable import PressSim

/// Issue 22's field failure, forced: after a long quiet hold the adaptive layer puts in
/// force an estimate that looks credible but is wrong. Here the estimate says the
/// pneumatic plant is 4× weaker than tuned (as a drifted estimate of 0.06–0.29× did in the
/// field), with `adapt_max_scale = 4` so that it is allowed to act on it: the gains climb
/// toward 4×, the loop starts to ring, and the guards (the oscillation detector, the watch
/// on rising gains) must cut them before any logged 1 s envelope leaves ±5 %. Without
/// them the same run reaches 11 % (checked by switching both off).
@Suite("Adaptive layer: a wrong estimate in force cannot take the pressure out of band")
struct AdaptiveGuardTests {
    @Test("long quiet hold, then a credible-looking but wrong estimate: the detector keeps every 1 s envelope within ±5 %")
    func wrongEstimateAfterQuietHold() throws {
        var (sim, params) = simPlant("pneumatic", seed: 21)
        params.strategy = .adaptive
        params.adaptation.maxScale = 4
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(2)
        loop.run(for: 1800) // half an hour's quiet hold
        var m = try #require(loop.controller.adapter?.memory)
        #expect(m.scale == 1 && m.oscillations == 0)
        // The wrong estimate, in force at every pressure: the plant 4× weaker than tuned.
        m.schedule = m.schedule.map { _ in 0.25 * m.baseGain }
        loop.controller.restoreLearning(tune: nil, memory: m)
        var worst = 0.0
        var guards: [String] = []
        var lo = Double.infinity, hi = -Double.infinity, ticks = 0
        for _ in 0..<(600 * 100) {
            let s = loop.tick()
            for e in loop.controller.drainEvents() { if case .adaptation(let m) = e { guards.append(m) } }
            if let p = s.pressure { lo = min(lo, p); hi = max(hi, p) }
            ticks += 1
            if ticks == 100 {
                worst = max(worst, max(2 - lo, hi - 2) / 2 * 100)
                lo = .infinity; hi = -.infinity; ticks = 0
            }
        }
        let after = try #require(loop.controller.adapter?.memory)
        #expect(guards.contains { $0.hasPrefix("loop oscillating") || $0.hasPrefix("gains stopped rising") },
                "the wrong gains never made the loop ring: the scenario did not exercise the guards (\(guards))")
        #expect(worst <= 5, "a 1 s envelope reached \(worst) % from the setpoint")
        #expect(after.scale < 4)
    }
}
