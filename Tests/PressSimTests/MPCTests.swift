import Foundation
import Testing
@testable import PressCore
@testable import PressSim

/// The `mpc` law (issue 26): the setpoint preview, tracking of pressure programs, holds
/// no worse than the fixed PID, and the hand-over to the adaptive PID when the plant
/// changes under it.
@Suite("Model-predictive control", .serialized)
struct MPCTests {
    static let tunes: [ControlBenchmark.Family: AutotuneResult] = [
        .spring: ControlBenchmark.nominalTune(.spring)!, .pneumatic: ControlBenchmark.nominalTune(.pneumatic)!]

    static func scenario(_ name: String) -> ControlBenchmark.Scenario {
        ControlBenchmark.scenarios().first { $0.name == name }!
    }

    @Test("the law's tick carries the running program's coming setpoints, and the operator's target otherwise")
    func preview() throws {
        var p = SimPresets.springController()
        p.strategy = .mpc
        var loop = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0), backend: SimPresets.springChannel())
        try loop.controller.setTarget(5)
        loop.run(for: 5)
        let flat = loop.controller.sources.preview(now: loop.now, readings: loop.controller.lastReadings, loop.controller.core)(0.1, 10)
        #expect(flat == [Double](repeating: 5, count: 10))
        try loop.controller.startProgram(PressureProgram(name: "sine", steps: [.sine(mean: 5, amplitude: 1, period: 10, duration: 60)]))
        loop.run(for: 1)
        let runner = try #require(loop.controller.program)
        let ahead = loop.controller.sources.preview(now: loop.now, readings: loop.controller.lastReadings, loop.controller.core)(0.1, 20)
        for (i, sp) in ahead.enumerated() {
            let t: Double = runner.elapsed + 0.1 * Double(i + 1)
            let expected: Double = 5 + sin(2 * Double.pi * t / 10)
            #expect(abs(sp - expected) < 1e-9, "step \(i + 1): \(sp) vs \(expected)")
        }
    }

    @Test("a 0.1 Hz sine program on the pneumatic fixture: mpc's IAE at most 0.6× the fixed PID's (seeds 7, 11, 23); the spring's within 1.25×",
          arguments: [UInt64(7), 11, 23])
    func sineTracking(_ seed: UInt64) {
        for (name, bound) in [("program-sine-pneumatic", 0.6), ("program-sine-spring", 1.25)] {
            let sc = Self.scenario(name)
            let fixed = ControlBenchmark.run(sc, .fixed, nominal: Self.tunes[sc.family], seed: seed)
            let mpc = ControlBenchmark.run(sc, .mpc, nominal: Self.tunes[sc.family], seed: seed)
            #expect(mpc.iae <= bound * fixed.iae, "\(name) seed \(seed): mpc IAE \(mpc.iae) vs fixed \(fixed.iae)")
            #expect(mpc.faults.isEmpty, "\(name): \(mpc.faults)")
        }
    }

    @Test("on setpoint steps mpc is the adaptive PID: IAE within 2 % of the fixed PID's and ≥ 99.9 % within ±5 %",
          arguments: ["steps", "pneumatic-steps", "stiff-spring"])
    func holds(_ name: String) {
        let sc = Self.scenario(name)
        let fixed = ControlBenchmark.run(sc, .fixed, nominal: Self.tunes[sc.family])
        let mpc = ControlBenchmark.run(sc, .mpc, nominal: Self.tunes[sc.family])
        #expect(mpc.iae <= 1.02 * fixed.iae, "\(name): mpc IAE \(mpc.iae) vs fixed \(fixed.iae)")
        #expect(mpc.within5 >= 99.9, "\(name): \(mpc.within5) %")
    }
}
