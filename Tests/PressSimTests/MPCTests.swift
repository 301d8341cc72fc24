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
        // Status: the model is in control, its lag and dead time the nominal ones (no
        // autotune), and it predicts the hold.
        let status = try #require(loop.controller.state.control.mpc)
        #expect(loop.controller.state.control.activeControl == .mpc)
        #expect(status.active && status.source == "nominal" && status.handovers == 0)
        #expect(status.timeConstant == MPCSettings().nominalLag && status.confidence > 0.5, "\(status)")
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

extension MPCTests {
    /// A pulsed program (square 4 ↔ 6 MPa on the spring, 2.5 ↔ 3.5 MPa on the regulator,
    /// 30 s each) with the plant changing under the running law at 90 s.
    static func plantChange(_ family: ControlBenchmark.Family) -> ControlBenchmark.Scenario {
        let spring = family == .spring
        var s = ControlBenchmark.Scenario(name: "mpc-plant-change", family: family, summary: "", duration: 900,
                                          setpoints: [(0, spring ? 6 : 3.5)], settle: 0, area: spring ? 1 : 2)
        s.program = PressureProgram(name: "pulsed", steps: [.square(low: spring ? 4 : 2.5, high: spring ? 6 : 3.5, period: 60, duration: 900, ramp: nil)])
        var j = SimInjection()
        if spring { j.springRate = 0.05 } else { j.regulatorGain = 0.5 }
        s.injections = [(90, j)]
        return s
    }

    @Test("the plant changes under it (a 4× softer spring, a regulator at half gain): mpc hands over to the adaptive PID with an event, and takes over again once its model predicts the moves",
          arguments: [ControlBenchmark.Family.spring, .pneumatic])
    func fallback(_ family: ControlBenchmark.Family) {
        var events: [(Double, String)] = []
        let r = ControlBenchmark.run(Self.plantChange(family), .mpc, nominal: Self.tunes[family]) { t, e in
            if case .adaptation(let m) = e { events.append((t, m)) }
        }
        let out = events.filter { $0.1.hasPrefix("mpc: the model mispredicts") }.map(\.0)
        let back = events.filter { $0.1.hasPrefix("mpc: the model predicts") }.map(\.0)
        let log = events.map { "\(Int($0.0)) s: \($0.1)" }.joined(separator: "\n")
        // No false alarm on the nominal plant; the change seen within 10 s.
        #expect(out.first.map { $0 > 90 && $0 < 100 } == true, "\(family):\n\(log)")
        // Back once the gain is corrected (a few moves), and in control at the end.
        #expect(back.first.map { $0 > out.first! && $0 < 400 } == true, "\(family):\n\(log)")
        #expect((back.last ?? 0) > (out.last ?? .infinity), "\(family):\n\(log)")
        #expect(r.faults.isEmpty, "\(r.faults)")
    }
}
