import Testing
import PressCore
import PressSim
@testable import PressDaemon

/// The simulated plant read through two load cells that share its force 30/70 (a
/// tilted plate).
final class SplitLoadCells: ChannelBackend {
    let inner: SimChannel
    init(_ inner: SimChannel) { self.inner = inner }
    func read(now: Double) -> ChannelReadings {
        var r = inner.read(now: now)
        if let f = r.force?.value { r.loadCellForces = [0.3 * f, 0.7 * f] }
        return r
    }
    func apply(output: Double, now: Double) { inner.apply(output: output, now: now) }
    var presentOutput: Double? { inner.presentOutput }
    func persistentState() -> [String: Double]? { inner.persistentState() }
    func restore(_ state: [String: Double]) { inner.restore(state) }
}

@Suite("Loop core (no threads, virtual time)")
struct LoopCoreTests {
    func core(_ edit: (String, String)? = nil) throws -> LoopCore {
        let text = try edit.map { try editedConfig($0.0, $0.1) } ?? defaultConfigText()
        return RigBuilder.simulated(try DaemonConfig.parse(text, file: "t.toml"))
    }

    @Test("shutdown leaves 'hold' actuators where they are and drives 'release' ones to their safe output")
    func shutdownActions() throws {
        var c = try core(("safe_output = 0           # vented\nshutdown = \"hold\"", "safe_output = 0\nshutdown = \"release\""))
        _ = c.apply(.set(channel: 0, mpa: 5, ramp: nil))
        _ = c.apply(.set(channel: 1, mpa: 5, ramp: nil))
        var t = 0.0
        for _ in 0..<1500 { t += 0.01; c.tick(now: t) }
        let a = try #require(c.channels[0].backend as? SimChannel)
        let b = try #require(c.channels[1].backend as? SimChannel)
        let aBefore = a.presentOutput!
        c.shutdown(now: t)
        #expect(a.presentOutput == aBefore)
        #expect(b.presentOutput == 0)
        // And the plant follows: B vents, A keeps its force.
        _ = a.read(now: t + 2); _ = b.read(now: t + 2)
        #expect(a.trueForce > 450)
        #expect(b.trueForce < 50)
    }

    @Test("a channel with a loop-rate divider runs on every n-th tick only")
    func divider() throws {
        var c = try core(("band_percent = 5", "band_percent = 5\nloop_rate_hz = 25"))
        for k in 1...8 { c.tick(now: Double(k) * 0.01) }
        #expect(abs(c.states[0].time - 0.05) < 1e-12) // ticks 1 and 5 ran: last at 0.05 s
        #expect(abs(c.states[1].time - 0.08) < 1e-12)
    }

    @Test("pushed signals replace the backend's until they go stale")
    func pushedSignals() throws {
        var c = try core(("band_percent = 5", "band_percent = 5\npushed_stale_after_s = 60"))
        var t = 0.0
        for _ in 0..<10 { t += 0.01; c.tick(now: t) }
        let own = try #require(c.states[0].readings.interfacialResistance?.value)
        _ = c.apply(.push(channel: 0, PushedSignals(interfacialResistance: 999, temperature: 31.5)))
        for _ in 0..<100 { t += 0.01; c.tick(now: t) }
        #expect(c.states[0].readings.interfacialResistance?.value == 999)
        #expect(c.states[0].readings.temperature?.value == 31.5)
        #expect(c.states[0].readings.current?.value != nil)       // not pushed: the backend's
        #expect(c.states[1].readings.interfacialResistance?.value != 999) // the other channel untouched
        for _ in 0..<6000 { t += 0.01; c.tick(now: t) }          // 60 s later: stale, the backend's again
        let after = try #require(c.states[0].readings.interfacialResistance?.value)
        #expect(after != 999 && abs(after / own - 1) < 0.5)
    }

    @Test("a pushed value carries its acquisition time on the loop's clock (scaled on a fast rig); a result register's time is the poll where it changed")
    func acquisitionTime() throws {
        var c = try core(("band_percent = 5", "band_percent = 5\npushed_stale_after_s = 600"))
        c.timeScale = 10
        var t = 0.0
        for _ in 0..<1000 { t += 0.01; c.tick(now: t) }
        _ = c.apply(.push(channel: 0, PushedSignals(interfacialResistance: 50, age: 0.5)))
        c.tick(now: t + 0.01)
        let s = try #require(c.states[0].readings.interfacialResistance)
        #expect(s.value == 50)
        #expect(abs(s.time - (t - 5)) < 0.02, "acquired 0.5 s ago on the wall clock = 5 s of loop time at ×10: \(s.time) vs \(t - 5)")

        var reg = MeasurementRegister()
        #expect(reg.observe(Sample(value: 20, time: 1)).time == 1)
        #expect(reg.observe(Sample(value: 20, time: 2)).time == 1, "polled again, same result: same measurement")
        #expect(reg.observe(Sample(value: 21, time: 3)).time == 3, "a new fit")
    }

    @Test("a cell voltage pushed once a second with the current: its collapse latches cell_short_suspected and ramps the channel down; the run log's samples carry the voltage")
    func pushedVoltageShort() throws {
        var c = try core(("band_percent = 5", "band_percent = 5\npushed_stale_after_s = 60"))
        _ = c.apply(.set(channel: 0, mpa: 5, ramp: nil))
        var t = 0.0
        var samples: [Double?] = []
        func run(_ seconds: Double, volts: Double) {
            for k in 0..<Int(seconds * 100) {
                if k % 100 == 0 { _ = c.apply(.push(channel: 0, PushedSignals(current: 1, voltage: volts))) }
                t += 0.01; c.tick(now: t)
                samples += c.takeSamples().filter { $0.channel == "A" }.map(\.voltage)
            }
        }
        run(40, volts: 3.731)
        #expect(c.states[0].readings.voltage?.value == 3.731)
        #expect(c.states[0].mode == .regulating)
        #expect(!c.states[0].faults.contains { $0.code == .cellShortSuspected })
        #expect(samples.contains(3.731))
        let p0 = try #require(c.states[0].pressure)
        run(3, volts: 3.2)
        let f = try #require(c.states[0].faults.first { $0.code == .cellShortSuspected }, "\(c.states[0].faults)")
        #expect(f.message.contains("3.731") && f.message.contains("3.2"), "\(f.message)")
        #expect(c.states[0].mode == .tripped)
        run(20, volts: 3.2)
        let p1 = try #require(c.states[0].pressure)
        #expect(p1 < p0 - 2, "pressure \(p0) → \(p1) MPa")
    }

    @Test("the command inbox is bounded and refuses when full")
    func inbox() {
        let inbox = CommandInbox(capacity: 3)
        for _ in 0..<3 { #expect(inbox.offer(PendingCommand(.hold(channel: 0)) { _ in })) }
        #expect(!inbox.offer(PendingCommand(.hold(channel: 0)) { _ in }))
        #expect(inbox.drain().count == 3)
        #expect(inbox.offer(PendingCommand(.hold(channel: 0)) { _ in }))
    }

    @Test("the event ring drops the oldest when full and counts them")
    func eventRing() {
        let ring = EventRing(capacity: 4)
        let e = LoopEvent(time: 0, channel: "A", event: .setpointChanged(target: 1, ramp: nil))
        ring.push(Array(repeating: e, count: 6))
        let (events, dropped) = ring.drain()
        #expect(events.count == 4)
        #expect(dropped == 2)
    }
}

@Suite("Calibration on the loop")
struct LoopCalibrationTests {
    @Test("tare and span correct a load cell reading 10 % high with a 30 N offset: the cell then gets its true 5 MPa")
    func correctsSensitivityAndOffset() throws {
        var c = RigBuilder.simulated(try DaemonConfig.parse(try defaultConfigText(), file: "t.toml"))
        let a = try #require(c.channels[0].backend as? SimChannel)
        a.inject(SimInjection(forceBias: 30))
        a.loadCell.gain = 1.1
        var t = 0.0
        func run(_ s: Double) { for _ in 0..<Int(s * 100) { t += 0.01; c.tick(now: t) } }
        run(2) // released: no load
        guard case .calibration(let tared) = c.apply(.calibrate(channel: 0, .tare)) else { Issue.record("tare failed"); return }
        #expect(abs(tared[0].offset - 30) < 0.5)
        _ = c.apply(.set(channel: 0, mpa: 5, ramp: nil))
        run(15)
        // Uncorrected gain: the loop holds the *reading* at 5 MPa, the cell gets ~5/1.1.
        #expect(abs(a.trueForce - 500 / 1.1) < 5)
        // A reference says the true load; span to it.
        guard case .calibration(let spanned) = c.apply(.calibrate(channel: 0, .span(knownNewtons: a.trueForce, cell: nil))) else { Issue.record("span failed"); return }
        #expect(abs(spanned[0].gain - 1 / 1.1) < 0.01)
        run(15)
        #expect(abs(a.trueForce - 500) < 5) // the cell now really is at 5 MPa
    }

    @Test("several load cells: each sample logs every cell's mean force over the period, and they add up to the total")
    func perLoadCellForces() throws {
        let cfg = try DaemonConfig.parse(try defaultConfigText(), file: "t.toml")
        let c0 = cfg.channels[0]
        let sim = RigBuilder.simulatedChannel(c0, seed: 1, substep: cfg.substep)
        var core = LoopCore(channels: [LoopChannel(controller: ChannelController(parameters: c0.control), backend: SplitLoadCells(sim), config: c0)])
        _ = core.apply(.set(channel: 0, mpa: 5, ramp: nil))
        var t = 0.0
        for _ in 0..<1500 { t += 0.01; core.tick(now: t) }
        let samples = core.takeSamples()
        let last = try #require(samples.last)
        let f = try #require(last.loadCellForces)
        #expect(f.count == 2)
        #expect(abs(f[0] / (f[0] + f[1]) - 0.3) < 1e-9, "\(f)")
        #expect(abs((f[0] + f[1]) - (last.force ?? 0)) < 0.05 * (last.force ?? 1), "the cells' means add up to about the total (\(f), \(last.force ?? 0))")
        #expect(abs((last.nonUniformity ?? 0) - (0.7 - 0.3) / 0.5) < 1e-9, "(max − min)/mean = 0.4/0.5")
    }
}
