import Testing
@testable import PressCore
@testable import PressSim

/// The fast subset of `pressbench control` (docs/performance.md): the same code, fewer
/// scenarios, asserting the targets of the control issue.
@Suite("Control benchmark subset", .serialized)
struct ControlBenchmarkTests {
    static let names = ["steps", "breathing-slow-loop", "stiff-spring", "coin", "pneumatic-steps", "stiction-supply-dip", "regulator-gain"]
    static let tunes: [ControlBenchmark.Family: AutotuneResult] = [
        .spring: ControlBenchmark.nominalTune(.spring)!, .pneumatic: ControlBenchmark.nominalTune(.pneumatic)!]

    static func results(_ name: String) -> [ControlBenchmark.Contender: ControlBenchmark.Result] {
        let sc = ControlBenchmark.scenarios().first { $0.name == name }!
        var out: [ControlBenchmark.Contender: ControlBenchmark.Result] = [:]
        for c in [ControlBenchmark.Contender.fixed, .adaptive, .learned] { out[c] = ControlBenchmark.run(sc, c, nominal: tunes[sc.family]) }
        return out
    }

    @Test("adaptive and learned hold ≥ 99.9 % of samples within ±5 %, and the learned model is never worse than the fixed PID",
          arguments: names)
    func targets(_ name: String) {
        let r = Self.results(name)
        for c in [ControlBenchmark.Contender.adaptive, .learned] {
            #expect(r[c]!.within5 >= 99.9, "\(name) \(c.rawValue): \(r[c]!.within5) % within ±5 %")
        }
        // "Not worse": within 2 % of the fixed PID's IAE (seed-to-seed spread of these
        // scenarios is larger than that; see docs/performance.md).
        #expect(r[.learned]!.iae <= 1.02 * r[.fixed]!.iae, "\(name): learned IAE \(r[.learned]!.iae) vs fixed \(r[.fixed]!.iae)")
        // (Until issue 14 breathing-slow-loop also asserted learned IAE ≤ 0.85 × fixed: that
        // rested on ±60 mA/cm² pulses with 20 µm per mAh/cm², a breathing no cell survives.
        // At a realistic ±3 mA/cm² and 5 µm per mAh/cm² the breathing is 0.04 µm per pulse,
        // below the load cell's noise, and there is nothing for the feedforward to learn; its
        // benefit on predictable breathing is tested in ChannelLearningTests.)
    }

    @Test("a supply too low for the setpoint is reported as saturation, without windup or overshoot when it returns")
    func supplyDip() {
        let r = Self.results("stiction-supply-dip")
        for (c, x) in r {
            #expect(x.saturatedTicks > 0, "\(c.rawValue)")
            #expect(x.faults.contains("cannot_reach_setpoint"), "\(c.rawValue)")
            #expect(x.maxAboveTarget < 5, "\(c.rawValue): \(x.maxAboveTarget) % above the setpoint")
        }
    }

    @Test("field faults: a short supply dip never carries the pressure past the band when the air returns; sensor dropouts recover by themselves")
    func fieldFaults() {
        for (c, x) in Self.results("fault-short-supply-dip") {
            #expect(x.maxAboveTarget < 5, "\(c.rawValue): \(x.maxAboveTarget) % above the setpoint after the air returned")
            #expect(x.excursions >= 2, "\(c.rawValue): the two dips left \(x.excursions) excursion(s)")
            #expect(x.faults.isEmpty, "\(c.rawValue): \(x.faults)")
        }
        for (c, x) in Self.results("fault-sensor-dropouts") {
            #expect(x.recoveries == 3, "\(c.rawValue): \(x.recoveries) recoveries from 3 dropouts")
            #expect(x.within5 >= 99.9, "\(c.rawValue): \(x.within5) % within ±5 %")
        }
    }
}
