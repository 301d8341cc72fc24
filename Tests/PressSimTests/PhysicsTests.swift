import Foundation
import Testing
import PressCore
@testable import PressSim

@Suite("Simulated rig physics")
struct PhysicsTests {
    func spring(_ configure: (inout SpringFixtureModel.Parameters, inout CellModel.Parameters) -> Void = { _, _ in }) -> SpringFixtureModel {
        var p = SpringFixtureModel.Parameters(), c = CellModel.Parameters()
        configure(&p, &c)
        return SpringFixtureModel(parameters: p, cell: CellModel(parameters: c), frame: FrameModel())
    }

    func settle(_ m: inout SpringFixtureModel, at position: Double, seconds: Double = 3, current: Double = 0, ambient: Double = 25) {
        m.command(position: position)
        for _ in 0..<Int(seconds * 1000) { m.advance(dt: 0.001, current: current, ambient: ambient) }
    }

    @Test("spring fixture: spring, frame and cell compressions add up to the gap closure")
    func springForceBalance() {
        var m = spring { _, c in c.creepRate = 0 }
        settle(&m, at: 3000)
        let f = m.force
        let closure = m.nut - m.p.gap + m.cell.thicknessChange - m.frame.growth
        let sum = f / m.p.springRate + f / m.frame.stiffness + m.cell.compression(force: f)
        #expect(f > 400 && f < 600)
        #expect(abs(sum - closure) < 1e-6)
    }

    @Test("no contact, no force")
    func noContact() {
        var m = spring()
        settle(&m, at: 400)
        #expect(m.force == 0)
    }

    @Test("stepper: positions are whole steps and the step rate is bounded")
    func stepper() {
        var m = spring()
        m.command(position: 10_000)
        for _ in 0..<100 { m.advance(dt: 0.001, current: 0, ambient: 25) }
        // 0.1 s at 2000 steps/s = 200 steps.
        #expect(abs(m.motorSteps - 200) <= 1)
        settle(&m, at: 1000.6)
        #expect(m.screwPosition == 1000) // 800 steps of 1.25 µm; 1000.6 rounds to a whole step
    }

    @Test("backlash: after a reversal the nut waits until the play is taken up")
    func backlash() {
        var m = spring { p, _ in p.backlash = 10; p.gap = 50_000 }
        settle(&m, at: 2000)
        let nutForward = m.nut
        #expect(abs(m.screwPosition - nutForward - 5) < 1e-9)
        settle(&m, at: 1992.5) // reverse by 7.5 µm: inside the 10 µm play
        #expect(m.nut == nutForward)
        settle(&m, at: 1980)
        #expect(abs(m.nut - (1980 + 5)) < 1e-9)
    }

    @Test("lithium creep relaxes the pressure at a fixed gap")
    func creepRelaxes() {
        var m = spring { p, c in p.springRate = 5; c.creepRate = 0.004 } // stiff fixture
        settle(&m, at: 620)
        let start = m.force, creep0 = m.cell.creep
        var last = start
        for _ in 0..<3600 { // one hour, checked every second
            for _ in 0..<100 { m.advance(dt: 0.01, current: 0, ambient: 25) }
            #expect(m.force <= last + 1e-9)
            last = m.force
        }
        #expect(start > 300)
        #expect(last < start * 0.95)
        #expect(m.screwPosition == 620)
        // The lost force is the creep displacement times the series stiffness.
        let k = 1 / (1 / 5.0 + 1 / m.frame.stiffness + 1 / m.cell.stiffness(force: (start + last) / 2))
        #expect(abs((start - last) - k * (m.cell.creep - creep0)) < 0.05 * (start - last))
    }

    @Test("breathing follows charge: 5 µm per mAh/cm² of Li plated")
    func breathing() {
        var m = spring { p, c in p.springRate = 2; c.creepRate = 0; c.area = 1; c.heatTransfer = 1e9 }
        settle(&m, at: 800)
        let f0 = m.force
        // 2 mA for 30 min on 1 cm² = 1 mAh/cm².
        for _ in 0..<1800 { for _ in 0..<1000 { m.advance(dt: 0.001, current: 2, ambient: 25) } }
        #expect(abs(m.cell.charge - 1) < 1e-6)
        #expect(abs(m.cell.thicknessChange - 5) < 1e-6)
        // Force rose by about the series stiffness times 5 µm.
        let k = 1 / (1 / 2.0 + 1 / m.frame.stiffness + 1 / m.cell.stiffness(force: m.force))
        #expect(abs((m.force - f0) - k * 5) < 0.5)
    }

    @Test("frame thermal growth opens the gap: warming lowers the force of a stiff fixture")
    func thermal() {
        var m = spring { p, c in p.springRate = 5; c.creepRate = 0 }
        settle(&m, at: 620)
        let f0 = m.force
        settle(&m, at: 620, seconds: 3600, ambient: 35)
        #expect(m.frame.growth > 11)
        #expect(m.force < f0 - 20)
    }

    @Test("interfacial resistance climbs below the critical stack pressure")
    func interfacialResistance() {
        let cell = CellModel(parameters: .init())
        let low = cell.interfacialResistance(pressure: 1)
        let knee = cell.interfacialResistance(pressure: 3)
        let high = cell.interfacialResistance(pressure: 8)
        #expect(low > knee && knee > high)
        #expect(high < 25 && low > 150)
    }

    func pneumatic(_ configure: (inout PneumaticModel.Parameters) -> Void = { _ in }) -> PneumaticModel {
        var p = PneumaticModel.Parameters()
        configure(&p)
        var c = CellModel.Parameters(); c.creepRate = 0; c.area = 2
        return PneumaticModel(parameters: p, cell: CellModel(parameters: c), frame: FrameModel())
    }

    func run(_ m: inout PneumaticModel, seconds: Double, command: Double) -> [Double] {
        m.command(pressure: command)
        var chamber: [Double] = []
        for _ in 0..<Int(seconds * 1000) { m.advance(dt: 0.001, current: 0, ambient: 25); chamber.append(m.chamber) }
        return chamber
    }

    @Test("regulator: dead time, then a first-order lag to the command")
    func regulatorDynamics() {
        var m = pneumatic { $0.hysteresis = 0; $0.deadTime = 0.05; $0.lag = 0.2 }
        let c = run(&m, seconds: 2, command: 0.4)
        #expect(c[40] == 0)                        // 41 ms: still inside the dead time
        let at = c[49 + 200]                       // one lag after the dead time
        #expect(abs(at - 0.4 * (1 - exp(-1))) < 0.01)
        #expect(abs(c.last! - 0.4) < 1e-3)
    }

    @Test("regulator: the supply limits what the chamber can reach; the dead zone swallows tiny commands")
    func regulatorLimits() {
        var m = pneumatic { $0.supply = 0.3 }
        #expect(run(&m, seconds: 3, command: 0.6).last! <= 0.3 + 1e-12)
        var z = pneumatic { $0.deadZone = 0.01 }
        #expect(run(&z, seconds: 1, command: 0.008).last! == 0)
    }

    @Test("regulator hysteresis: the same command approached from above and below gives different outputs")
    func regulatorHysteresis() {
        var up = pneumatic { $0.hysteresis = 0.01 }
        _ = run(&up, seconds: 2, command: 0.3)
        var down = pneumatic { $0.hysteresis = 0.01 }
        _ = run(&down, seconds: 2, command: 0.5)
        _ = run(&down, seconds: 2, command: 0.3)
        #expect(abs((down.chamber - up.chamber) - 0.01) < 1e-3)
    }

    @Test("cylinder: force = drive ± friction, stiction holds the force through small command changes")
    func stiction() {
        var m = pneumatic { $0.hysteresis = 0; $0.staticFriction = 30; $0.kineticFriction = 20 }
        _ = run(&m, seconds: 3, command: 0.35)
        var drive = m.chamber * m.p.boreArea - m.p.returnSpring
        // Pushed in: friction opposes, between kinetic and static.
        #expect(m.force >= drive - 30 - 1e-6 && m.force <= drive - 20 + 1e-6)
        let stuck = m.force
        _ = run(&m, seconds: 3, command: 0.35 - 10 / m.p.boreArea) // −10 N of drive: inside the band
        #expect(m.force == stuck)
        _ = run(&m, seconds: 3, command: 0.35 - 80 / m.p.boreArea) // −80 N: breaks away backwards
        drive = m.chamber * m.p.boreArea - m.p.returnSpring
        #expect(m.force < stuck - 30)
        #expect(m.force >= drive + 20 - 1e-6 && m.force <= drive + 30 + 1e-6)
    }

    @Test("load cell: converts at its sample rate, quantised, with the configured noise")
    func loadCell() {
        var p = LoadCellModel.Parameters(); p.sampleRate = 80; p.noise = 0.5; p.resolution = 0.1
        var lc = LoadCellModel(parameters: p)
        var rng = SimRandom(seed: 7)
        var times = Set<Double>()
        var values: [Double] = []
        for k in 1...10_000 {
            lc.observe(force: 100, now: Double(k) * 0.001, rng: &rng)
            if let s = lc.last, !times.contains(s.time) { times.insert(s.time); values.append(s.value) }
        }
        #expect(abs(times.count - 800) <= 1)
        for v in values { #expect(abs((v / 0.1).rounded() * 0.1 - v) < 1e-9) }
        let mean = values.reduce(0, +) / Double(values.count)
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        #expect(abs(mean - 100) < 0.1)
        #expect(sd > 0.4 && sd < 0.6)
    }

    @Test("the same seed gives the same run; another seed does not")
    func determinism() {
        func trace(_ seed: UInt64) -> [Double] {
            let ch = SimPresets.springChannel(seed: seed)
            var out: [Double] = []
            for k in 1...300 {
                ch.apply(output: 3000, now: Double(k) * 0.01)
                out.append(ch.read(now: Double(k) * 0.01).force?.value ?? .nan)
            }
            return out
        }
        #expect(trace(3) == trace(3))
        #expect(trace(3) != trace(4))
    }
}

/// Issue 12, finding 8: everything that shapes the plant survives a restart, injections
/// included, so that a resumed run meets the plant it left.
@Suite("Simulated plant state across a restart")
struct PlantRestoreTests {
    @Test("after a thickness step, a supply change, a gain change and a new cycler, a restored plant gives the same force", arguments: ["spring", "pneumatic"])
    func fullState(actuator: String) throws {
        let (a, params) = simPlant(actuator, seed: 3)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: a.presentOutput), backend: a)
        try loop.controller.setTarget(5)
        loop.run(for: 20)
        a.inject(SimInjection(current: 3, cyclePeriod: 50, thicknessStep: 400))
        a.inject(SimInjection(supply: 0.6))
        a.inject(SimInjection(forceBias: 2))
        loop.run(for: 10)
        let saved = try #require(a.persistentState())
        let (b, _) = simPlant(actuator, seed: 3)
        b.restore(saved)
        // Both plants, left at the same output, settle at the same force.
        let out = a.presentOutput ?? 0
        // The restored plant's clock starts again at 0, as after a restart.
        for k in 1...300 {
            let ta = loop.now + Double(k) * 0.01, tb = Double(k) * 0.01
            a.apply(output: out, now: ta); b.apply(output: out, now: tb)
            _ = a.read(now: ta); _ = b.read(now: tb)
        }
        let fa = a.trueForce, fb = b.trueForce
        #expect(abs(fa - fb) <= 0.01 * fa, "\(actuator): original \(fa) N, restored \(fb) N")
        #expect(b.cycler == a.cycler)
    }
}
