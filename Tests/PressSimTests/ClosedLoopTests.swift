import Testing
import PressCore
@testable import PressSim

/// Closed-loop behaviour of the preset channels on the simulated rig, far faster than
/// real time (a minute of plant time takes a few milliseconds).
@Suite("Closed loop on the simulated rig")
struct ClosedLoopTests {
    static let presets: [(String, @Sendable () -> SimChannel, ChannelParameters)] = [
        ("spring", { SimPresets.springChannel() }, SimPresets.springController()),
        ("pneumatic", { SimPresets.pneumaticChannel() }, SimPresets.pneumaticController()),
    ]

    struct Trace {
        var times: [Double] = []
        var pressures: [Double] = []
        var modes: [ChannelMode] = []
        /// Time of the first sample within ±band of `target` after `from`.
        func firstIn(_ target: Double, band: Double = 0.05, from: Double = 0) -> Double? {
            zip(times, pressures).first { $0.0 >= from && abs($0.1 - target) <= band * target }?.0
        }
        /// Fraction of samples in [from, to) within ±band of target.
        func fractionIn(_ target: Double, band: Double = 0.05, from: Double, to: Double) -> Double {
            let window = zip(times, pressures).filter { $0.0 >= from && $0.0 < to }
            return Double(window.filter { abs($0.1 - target) <= band * target }.count) / Double(max(1, window.count))
        }
        func maxPressure(from: Double, to: Double) -> Double {
            zip(times, pressures).filter { $0.0 >= from && $0.0 < to }.map(\.1).max() ?? 0
        }
    }

    func run(_ loop: inout ClosedLoop, seconds: Double, into trace: inout Trace) {
        loop.run(for: seconds) { s in
            trace.times.append(s.time); trace.pressures.append(s.pressure ?? .nan); trace.modes.append(s.mode)
        }
    }

    @Test("reaches ±5 % of 5 MPa within 10 s and stays there for 60 s", arguments: [0, 1])
    func holdFive(preset: Int) throws {
        let (_, make, params) = Self.presets[preset]
        var loop = ClosedLoop(controller: ChannelController(parameters: params), backend: make())
        var trace = Trace()
        run(&loop, seconds: 1, into: &trace)
        try loop.controller.setTarget(5)
        let t0 = loop.now
        run(&loop, seconds: 75, into: &trace)
        let reached = try #require(trace.firstIn(5, from: t0))
        #expect(reached - t0 < 10)
        #expect(trace.fractionIn(5, from: t0 + 10, to: t0 + 75) == 1)
        #expect(trace.fractionIn(5, band: 0.01, from: t0 + 15, to: t0 + 75) > 0.95)
        #expect(trace.maxPressure(from: t0, to: t0 + 75) < 5 * 1.05)
        #expect(!trace.modes.contains(.tripped))
    }

    @Test("setpoint steps up and down settle inside ±5 % without tripping", arguments: [0, 1])
    func steps(preset: Int) throws {
        let (_, make, params) = Self.presets[preset]
        var loop = ClosedLoop(controller: ChannelController(parameters: params), backend: make())
        var trace = Trace()
        run(&loop, seconds: 0.5, into: &trace)
        for target in [5.0, 8.0, 2.0, 6.0] {
            try loop.controller.setTarget(target)
            let t0 = loop.now
            run(&loop, seconds: 25, into: &trace)
            // 1 MPa/s ramp: the longest step (6 MPa) needs 6 s, then settling.
            #expect(trace.fractionIn(target, from: t0 + 12, to: t0 + 25) == 1, "target \(target)")
            #expect(trace.maxPressure(from: t0, to: t0 + 25) < max(target, 8) * 1.05 + 0.05)
        }
    }

    @Test("holds ±5 % through cell breathing and a thermal transient", arguments: [0, 1])
    func disturbances(preset: Int) throws {
        let (_, make, params) = Self.presets[preset]
        let sim = make()
        var loop = ClosedLoop(controller: ChannelController(parameters: params), backend: sim)
        var trace = Trace()
        try loop.controller.setTarget(5)
        run(&loop, seconds: 15, into: &trace)
        // Fast charge: 10 mA on the cell, 10-minute cycles, while the room warms by 8 K.
        sim.inject(SimInjection(ambient: 33, current: 10, cyclePeriod: 600))
        let t0 = loop.now
        run(&loop, seconds: 1800, into: &trace)
        #expect(trace.fractionIn(5, from: t0, to: t0 + 1800) == 1)
        // The disturbance is real: the plant moved (charge and temperature changed).
        #expect(sim.cell.temperature > 28)
    }

    @Test("a sudden swelling beyond the trip level releases the actuator in the same tick")
    func suddenSwellingTrips() throws {
        let sim = SimPresets.springChannel()
        var p = SimPresets.springController()
        p.limits.trip = 6
        p.limits.maxSetpoint = 5.5
        var loop = ClosedLoop(controller: ChannelController(parameters: p), backend: sim)
        try loop.controller.setTarget(5)
        loop.run(for: 15)
        sim.inject(SimInjection(thicknessStep: 1000)) // +200 N through a 0.2 N/µm spring → 7 MPa
        var trippedAt: Double?
        loop.run(for: 1) { s in
            if let p = s.pressure, p > 6 {
                // Every published state that shows the over-pressure already shows the trip.
                #expect(s.mode == .tripped)
                #expect(s.output == 0)
                if trippedAt == nil { trippedAt = s.time }
            }
        }
        #expect(trippedAt != nil)
        #expect(sim.trueForce < 600) // the screw is backing off
    }
}

@Suite("Supply dip on the pneumatic channel")
struct SupplyDipTests {
    @Test("a supply too low for the setpoint is reported as cannot_reach_setpoint; no windup, no overshoot when it returns")
    func supplyDip() throws {
        let sim = SimPresets.pneumaticChannel()
        var params = SimPresets.pneumaticController()
        params.limits.saturationTimeout = 10
        var loop = ClosedLoop(controller: ChannelController(parameters: params), backend: sim)
        try loop.controller.setTarget(5)
        loop.run(for: 20)
        sim.inject(SimInjection(supply: 0.25)) // 5 MPa needs ≈0.334 MPa of air
        var sawSaturated = false
        loop.run(for: 30) { s in if s.terms.saturated { sawSaturated = true } }
        #expect(loop.controller.mode == .tripped)
        #expect(loop.controller.faults.records.map(\.code) == [.cannotReachSetpoint])
        #expect(sawSaturated)
        // The integrator stayed bounded by the output limit (back-calculation).
        #expect(loop.controller.pid.integral <= params.pid.outputMax + 0.05)
        sim.inject(SimInjection(supply: 0.7))
        var peak = 0.0
        loop.run(for: 20) { s in peak = max(peak, s.pressure ?? 0) }
        #expect(peak < 5 * 1.05, "peak \(peak) MPa after the supply returned")
        #expect(abs((loop.controller.state.pressure ?? 0) - 5) < 0.25)
    }
}

/// Issue 12, finding 3: a supply dip shorter than `saturation_timeout_s`. The output
/// sits at its maximum through the dip; when the air returns, the pressure must not be
/// carried past the band, and the excursion must leave an event.
@Suite("Loss of actuator authority")
struct AuthorityTests {
    @Test("supply dips of 0.5–60 s at random: after the air returns the pressure never passes setpoint + band", arguments: [
        (UInt64(1), 6.0), (2, 0.5), (3, 2.0), (4, 12.0), (5, 25.0), (6, 45.0), (7, 60.0), (8, 4.0)])
    func supplyDipShort(seed: UInt64, dip: Double) throws {
        let sim = SimPresets.pneumaticChannel(seed: seed)
        sim.cycler = CyclerProfile(current: 5, period: 120)
        let params = SimPresets.pneumaticController()
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        let target = 5.0
        try loop.controller.setTarget(target)
        loop.run(for: 30)
        _ = loop.controller.drainEvents()
        let dipStart = loop.now
        // Air below what 5 MPa needs (≈0.334 MPa) for `dip` seconds.
        let low = 0.12 + Double(seed % 3) * 0.06
        sim.inject(SimInjection(supply: low))
        loop.run(for: dip)
        sim.inject(SimInjection(supply: 0.7))
        var peak = 0.0
        loop.run(for: 30) { s in peak = max(peak, sim.trueForce / (params.cellArea * 100)) }
        let ctx = "seed \(seed), dip \(dip) s to \(low) MPa of air"
        #expect(peak <= target * 1.05, "\(ctx): true pressure peaked at \(peak) MPa after the supply returned")
        let events = loop.controller.drainEvents()
        let excursions = events.compactMap { e -> ExcursionRecord? in if case .excursion(let x) = e { return x }; return nil }
        // The excursion the dip caused (breathing may cause small ones of its own).
        let dipExcursion = excursions.first { $0.start >= dipStart && $0.start <= dipStart + dip + 1 }
        #expect(dipExcursion != nil, "\(ctx): the pressure loss left no excursion event: \(excursions)")
        if let x = dipExcursion {
            #expect(x.worstError < -0.05 * target, "\(ctx): worst \(x.worstError)")
            #expect(x.cause == "saturation" || x.cause == "fault", "\(ctx): cause \(x.cause): \(x)")
        }
    }
}

/// Found by trying the daemon as a technician would (after issue 12): a trip's safe action
/// after a restart, a fault that comes back, no air at the very first setpoint.
@Suite("Safe actions that must not be skipped")
struct SafeActionTests {
    @Test("no air when the first setpoint is given: the output never slams the cell when the air comes, before or after cannot_reach_setpoint", arguments: [10.0, 33.0])
    func noAirAtStart(airBackAfter: Double) throws {
        let sim = SimPresets.pneumaticChannel(seed: 9)
        let params = SimPresets.pneumaticController()
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        sim.inject(SimInjection(supply: 0))
        try loop.controller.setTarget(5)
        loop.run(for: airBackAfter)
        sim.inject(SimInjection(supply: 0.7))
        var peak = 0.0
        loop.run(for: 20) { _ in peak = max(peak, sim.trueForce / (params.cellArea * 100)) }
        #expect(peak <= 5 * 1.05, "air back after \(airBackAfter) s: true pressure peaked at \(peak) MPa")
        #expect(!loop.controller.faults.records.contains { $0.code == .overPressure })
    }

    @Test("cannot_reach_setpoint stays active while the pressure is still out of band: an acknowledgement does not clear it")
    func saturationStaysActive() throws {
        let sim = SimPresets.pneumaticChannel(seed: 9)
        var params = SimPresets.pneumaticController()
        params.limits.saturationTimeout = 5
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        sim.inject(SimInjection(supply: 0.2))
        try loop.controller.setTarget(5)
        loop.run(for: 10)
        #expect(loop.controller.mode == .tripped)
        loop.run(for: 1)
        #expect(loop.controller.faults.activeCodes.contains(.cannotReachSetpoint))
        #expect(loop.controller.acknowledge().map(\.code).contains(.cannotReachSetpoint))
        #expect(loop.controller.mode == .tripped)
    }
}

/// Found in a sweep and on the simulated rig: on the pneumatic channel, a step down to
/// 0.5 MPa undershot into the cylinder's stiction; the output had to climb through the
/// friction before the piston moved, the authority monitor took that for "the pressure
/// does not answer the output", capped the output below what breaks the stiction, and
/// `cannot_reach_setpoint` tripped the channel 30 s later. Low setpoints are where the
/// polymer, hydride and silicon-anode windows are.
@Suite("Low setpoints on both fixtures")
struct LowSetpointTests {
    /// Where the fixture's friction allows it (the spring fixture everywhere, the
    /// cylinder from 1 MPa: its 30 N of stiction is 0.15 MPa on the 2 cm² cell, three
    /// times the whole ±5 % band at 0.5 MPa), the pressure is in band 90 % of the time;
    /// below that the cylinder hunts around the setpoint (stick–slip), centred on it.
    @Test("steps down through 2, 1.5, 1, 0.5 (spring also 0.3) MPa and back up to 1 MPa: never tripped; in band 20–40 s after each step where friction allows, centred on the setpoint below",
          arguments: [("spring", UInt64(3)), ("spring", 4), ("pneumatic", 3), ("pneumatic", 4), ("pneumatic", 5)])
    func lowSteps(_ actuator: String, _ seed: UInt64) throws {
        let (sim, params) = simPlant(actuator, seed: seed)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(3)
        loop.run(for: 20)
        // The cylinder's floor: 0.5 MPa (100 N on the cell) is about 2.5 × its play;
        // at 0.3 MPa its stiction and return spring (70 N) are the same size as the load.
        let floor = actuator == "pneumatic" ? 0.5 : params.limits.minSetpoint
        for target in [2.0, 1.5, 1.0, 0.5, 0.3, 1.0] where target >= floor {
            try loop.controller.setTarget(target)
            var inBand = 0, n = 0, sum = 0.0
            loop.run(for: 40) { s in
                n += 1
                if n > 2000, let p = s.pressure { sum += p; if abs(p - target) <= 0.05 * target { inBand += 1 } }
            }
            let what = "\(actuator) seed \(seed), \(target) MPa"
            #expect(loop.controller.mode == .regulating, "\(what): \(loop.controller.mode), faults \(loop.controller.faults.records.map { "\($0.code): \($0.message)" })")
            guard loop.controller.mode == .regulating else { return }
            if actuator == "spring" || target >= 1 {
                #expect(Double(inBand) / Double(n - 2000) > 0.6, "\(what): in band \(inBand) of \(n - 2000) ticks 20–40 s after the step")
            }
            let mean = sum / Double(n - 2000)
            #expect(abs(mean - target) <= 0.05 * target, "\(what): mean \(mean) MPa 20–40 s after the step")
        }
    }
}
