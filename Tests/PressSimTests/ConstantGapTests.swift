import Testing
@testable import PressCore
@testable import PressSim

/// Issue 23, proof 1: constant-gap (constant-volume) mode on the thickness gauge's signal.
/// The channel holds the measured stack thickness through the cell's breathing and the
/// pressure is what the cell develops; trips stay in force.
@Suite("Constant-gap mode")
struct ConstantGapTests {
    func run(_ actuator: String) throws -> (thickness: (lo: Double, hi: Double), target: Double, pressure: (lo: Double, hi: Double), loop: ClosedLoop, sim: SimChannel) {
        var (sim, params) = simPlant(actuator, seed: 31)
        if actuator == "pneumatic" { params.gap = .defaults(pneumatic: true) }
        // Fast charge: ±3 mA/cm² with a 20 min period, 7.5 µm of Li breathing each half.
        sim.cycler = CyclerProfile(current: 3 * params.cellArea, period: 1200)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(actuator == "spring" ? 5 : 2)
        loop.run(for: 30)
        try loop.controller.holdGap()
        #expect(loop.controller.mode == .constantGap)
        let target = try #require(loop.controller.state.gapTarget)
        var lo = Double.infinity, hi = -Double.infinity, plo = Double.infinity, phi = -Double.infinity
        loop.run(for: 2400) { s in
            let t = sim.cell.stackThickness(force: sim.trueForce)
            lo = min(lo, t); hi = max(hi, t)
            if let p = s.pressure { plo = min(plo, p); phi = max(phi, p) }
        }
        return ((lo, hi), target, (plo, phi), loop, sim)
    }

    @Test("spring and pneumatic fixtures hold the stack's true thickness within ±1 µm through 7.5 µm of breathing; the pressure the cell develops is logged",
          arguments: ["spring", "pneumatic"])
    func holdsThickness(actuator: String) throws {
        let r = try run(actuator)
        #expect(r.thickness.lo >= r.target - 1 && r.thickness.hi <= r.target + 1,
                "\(actuator): thickness \(r.thickness.lo)…\(r.thickness.hi) µm, held at \(r.target)")
        // At constant gap the breathing turns into pressure: it swings by tenths of MPa.
        #expect(r.pressure.hi - r.pressure.lo > 0.2, "\(actuator): pressure only \(r.pressure.lo)…\(r.pressure.hi) MPa")
        #expect(r.loop.controller.mode == .constantGap && r.loop.controller.faults.records.isEmpty)
    }

    @Test("over-pressure still trips in the same tick at constant gap; set returns to pressure regulation without a bump")
    func tripsStayAndSetReturns() throws {
        var r = try run("spring")
        // Back to pressure: the output does not jump.
        let before = r.loop.controller.pid.output
        try r.loop.controller.setTarget(5)
        let first = r.loop.tick().output
        #expect(abs(first - before) < 30, "output jumped \(before) → \(first) µm")
        #expect(r.loop.controller.mode == .regulating && r.loop.controller.state.gapTarget == nil)
        // At constant gap again, a sudden swelling beyond what the trip allows: tripped
        // on the tick the reading crosses the trip level.
        try r.loop.controller.holdGap()
        r.sim.inject(SimInjection(thicknessStep: 6000))
        var tickOfCrossing: Int?, tickOfTrip: Int?
        for k in 0..<200 where tickOfTrip == nil {
            let s = r.loop.tick()
            if tickOfCrossing == nil, let p = s.pressure, p > s.limits.trip { tickOfCrossing = k }
            if s.mode == .tripped { tickOfTrip = k }
        }
        #expect(tickOfTrip != nil && tickOfTrip == tickOfCrossing, "crossed at tick \(String(describing: tickOfCrossing)), tripped at \(String(describing: tickOfTrip))")
        #expect(r.loop.controller.faults.records.contains { $0.code == .overPressure })
    }
}
