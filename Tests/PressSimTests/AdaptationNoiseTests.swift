import Testing
@testable import PressCore
@testable import PressSim

/// A healthy channel held at a steady setpoint must neither learn nor report anything:
/// issue 12 (a divergence message every few seconds) and issue 22 (the estimate drifted
/// to 0.06× the plant over long quiet holds, from closed-loop noise, backlash and
/// stiction, and was declared credible).
@Suite("Adaptation on quiet, healthy channels")
struct AdaptationNoiseTests {
    @Test("a healthy channel held at a steady setpoint for an hour, cycling: no message, nothing learned, tuned gains",
          arguments: ["spring", "pneumatic"])
    func quietWhenHealthy(actuator: String) throws {
        var (sim, params) = simPlant(actuator, seed: actuator == "spring" ? 11 : 12)
        params.strategy = .adaptive
        sim.cycler = CyclerProfile(current: 3, period: 600)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(4)
        var messages: [String] = []
        for _ in 0..<360 {
            loop.run(for: 10)
            for e in loop.controller.drainEvents() { if case .adaptation(let m) = e { messages.append(m) } }
        }
        let m = try #require(loop.controller.adapter?.memory)
        #expect(messages.isEmpty, "\(actuator): \(messages.count) adaptation messages, e.g. \(messages.first ?? "")")
        #expect(m.estimate.observations == 0, "\(actuator): learned from \(m.estimate.observations) 'moves' without a setpoint move")
        #expect(m.scale == 1)
        #expect(m.fallbacks == 0 && m.oscillations == 0)
    }

    @Test("the gain estimate stays in the plausible set and is validated only by moves it predicted")
    func estimateBounds() {
        var e = GainEstimate()
        // Moves that say the gain is 100× tuned: projected to 16×, never beyond.
        for _ in 0..<40 {
            e.observe(SettledMove(pressure: 1, output: 0.01, midpoint: 5), forgetting: 0.7)
            #expect(e.gain <= GainEstimate.plausible.upperBound)
        }
        #expect(e.gain == GainEstimate.plausible.upperBound)
        #expect(!e.validated(moves: 3, tolerance: 0.25), "an estimate pinned at the bound predicts nothing")
        // Consistent moves at 2× tuned: the estimate follows and validates on them.
        for k in 0..<6 { e.observe(SettledMove(pressure: k % 2 == 0 ? 1 : -1, output: k % 2 == 0 ? 0.5 : -0.5, midpoint: 5), forgetting: 0.7) }
        #expect(abs(e.gain - 2) < 0.05)
        #expect(e.validated(moves: 3, tolerance: 0.25))
        // A move it does not predict (the plant changed) breaks the validation at once.
        e.observe(SettledMove(pressure: 1, output: 1.5, midpoint: 5), forgetting: 0.7)
        #expect(!e.validated(moves: 3, tolerance: 0.25))
    }
}
