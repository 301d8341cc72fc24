import Foundation
import Testing
@testable import PressCore
@testable import PressSim

@Suite("Critical-stack-pressure sweep on the simulated rig")
struct SweepTests {
    func loop(criticalPressure: Double = 3, rise: Double = 200, sharpness: Double = 4, seed: UInt64 = 11) -> ClosedLoop {
        var v = ControlBenchmark.nominalVariant(.spring, area: 1)
        v.cell.criticalPressure = criticalPressure
        v.cell.resistanceRise = rise
        v.cell.kneeSharpness = sharpness
        var p = ControlBenchmark.channel(.spring, area: 1, capacity: v.loadCell.capacity)
        if let t = ControlBenchmark.nominalTune(.spring) { p.pid.kp = t.kp; p.pid.ki = t.ki; p.feedforward = t.feedforward }
        return ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0), backend: ControlBenchmark.makePlant(.spring, v, seed: seed))
    }

    @Test("the sweep finds a known knee within ±0.3 MPa and never leaves its levels", arguments: [2.5, 3.0, 4.0])
    func findsTheKnee(pc: Double) throws {
        var l = loop(criticalPressure: pc)
        try l.controller.setTarget(8)
        l.run(for: 20)
        try l.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 15, dwell: 30))
        var low = 100.0, high = 0.0
        while l.controller.sweep != nil && l.now < 2000 {
            let s = l.tick()
            if let sp = s.target { low = min(low, sp); high = max(high, sp) }
        }
        let r = try #require(l.controller.lastSweep)
        #expect(r.status == .done)
        #expect(r.points.count == 15)
        let f = try #require(r.fit)
        #expect(abs(f.csp - pc) <= 0.3, "CSP \(f.csp) for a knee at \(pc)")
        #expect(f.cspLow < f.csp && f.csp < f.cspHigh)
        #expect(f.p90 > f.csp)
        #expect(low >= 1 - 1e-9 && high <= 8 + 1e-9)
        // Back to the starting pressure afterwards.
        #expect(l.controller.target == 8)
        #expect(l.controller.drainEvents().contains { if case .sweepFinished(let e) = $0 { return e == r && e.summary.contains("critical stack pressure") }; return false })
    }

    @Test("with noisy impedance and short dwells the 95 % interval widens and still covers the knee", arguments: [UInt64(1), 2, 3])
    func noisyInterval(seed: UInt64) throws {
        var l = loop(criticalPressure: 3, seed: seed)
        (l.backend as! SimChannel).impedanceNoise = 0.3
        try l.controller.setTarget(8)
        l.run(for: 20)
        try l.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 12, dwell: 2, measureFraction: 0.5))
        while l.controller.sweep != nil && l.now < 2000 { l.tick() }
        let f = try #require(l.controller.lastSweep?.fit)
        #expect(f.cspHigh - f.cspLow > 0.05, "interval \(f.cspLow)…\(f.cspHigh)")
        #expect(f.cspLow <= 3 && 3 <= f.cspHigh, "interval \(f.cspLow)…\(f.cspHigh), estimate \(f.csp)")
        #expect(abs(f.csp - 3) <= 0.3)
    }

    @Test("impedance runaway aborts the sweep and returns to the starting pressure")
    func runaway() throws {
        var l = loop(criticalPressure: 3, rise: 5000, sharpness: 6)
        try l.controller.setTarget(8)
        l.run(for: 20)
        try l.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 15, dwell: 20, runawayFactor: 4))
        var lowest = 100.0
        while l.controller.sweep != nil && l.now < 2000 {
            let s = l.tick()
            if let sp = s.target { lowest = min(lowest, sp) }
        }
        let r = try #require(l.controller.lastSweep)
        #expect(r.status == .aborted)
        #expect(r.note?.contains("impedance runaway") == true)
        #expect(lowest > 1, "the sweep stopped before its last level")
        #expect(l.controller.target == 8)
    }

    @Test("refused outside the channel's limits or while not regulating")
    func refusals() throws {
        var l = loop()
        #expect(throws: CommandRejection.self) { try l.controller.startSweep(SweepSettings(from: 8, to: 1)) }
        try l.controller.setTarget(8)
        l.run(for: 10)
        #expect(throws: CommandRejection.unsafe("from_mpa 13.0 MPa must be ≤ the channel's max_mpa 12.0 MPa")) { try l.controller.startSweep(SweepSettings(from: 13, to: 1)) }
        #expect(throws: CommandRejection.self) { try l.controller.startSweep(SweepSettings(from: 8, to: 0.05)) }
        #expect(throws: CommandRejection.self) { try l.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 3)) }
    }

    /// The rig's own resistance withheld until `from` (loop time), as on a channel fed by
    /// pushes or an analyser whose first result has not arrived.
    final class ResistanceFrom: ChannelBackend {
        let inner: SimChannel
        var from: Double
        init(_ s: SimChannel, from: Double) { inner = s; self.from = from }
        func read(now: Double) -> ChannelReadings { var r = inner.read(now: now); if now < from { r.interfacialResistance = nil }; return r }
        func apply(output: Double, now: Double) { inner.apply(output: output, now: now) }
        var presentOutput: Double? { inner.presentOutput }
    }

    @Test("a channel fed by pushes starts its sweep before the first result, says so, and measures each level once results come")
    func pushFedStartsBeforeFirstResult() throws {
        var l = loop()
        try l.controller.setTarget(8)
        l.run(for: 20)
        var n = ClosedLoop(controller: l.controller, backend: ResistanceFrom(l.backend as! SimChannel, from: l.now + 60), start: l.now)
        n.run(for: 1)
        #expect(n.controller.state.readings.interfacialResistance == nil)
        try n.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 8, dwell: 20, minMeasurements: 3))
        let started = n.controller.drainEvents().compactMap { e -> String? in if case .sweep(.started, let d) = e { return d }; return nil }
        #expect(started.first?.contains("no interfacial-resistance measurement yet") == true, "\(started)")
        while n.controller.sweep != nil && n.now < 3000 { n.tick() }
        let r = try #require(n.controller.lastSweep)
        #expect(r.status == .done && r.points.count == 8, "\(r.note ?? "")")
        #expect(r.points.allSatisfy { ($0.firstMeasurement ?? 0) >= l.now + 60 - 0.1 }, "measured once the results came: \(r.points.map { $0.firstMeasurement ?? -1 }) vs \(l.now + 60)")
    }

    @Test("a channel whose results never come: the sweep aborts at its first level, naming the missing measurements")
    func noResultsAborts() throws {
        var l = loop()
        try l.controller.setTarget(8)
        l.run(for: 20)
        var n = ClosedLoop(controller: l.controller, backend: ResistanceFrom(l.backend as! SimChannel, from: .infinity), start: l.now)
        n.run(for: 1)
        try n.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 8, dwell: 20, minMeasurements: 3, measurementTimeout: 60))
        while n.controller.sweep != nil && n.now < 3000 { n.tick() }
        let r = try #require(n.controller.lastSweep)
        #expect(r.status == .aborted && r.points.isEmpty)
        #expect(r.note?.contains("0 of 3 resistance measurements") == true, "\(r.note ?? "")")
        #expect(n.controller.target == 8, "back to where it started")
    }

    @Test("an operator setpoint ends the sweep and keeps what was measured")
    func operatorEnds() throws {
        var l = loop()
        try l.controller.setTarget(8)
        l.run(for: 20)
        try l.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 8, dwell: 10))
        l.run(for: 60)
        try l.controller.setTarget(5)
        #expect(l.controller.sweep == nil)
        let r = try #require(l.controller.lastSweep)
        #expect(r.status == .aborted && r.note == "operator set a setpoint", "\(r.note ?? "")")
        #expect(r.points.count >= 2)
        #expect(l.controller.target == 5)
    }

    /// One sweep 6 → 1.5 MPa in 8 levels; `interval` s between an analyser's spectra (nil:
    /// a fresh resistance every tick).
    func analyserSweep(pc: Double, interval: Double?, ignoreTime: Bool = false) throws -> SweepResult {
        var l = loop(criticalPressure: pc)
        let sim = l.backend as! SimChannel
        sim.impedanceInterval = interval
        sim.impedanceAcquisition = 60
        try l.controller.setTarget(6)
        l.run(for: 100) // the analyser's first spectrum is in
        try l.controller.startSweep(SweepSettings(from: 6, to: 1.5, steps: 8, dwell: 60, measureFraction: 0.5, minMeasurements: 3, measurementTimeout: 900))
        while l.controller.sweep != nil && l.now < 20_000 { l.tick() }
        return try #require(l.controller.lastSweep)
    }

    @Test("an analyser's result every 120 s, stamped with its spectrum's start: the knee within ±0.3 MPa, agreeing within ±0.3 MPa with the sweep fed every tick; points count measurements taken after their level settled",
          arguments: [3.0])
    func analyserCadence(pc: Double) throws {
        let slow = try analyserSweep(pc: pc, interval: 120)
        let fast = try analyserSweep(pc: pc, interval: nil)
        #expect(slow.status == .done, "\(slow.note ?? "")")
        let fs = try #require(slow.fit, "\(slow.summary)")
        let ff = try #require(fast.fit, "\(fast.summary)")
        #expect(abs(fs.csp - pc) <= 0.3, "CSP \(fs.csp) from 120 s spectra for a knee at \(pc)")
        #expect(abs(ff.csp - pc) <= 0.3, "CSP \(ff.csp) fed every tick for a knee at \(pc)")
        #expect(abs(fs.csp - ff.csp) <= 0.3, "120 s spectra \(fs.csp) vs every tick \(ff.csp)")
        // Each level: 3 or more distinct spectra, not thousands of ticks, none shared
        // with the level before.
        for (a, b) in zip(slow.points, slow.points.dropFirst()) {
            #expect(b.samples >= 3 && b.samples <= 12, "\(b.samples) measurements at \(b.setpoint) MPa")
            #expect(try #require(b.firstMeasurement) > (try #require(a.lastMeasurement)))
        }
    }

    @Test("a level whose measurements stop coming aborts the sweep after the measurement timeout, naming the level")
    func measurementsStop() throws {
        var l = loop(criticalPressure: 3)
        let sim = l.backend as! SimChannel
        sim.impedanceInterval = 120
        try l.controller.setTarget(8)
        l.run(for: 100)
        try l.controller.startSweep(SweepSettings(from: 8, to: 1, steps: 8, dwell: 120, minMeasurements: 3, measurementTimeout: 300))
        l.run(for: 1000)
        sim.impedanceInterval = 1e9 // the analyser stops
        var lowest = 100.0
        while l.controller.sweep != nil && l.now < 20_000 { if let t = l.tick().target { lowest = min(lowest, t) } }
        let r = try #require(l.controller.lastSweep)
        #expect(r.status == .aborted)
        #expect(r.note?.contains("resistance measurements acquired after it settled") == true, "\(r.note ?? "")")
        #expect(l.now < 1100 + 120 + 300 + 600, "gave up within dwell + timeout of the last level: \(l.now)")
        #expect(l.controller.target == 8, "back to the starting pressure")
    }

    @Test("one measurement per level: the margin pressure has no interval (its spread is unknown), rather than a zero-width one")
    func singleMeasurementInterval() throws {
        let ps = [6.0, 5.25, 4.5, 3.75, 3.0, 2.25, 1.5]
        func pts(_ n: Int) -> [SweepPoint] {
            ps.map { p in SweepPoint(setpoint: p, pressure: p, resistance: 10 + 30 * pow(p, -1.5), resistanceSD: n > 1 ? 0.2 : 0, samples: n, temperature: nil) }
        }
        let one = try #require(MarginPressure.find(pts(1), margin: 0.2))
        #expect(one.pressure != nil && one.low == nil && one.high == nil && one.intervalAvailable == false)
        #expect(one.summary.contains("no 95 % interval"), "\(one.summary)")
        let three = try #require(MarginPressure.find(pts(3), margin: 0.2))
        #expect(three.intervalAvailable == true && three.low != nil && three.high != nil)
        #expect(three.low! < three.pressure! && three.pressure! < three.high!, "\(three.summary)")
    }
}
