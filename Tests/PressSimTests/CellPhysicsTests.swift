import Testing
@testable import PressCore
@testable import PressSim

/// Issue 14: the cell's voltage, soft shorts, voids that do not fully heal, current-
/// dependent interfacial resistance and self-heating from I²R.
@Suite("Cell electrochemistry in the simulator")
struct CellPhysicsTests {
    /// Advances a bare cell model held at `mpa` with `current` mA for `seconds`.
    static func hold(_ c: inout CellModel, mpa: Double, current: Double, seconds: Double, dt: Double = 0.01, ambient: Double = 25) {
        let f = StackUnits.force(pressure: mpa, area: c.p.area)
        for _ in 0..<Int((seconds / dt).rounded()) { c.advance(dt: dt, force: f, current: current, ambient: ambient) }
    }

    @Test("terminal voltage is OCV + I·(R_bulk + R_interfacial)/area, with I in A and R in Ω·cm²")
    func voltage() {
        var p = CellModel.Parameters(); p.area = 2
        var c = CellModel(parameters: p)
        Self.hold(&c, mpa: 5, current: 4, seconds: 1)
        let r = (p.bulkResistance + c.interfacialResistance(pressure: 5)) / 2
        #expect(abs(c.voltage(current: 4) - (3.7 + 0.004 * r)) < 1e-12)
        #expect(abs(c.voltage(current: -4) - (3.7 - 0.004 * r)) < 1e-12)
        // A shunt in parallel pulls it down partially: (OCV + I·R)·Rs/(R + Rs).
        let shorted = c.voltage(current: 4, shunt: 50)
        #expect(shorted < 3.7 * 50 / (50 + r) + 0.004 * r && shorted > 2)
    }

    @Test("self-heating: a 200 mA, 20 cm² pouch warms by I²R/(h·A), a few kelvin, not hundreds")
    func selfHeating() {
        var p = CellModel.Parameters(); p.area = 20
        var c = CellModel(parameters: p)
        Self.hold(&c, mpa: 2, current: 200, seconds: 3600, dt: 0.05)
        let r = c.cellResistance
        let expected = 0.2 * 0.2 * r / (p.heatTransfer * p.area)
        let rise = c.temperature - 25
        #expect(rise > 1 && rise < 10, "ΔT \(rise) K")
        // Steady state after 12 time constants (the resistance falls slightly as it warms).
        #expect(abs(rise - expected) < 0.02 * expected, "ΔT \(rise) K, I²R/(hA) = \(expected) K")
        // A 1 cm² pellet at 3 mA/cm² barely warms.
        var pellet = CellModel(parameters: .init())
        Self.hold(&pellet, mpa: 5, current: 3, seconds: 3600, dt: 0.05)
        #expect(pellet.temperature - 25 < 0.5)
    }

    @Test("every benchmark scenario's cell stays within 10 K of ambient under its cycler (at zero stack pressure, the worst resistance)")
    func scenariosSane() {
        for s in ControlBenchmark.scenarios() {
            var v = ControlBenchmark.nominalVariant(s.family, area: s.area)
            s.plant(&v)
            var c = CellModel(parameters: v.cell)
            let dt = 0.05
            for k in 0..<Int(s.duration / dt) { c.advance(dt: dt, force: 0, current: v.cycler.current(at: Double(k) * dt), ambient: 25) }
            #expect(c.temperature - 25 < 10, "\(s.name): \(c.temperature) °C")
            // Realistic current densities: at most a few mA/cm².
            #expect(abs(v.cycler.current) / s.area <= 3.0 + 1e-9, "\(s.name): \(v.cycler.current / s.area) mA/cm²")
            #expect(v.cell.breathingPerCharge <= 5, "\(s.name): \(v.cell.breathingPerCharge) µm per mAh/cm²")
        }
    }

    @Test("stripping below the critical pressure opens voids that raise R; above it they heal only partly; plating or stripping above it opens none")
    func voids() {
        var c = CellModel(parameters: .init())
        Self.hold(&c, mpa: 5, current: 0, seconds: 1)
        let fresh = c.interfacialResistance(pressure: 5)
        // 1 h of stripping at 3 mA/cm² and 1 MPa (below the 3 MPa critical pressure).
        Self.hold(&c, mpa: 1, current: -3, seconds: 3600)
        #expect(c.voidFraction > 0.2)
        Self.hold(&c, mpa: 5, current: 0, seconds: 1)
        let damaged = c.interfacialResistance(pressure: 5)
        #expect(damaged > 1.3 * fresh, "R \(fresh) → \(damaged) Ω·cm²")
        // Two hours at 5 MPa: creep closes the recoverable part, not the permanent one.
        Self.hold(&c, mpa: 5, current: 0, seconds: 7200)
        let healed = c.interfacialResistance(pressure: 5)
        #expect(healed < damaged - 0.5 * (damaged - fresh), "healed \(healed) of damaged \(damaged)")
        #expect(healed > 1.05 * fresh, "R \(fresh) → healed \(healed): a permanent part stays")
        #expect(c.voidRecoverable < 1e-3 && c.voidPermanent > 0.05)
        // Plating at low pressure, or stripping above the critical pressure: no voids.
        for (mpa, i) in [(1.0, 3.0), (5.0, -3.0)] {
            var d = CellModel(parameters: .init())
            Self.hold(&d, mpa: mpa, current: i, seconds: 3600)
            #expect(d.voidFraction == 0, "\(mpa) MPa, \(i) mA")
        }
    }

    @Test("interfacial resistance falls mildly with current density (Butler–Volmer chord resistance)")
    func currentDensity() {
        var c = CellModel(parameters: .init())
        Self.hold(&c, mpa: 5, current: 0, seconds: 0.1)
        let r0 = c.interfacialResistance(pressure: 5)
        Self.hold(&c, mpa: 5, current: 3, seconds: 0.1)
        let r3 = c.interfacialResistance(pressure: 5)
        #expect(r3 < r0 && r3 > 0.9 * r0, "\(r0) → \(r3)")
    }

    @Test("the short hazard grows with stack pressure above the damage threshold and with current density")
    func hazard() {
        var c = CellModel(parameters: .init())
        Self.hold(&c, mpa: 5, current: 0, seconds: 0.1)
        let low = c.shortHazardRate
        Self.hold(&c, mpa: 14, current: 0, seconds: 0.1)
        let high = c.shortHazardRate
        Self.hold(&c, mpa: 14, current: 3, seconds: 0.1)
        let highCurrent = c.shortHazardRate
        #expect(high > 50 * low)
        #expect(abs(highCurrent / high - 4) < 1e-9)
        // At the nominal 5 MPa a short within a day is unlikely (< 1 %).
        #expect(low * 86400 < 0.01)
    }
}

/// Short detection end to end: the simulated cell shorts (forced, or by the hazard at
/// high pressure) and the channel latches `cell_short_suspected` and ramps down.
@Suite("Soft shorts on the simulated rig")
struct SimShortTests {
    static func plant(_ actuator: String, seed: UInt64, cell: (inout CellModel.Parameters) -> Void = { _ in }) -> (SimChannel, ChannelParameters) {
        if actuator == "spring" {
            var cp = CellModel.Parameters(); cp.area = 1; cell(&cp)
            var lc = LoadCellModel.Parameters(); lc.capacity = 2000; lc.sampleRate = 80
            let sim = SimChannel(fixture: .spring(.init(parameters: .init(), cell: .init(parameters: cp), frame: .init())),
                                 loadCell: .init(parameters: lc), seed: seed)
            return (sim, SimPresets.springController())
        }
        var cp = CellModel.Parameters(); cp.area = 2; cell(&cp)
        var lc = LoadCellModel.Parameters(); lc.capacity = 5000; lc.noise = 0.5; lc.resolution = 0.1; lc.sampleRate = 100
        let sim = SimChannel(fixture: .pneumatic(.init(parameters: .init(), cell: .init(parameters: cp), frame: .init())),
                             loadCell: .init(parameters: lc), seed: seed)
        return (sim, SimPresets.pneumaticController())
    }

    /// Runs until the fault latches (at most `limit` s); returns when, the peak true
    /// pressure after it and the final true pressure.
    static func runToShort(_ loop: inout ClosedLoop, _ sim: SimChannel, area: Double, limit: Double, after: Double = 30)
        -> (at: Double?, atPressure: Double, peak: Double, end: Double) {
        var at: Double?
        var atPressure = 0.0
        var peak = 0.0
        let n = Int(limit * 100)
        for _ in 0..<n {
            let s = loop.tick()
            let p = StackUnits.pressure(force: sim.trueForce, area: area)
            if at == nil, s.faults.contains(where: { $0.code == .cellShortSuspected }) { at = loop.now; atPressure = p; break }
        }
        guard at != nil else { return (nil, 0, 0, 0) }
        loop.run(for: after) { _ in peak = max(peak, StackUnits.pressure(force: sim.trueForce, area: area)) }
        return (at, atPressure, peak, StackUnits.pressure(force: sim.trueForce, area: area))
    }

    @Test("a short forced with sim_inject is found within 1 s and the channel ramps down to short_safe_mpa, never up",
          arguments: ["spring", "pneumatic"])
    func forced(actuator: String) throws {
        var (sim, params) = Self.plant(actuator, seed: 5)
        params.shortDetection?.safePressure = 1.5
        sim.cycler = CyclerProfile(current: 2, period: 0)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(4)
        loop.run(for: 40)
        #expect(loop.controller.mode == .regulating)
        #expect(loop.controller.faults.records.isEmpty, "\(loop.controller.faults.records)")
        let injectedAt = loop.now
        var j = SimInjection()
        j.shortOhm = 60 / params.cellArea
        sim.inject(j)
        let r = Self.runToShort(&loop, sim, area: params.cellArea, limit: 5)
        let at = try #require(r.at, "\(actuator): no cell_short_suspected within 5 s")
        #expect(at - injectedAt <= 1, "\(actuator): found after \(at - injectedAt) s")
        #expect(r.peak <= r.atPressure + 0.05, "\(actuator): the pressure rose to \(r.peak) MPa from \(r.atPressure)")
        #expect(abs(r.end - 1.5) <= 0.15, "\(actuator): ends at \(r.end) MPa, not at short_safe_mpa 1.5")
        let msg = loop.controller.faults.records.first { $0.code == .cellShortSuspected }?.message ?? ""
        #expect(msg.contains("mA") && msg.contains("MPa"), "\(msg)")
        // The short stays (a flickering shunt): one fault, its first evidence kept, not a
        // new one every few ticks while the channel sits at its safe pressure.
        _ = loop.controller.drainEvents()
        loop.run(for: 120)
        let refired = loop.controller.drainEvents().filter { (e: ChannelEvent) -> Bool in
            if case .faultRaised(let f, _) = e { return f.code == .cellShortSuspected }
            return false
        }
        #expect(refired.isEmpty, "\(actuator): \(refired.count) more cell_short_suspected events while latched")
        #expect(loop.controller.faults.records.first { $0.code == .cellShortSuspected }?.message == msg, "the evidence at detection is kept")
    }

    @Test("at high stack pressure and current density the hazard model shorts the cell; the channel finds it within 2 s and releases")
    func hazardAtHighPressure() throws {
        // A cell whose damage threshold is 8 MPa, held at 11 MPa, cycled at ±3 mA/cm².
        var (sim, params) = Self.plant("spring", seed: 11) { c in c.damagePressure = 8; c.shortHazard = 1e-3 }
        sim.cycler = CyclerProfile(current: 3, period: 240)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(11)
        let r = Self.runToShort(&loop, sim, area: params.cellArea, limit: 900)
        let formed = try #require(sim.shortSince, "the hazard never fired in 900 s")
        let at = try #require(r.at, "short formed at \(formed) s but not found")
        #expect(at >= formed, "found at \(at) s before the short formed at \(formed) s: a false alarm")
        #expect(at - formed <= 2, "found \(at - formed) s after it formed")
        #expect(r.peak <= r.atPressure + 0.05)
        #expect(r.end < r.atPressure - 5, "pressure \(r.atPressure) → \(r.end) MPa")
        _ = params
    }

    @Test("a rig cycling ±3 mA/cm² for 20 minutes at 5 MPa, without a short, raises no cell_short_suspected", arguments: ["spring", "pneumatic"])
    func noFalseAlarm(actuator: String) throws {
        let (sim, params) = Self.plant(actuator, seed: 21)
        sim.cycler = CyclerProfile(current: 3 * params.cellArea, period: 120)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(actuator == "spring" ? 5 : 3)
        loop.run(for: 1200)
        #expect(sim.shortShunt == nil)
        #expect(!loop.controller.faults.records.contains { $0.code == .cellShortSuspected }, "\(loop.controller.faults.records)")
    }
}
