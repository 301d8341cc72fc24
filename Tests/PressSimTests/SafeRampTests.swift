import Testing
@testable import PressCore
@testable import PressSim

/// The `ramp` safe action takes the pressure down to the safe pressure. Found by a
/// tester: a short over-reading (a glitch, not a real over-pressure) tripped the channel
/// and the ramp started from the glitched reading, so the loop drove the real pressure
/// from 5 up to 14.7 MPa, just under the trip level.
@Suite("The ramp safe action only ever lowers the pressure")
struct SafeRampTests {
    struct Rng { var s: UInt64; mutating func next() -> Double { s = s &* 6364136223846793005 &+ 1442695040888963407; return Double(s >> 11) / Double(1 << 53) } }

    @Test("a glitched over-reading of random length and size trips with ramp: the true pressure never rises above the setpoint's band, and ends at the safe pressure", arguments: [
        (UInt64(1), "spring"), (2, "spring"), (3, "spring"), (4, "pneumatic"), (5, "pneumatic"), (6, "pneumatic")])
    func glitchThenRamp(seed: UInt64, actuator: String) throws {
        var rng = Rng(s: seed)
        var (sim, params) = simPlant(actuator, seed: seed)
        params.limits.tripAction = .ramp
        params.limits.safePressure = 2
        let area = params.cellArea
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        let target = min(5.0, params.limits.maxSetpoint * 0.6)
        loop.run(for: 1)
        try loop.controller.setTarget(target)
        loop.run(for: 20 + rng.next() * 10)
        // A reading over the trip level for 0.05 to 1.5 s: the load cell's offset
        // jumps and comes back.
        let overBy = 0.5 + rng.next() * 4
        let glitch = 0.05 + rng.next() * 1.45
        let bias = StackUnits.force(pressure: params.limits.trip + overBy - target, area: area)
        sim.inject(SimInjection(forceBias: bias))
        var tripped = false
        loop.run(for: glitch) { s in if s.mode == .tripped { tripped = true } }
        sim.inject(SimInjection(forceBias: 0))
        let ctx = "seed \(seed) \(actuator): \(fmt3(overBy)) MPa over the trip for \(fmt3(glitch)) s"
        var peak = 0.0
        loop.run(for: 30) { s in
            if s.mode == .tripped { tripped = true }
            peak = max(peak, StackUnits.pressure(force: sim.trueForce, area: area))
        }
        #expect(tripped, "\(ctx): no trip")
        #expect(peak <= target * 1.05, "\(ctx): the true pressure rose to \(fmt3(peak)) MPa on a \(fmt3(target)) MPa setpoint")
        let end = StackUnits.pressure(force: sim.trueForce, area: area)
        #expect(abs(end - 2) <= 0.05 * 2 + 0.05, "\(ctx): ends at \(fmt3(end)) MPa, not at the safe 2 MPa")
        #expect(loop.controller.mode == .tripped)
    }

    @Test("below the safe pressure, a ramp holds where the channel was instead of raising it")
    func belowSafe() throws {
        var (sim, params) = simPlant("spring", seed: 9)
        params.limits.tripAction = .ramp
        params.limits.safePressure = 3
        let area = params.cellArea
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(1.5)
        loop.run(for: 25)
        sim.inject(SimInjection(forceBias: StackUnits.force(pressure: params.limits.trip, area: area)))
        loop.run(for: 0.2)
        sim.inject(SimInjection(forceBias: 0))
        var peak = 0.0
        loop.run(for: 20) { _ in peak = max(peak, StackUnits.pressure(force: sim.trueForce, area: area)) }
        #expect(loop.controller.mode == .tripped)
        #expect(peak <= 1.5 * 1.05, "rose to \(fmt3(peak)) MPa toward the safe 3 MPa")
    }
}
