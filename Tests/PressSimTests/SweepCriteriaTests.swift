import Foundation
import Testing
@testable import PressCore
@testable import PressSim

/// A rig whose interfacial resistance is a test's own function of the true stack
/// pressure (not the simulator's knee), measured every `every` s with a small
/// deterministic noise, and optionally growing while lithium is stripped below a
/// pressure. The cycler current is the test's (mA; negative = stripping).
final class ResistancePlant: ChannelBackend {
    let inner: SimChannel
    /// Static resistance, Ω·cm², of the true pressure, MPa, and of whether the sweep has
    /// already been down to its turning level (for a hysteretic plant).
    var resistance: (Double, Bool) -> Double
    var every = 1.0
    /// Relative noise (SD of a uniform deviate, fraction of R).
    var noise = 0.002
    var currentMa = 0.0
    /// While current < 0 and pressure < `growthBelow`, R grows by `growthPerHour` × its
    /// static value per hour, and the growth stays (voids that do not heal).
    var growthPerHour = 0.0
    var growthBelow = 0.0
    /// The pressure below which the plant counts as having turned (hysteresis).
    var turnBelow = -1.0
    private(set) var turned = false
    private var grown = 0.0, lastT: Double?, last: Sample?, k: UInt64 = 0

    init(_ s: SimChannel, resistance: @escaping (Double, Bool) -> Double) { inner = s; self.resistance = resistance }

    var truePressure: Double { StackUnits.pressure(force: inner.trueForce, area: inner.cell.p.area) }

    func read(now: Double) -> ChannelReadings {
        var r = inner.read(now: now)
        let p = truePressure
        if p < turnBelow { turned = true }
        let base = resistance(p, turned)
        if let t = lastT, currentMa < 0, p < growthBelow { grown += growthPerHour * base * (now - t) / 3600 }
        lastT = now
        if last == nil || now - last!.time >= every - 1e-9 {
            k = k &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(k >> 11) / Double(1 << 53) - 0.5 // uniform in ±0.5, SD 0.289
            last = Sample(value: (base + grown) * (1 + noise / 0.289 * u), time: now)
        }
        r.interfacialResistance = last
        r.current = Sample(value: currentMa, time: now)
        return r
    }
    func apply(output: Double, now: Double) { inner.apply(output: output, now: now) }
    var presentOutput: Double? { inner.presentOutput }
}

@Suite("CSP criteria: P90 interval, margin pressure, directions and hysteresis, the dynamic protocol")
struct SweepCriteriaTests {
    /// The spring rig with a test resistance, regulating at `start` MPa.
    func rig(start: Double, resistance: @escaping (Double, Bool) -> Double) throws -> (ClosedLoop, ResistancePlant) {
        let v = ControlBenchmark.nominalVariant(.spring, area: 1)
        var p = ControlBenchmark.channel(.spring, area: 1, capacity: v.loadCell.capacity)
        if let t = ControlBenchmark.nominalTune(.spring) { p.pid.kp = t.kp; p.pid.ki = t.ki; p.feedforward = t.feedforward }
        let plant = ResistancePlant(ControlBenchmark.makePlant(.spring, v, seed: 5) as! SimChannel, resistance: resistance)
        var l = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0), backend: plant)
        try l.controller.setTarget(start)
        l.run(for: 20)
        return (l, plant)
    }

    func sweep(_ l: inout ClosedLoop, _ s: SweepSettings, limit: Double = 20_000) throws -> SweepResult {
        try l.controller.startSweep(s)
        let end = l.now + limit
        while l.controller.sweep != nil && l.now < end { l.tick() }
        return try #require(l.controller.lastSweep)
    }

    /// The margin pressure a sweep's definition gives on a noise-free curve `r` with the
    /// sweep's setpoints as pressures: reference = mean of the two highest levels, then
    /// the exact crossing of (1 + margin) × reference by bisection in ln P.
    func analyticMargin(_ r: (Double) -> Double, levels: [Double], margin: Double) -> Double {
        let top = levels.sorted(by: >)
        let th = (1 + margin) * (r(top[0]) + r(top[1])) / 2
        var lo = log(top.last!), hi = log(top[0])
        for _ in 0..<100 { let m = (lo + hi) / 2; if r(exp(m)) > th { lo = m } else { hi = m } }
        return exp((lo + hi) / 2)
    }

    // MARK: Margin pressure

    @Test("a curve with no lower plateau (R = R∞ + A·P^−m, 6 → 1.5 MPa): no knee, but the margin pressure within 4 % of the analytic crossing, its interval around it",
          arguments: [(10.0, 30.0, 1.5), (20.0, 15.0, 2.0)])
    func powerLaw(rInf: Double, a: Double, m: Double) throws {
        let curve = { (p: Double) in rInf + a * pow(max(p, 0.05), -m) }
        var (l, _) = try rig(start: 6) { p, _ in curve(p) }
        let s = SweepSettings(from: 6, to: 1.5, steps: 8, dwell: 10, minMeasurements: 3)
        let r = try sweep(&l, s)
        #expect(r.status == .done, "\(r.note ?? "")")
        #expect(r.fit == nil, "a knee on a power law: \(r.summary)")
        #expect(r.note?.contains("no knee inside the swept range") == true)
        let mp = try #require(r.margin, "\(r.summary)")
        let p = try #require(mp.pressure, "\(r.summary)")
        let exact = analyticMargin(curve, levels: s.levels, margin: 0.2)
        #expect(abs(p - exact) <= 0.04 * exact, "P_m \(p) against the analytic \(exact)")
        let lo = try #require(mp.low), hi = try #require(mp.high)
        #expect(lo <= p && p <= hi && hi - lo > 0, "interval \(lo)…\(hi) around \(p)")
        // The interval carries the measurement noise, not the bias of interpolating
        // between levels (up to about 3 % here, where the crossing falls between the two
        // lowest levels of a convex curve).
        #expect(lo <= exact * 1.04 && exact <= hi * 1.04, "interval \(lo)…\(hi) for the analytic \(exact)")
        #expect(r.summary.contains("margin pressure \(fmt3(p)) MPa"), "\(r.summary)")
    }

    @Test("on a logistic knee the margin pressure sits where its criterion says: between P_c and P90 when margin·R∞ > 0.1·ΔR, above P90 when less; P90 has a 95 % interval covering the true P90",
          arguments: [(10.0, 100.0), (100.0, 100.0)])
    func logisticKnee(plateau: Double, rise: Double) throws {
        let pc = 3.0, n = 4.0
        let curve = { (p: Double) in plateau + rise / (1 + pow(max(p, 0.01) / pc, n)) }
        var (l, plant) = try rig(start: 8) { p, _ in curve(p) }
        plant.noise = 0.005
        let s = SweepSettings(from: 8, to: 1, steps: 12, dwell: 10, minMeasurements: 3)
        let r = try sweep(&l, s)
        let f = try #require(r.fit, "\(r.summary)")
        #expect(abs(f.csp - pc) <= 0.3)
        let truth90 = pc * pow(9, 1 / n)
        let lo90 = try #require(f.p90Low), hi90 = try #require(f.p90High)
        #expect(lo90 < f.p90 && f.p90 < hi90)
        #expect(lo90 <= truth90 && truth90 <= hi90, "P90 interval \(lo90)…\(hi90), true \(truth90)")
        let p = try #require(r.margin?.pressure)
        let exact = analyticMargin(curve, levels: s.levels, margin: 0.2)
        #expect(abs(p - exact) <= 0.04 * exact, "P_m \(p) against the analytic \(exact)")
        #expect(p > f.csp)
        if 0.2 * plateau > 0.1 * rise { #expect(p < f.p90, "P_m \(p), P90 \(f.p90)") } else { #expect(p > f.p90, "P_m \(p), P90 \(f.p90)") }
        #expect(r.summary.contains("90 % recovery at") && r.summary.contains("margin pressure"), "\(r.summary)")
    }

    // MARK: Directions

    @Test("an upward sweep (from < to) visits its levels low to high, marks them up, and finds the knee")
    func upward() throws {
        let curve = { (p: Double) in 10 + 100 / (1 + pow(max(p, 0.01) / 3, 4)) }
        var (l, _) = try rig(start: 1) { p, _ in curve(p) }
        var visited: [Double] = []
        try l.controller.startSweep(SweepSettings(from: 1, to: 8, steps: 8, dwell: 10, direction: .up))
        while l.controller.sweep != nil && l.now < 5000 {
            if let t = l.tick().target, visited.last != t { visited.append(t) }
        }
        let r = try #require(l.controller.lastSweep)
        #expect(r.status == .done, "\(r.note ?? "")")
        #expect(Array(visited.prefix(8)) == SweepSettings(from: 1, to: 8, steps: 8).legLevels)
        #expect(r.points.allSatisfy { $0.leg == .up })
        let f = try #require(r.fit, "\(r.summary)")
        #expect(abs(f.csp - 3) <= 0.3)
        #expect(r.legs?.map(\.leg) == [.up])
        #expect(l.controller.target == 1, "back to --from")
    }

    @Test("down then up: the turning level measured once, each leg fitted, the hysteresis of P_c (up − down) and of resistance at equal setpoints")
    func downUp() throws {
        // Contact recovers late: on the way back up the knee sits at 3.6 MPa, not 3.
        var (l, plant) = try rig(start: 6) { p, turned in 10 + 100 / (1 + pow(max(p, 0.01) / (turned ? 3.6 : 3), 4)) }
        plant.turnBelow = 1.6
        let s = SweepSettings(from: 6, to: 1.5, steps: 10, dwell: 10, minMeasurements: 3, direction: .downUp)
        #expect(s.levels.count == 19)
        let r = try sweep(&l, s)
        #expect(r.status == .done, "\(r.note ?? "")")
        #expect(r.points.count == 19)
        #expect(r.points.filter { $0.leg == .down }.count == 10 && r.points.filter { $0.leg == .up }.count == 9)
        #expect(r.points[9].setpoint == 1.5 && r.points[8].setpoint > 1.5 && r.points[10].setpoint > 1.5, "the turning level once")
        let legs = try #require(r.legs)
        #expect(legs.map(\.leg) == [.down, .up] && legs.map(\.levels) == [10, 10])
        let down = try #require(legs[0].fit), up = try #require(legs[1].fit)
        #expect(abs(down.csp - 3) <= 0.3 && abs(up.csp - 3.6) <= 0.3, "down \(down.csp), up \(up.csp)")
        #expect(r.fit == down)
        let h = try #require(r.hysteresis)
        let shift = try #require(h.cspShift), half = try #require(h.cspShiftHalfWidth)
        // Within 0.15 MPa of the true 0.6 and significant; measured 0.67 ± 0.045 (the shared
        // turning level, measured on the way down, pulls the up leg's knee a little).
        #expect(abs(shift - 0.6) <= 0.15 && shift - half > 0, "shift \(shift) ± \(half)")
        #expect(h.pairs == 9)
        #expect(try #require(h.meanRelativeResistanceDifference) > 0.05)
        #expect(try #require(h.marginShift) > 0)
        #expect(r.summary.contains("hysteresis: CSP up − down"), "\(r.summary)")
        #expect(l.controller.target == 6)
    }

    // MARK: The dynamic protocol

    /// Flat 20 Ω·cm², growing 60 %/h below 3.2 MPa while stripping at 1 mA/cm².
    func growingRig() throws -> (ClosedLoop, ResistancePlant) {
        let (l, plant) = try rig(start: 6) { _, _ in 20 }
        plant.currentMa = -1
        plant.growthPerHour = 0.6
        plant.growthBelow = 3.2
        plant.every = 5
        plant.noise = 0.0005
        return (l, plant)
    }

    @Test("dynamic: resistance growing at 60 %/h only below 3.2 MPa while stripping — the dynamic CSP brackets 3.2 MPa, slopes measured to ±20 %, at the current density it held at; a static sweep on the same plant gives no number there")
    func dynamicBrackets() throws {
        var (l, _) = try growingRig()
        let s = SweepSettings(from: 6, to: 1.5, steps: 8, dwell: 120, minMeasurements: 3, sweepProtocol: .dynamic)
        let r = try sweep(&l, s)
        #expect(r.status == .done, "\(r.note ?? "")")
        let d = try #require(r.dynamic, "\(r.summary)")
        let p = try #require(d.pressure), g = try #require(d.grewAt, "\(r.summary)")
        #expect(g < 3.2 && 3.2 <= p, "bracket \(g)–\(p)")
        #expect(abs(try #require(d.currentDensity) - 1) < 1e-9)
        #expect(abs(try #require(r.currentDensity) - 1) < 1e-9)
        #expect(r.temperature != nil)
        for pt in r.points {
            let b = try #require(pt.slope), se = try #require(pt.slopeSE)
            #expect(se > 0)
            if pt.pressure < 3.1 {
                #expect(pt.grows == true, "\(pt.pressure) MPa: \(b) ± \(se)")
                #expect(abs(b - 12) <= 0.2 * 12, "\(pt.pressure) MPa: slope \(b) Ω·cm²/h for 12")
            } else if pt.pressure > 3.3 {
                #expect(pt.grows == false, "\(pt.pressure) MPa: \(b) ± \(se)")
            }
        }
        #expect(r.summary.contains("dynamic CSP \(fmt3(p)) MPa"), "\(r.summary)")
        #expect(r.summary.contains("|J| 1.0 mA/cm²"), "\(r.summary)")

        // The same plant swept statically: short dwells see no growth to speak of.
        var (l2, _) = try growingRig()
        let st = try sweep(&l2, SweepSettings(from: 6, to: 1.5, steps: 8, dwell: 10, minMeasurements: 3))
        #expect(st.status == .done)
        #expect(st.fit == nil && st.dynamic == nil)
        #expect(st.margin != nil && st.margin?.pressure == nil, "\(st.summary)")
        #expect(st.points.allSatisfy { $0.grows == nil })
    }

    @Test("dynamic: with the cycler plating (no stripping) nothing grows and the dynamic CSP is at or below the lowest level")
    func dynamicNoStripping() throws {
        var (l, plant) = try growingRig()
        plant.currentMa = 1
        let r = try sweep(&l, SweepSettings(from: 6, to: 3, steps: 6, dwell: 120, minMeasurements: 3, sweepProtocol: .dynamic))
        let d = try #require(r.dynamic)
        let p = try #require(d.pressure)
        #expect(d.grewAt == nil && abs(p - 3) < 0.2, "\(r.summary)")
    }

    /// Feeds a sweep directly (no rig): in band at once, a resistance `r(setpoint)` every
    /// second, current density `j` (nil: no signal).
    func feed(_ settings: SweepSettings, j: Double?, r: (Double) -> Double) -> SweepResult? {
        var s = CSPSweep(settings: settings)
        var t = 0.0
        while !s.finished && t < 100_000 {
            t += 1
            s.update(now: t, pressure: s.setpoint, inBand: true, resistance: Sample(value: r(s.setpoint), time: t),
                     temperature: Sample(value: 25, time: t), currentDensity: j.map { Sample(value: $0, time: t) })
        }
        return s.result
    }

    @Test("dynamic without a recorded cell current: the result says the protocol needs the cycler stripping; the state machine is deterministic")
    func dynamicWithoutCurrent() throws {
        let settings = SweepSettings(from: 6, to: 1, steps: 6, dwell: 120, minMeasurements: 3, sweepProtocol: .dynamic)
        let none = try #require(feed(settings, j: nil) { 10 + 100 / (1 + pow($0 / 3, 4)) })
        #expect(none.note?.contains("no cell current was recorded") == true, "\(none.note ?? "")")
        #expect(none.dynamic?.grewAt == nil)
        let with = try #require(feed(settings, j: -1) { 10 + 100 / (1 + pow($0 / 3, 4)) })
        #expect(with.note?.contains("no cell current") != true)
        #expect(with == feed(settings, j: -1) { 10 + 100 / (1 + pow($0 / 3, 4)) })
    }

    // MARK: Settings and records

    @Test("validation: direction against from/to, dynamic needs a long dwell and ≥ 3 measurements, margin and threshold ranges")
    func validation() {
        let lim = PressureLimits(minSetpoint: 0.5, maxSetpoint: 12, trip: 14)
        func fields(_ s: SweepSettings) -> [String] { s.validationErrors(limits: lim).map(\.field) }
        #expect(fields(SweepSettings(from: 8, to: 1)).isEmpty)
        #expect(fields(SweepSettings(from: 1, to: 8)) == ["from_mpa"])
        #expect(fields(SweepSettings(from: 1, to: 8, direction: .up)).isEmpty)
        #expect(fields(SweepSettings(from: 8, to: 1, direction: .up)) == ["from_mpa"])
        #expect(fields(SweepSettings(from: 8, to: 1, direction: .downUp)).isEmpty)
        #expect(fields(SweepSettings(from: 1, to: 8, direction: .downUp)) == ["from_mpa"])
        #expect(fields(SweepSettings(from: 0.2, to: 8, direction: .up)) == ["from_mpa"])
        #expect(fields(SweepSettings(from: 1, to: 13, direction: .up)) == ["to_mpa"])
        #expect(fields(SweepSettings(from: 8, to: 1, dwell: 60, sweepProtocol: .dynamic)) == ["dwell_s"])
        #expect(fields(SweepSettings(from: 8, to: 1, dwell: 600, minMeasurements: 2, sweepProtocol: .dynamic)) == ["min_measurements"])
        #expect(fields(SweepSettings(from: 8, to: 1, dwell: 600, sweepProtocol: .dynamic)).isEmpty)
        #expect(fields(SweepSettings(from: 8, to: 1, margin: 0)) == ["margin"])
        #expect(fields(SweepSettings(from: 8, to: 1, growthThresholdPerHour: -1)) == ["growth_threshold_per_h"])
        let du = SweepSettings(from: 6, to: 1.5, steps: 10, direction: .downUp).plan
        #expect(du.count == 19 && du.first!.setpoint == 6 && du.last!.setpoint == 6 && du[9].setpoint == 1.5 && du[9].leg == .down && du[10].leg == .up)
    }

    @Test("a SweepResult written by d9ac602 (before directions, criteria and P90 intervals) still decodes, as a static downward sweep")
    func oldRecordDecodes() throws {
        // Encoded by d9ac602's JSONEncoder (the run log's), keys as its synthesised Codable wrote them.
        let old = #"""
        {"settings":{"from":6,"to":1.5,"steps":8,"dwell":60,"measureFraction":0.5,"minMeasurements":3,"measurementTimeout":900,
        "settleTimeout":120,"runawayFactor":20},
        "points":[{"setpoint":6,"pressure":5.99,"resistance":12.5,"resistanceSD":0.1,"samples":4,"temperature":25.1,"currentDensity":0.5,
        "firstMeasurement":130,"lastMeasurement":160}],
        "fit":{"plateau":10,"rise":100,"csp":3.01,"sharpness":4,"lnCspStandardError":0.02,"cspLow":2.9,"cspHigh":3.1,"p90":5.2,"rmse":0.3},
        "status":"done","started":100,"finished":1200}
        """#
        let r = try JSONDecoder().decode(SweepResult.self, from: Data(old.utf8))
        #expect(r.settings.direction == .down && r.settings.sweepProtocol == .static && r.settings.margin == 0.2)
        #expect(r.fit?.csp == 3.01 && r.fit?.p90Low == nil)
        #expect(r.points.first?.leg == nil && r.points.first?.slope == nil && r.legs == nil && r.currentDensity == nil)
        #expect(r.summary.contains("critical stack pressure 3.01 MPa"))
        // And today's records round-trip.
        let back = try JSONDecoder().decode(SweepResult.self, from: JSONEncoder().encode(r))
        #expect(back == r)
    }
}
