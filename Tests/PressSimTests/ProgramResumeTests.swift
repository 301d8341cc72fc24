import Testing
@testable import PressCore
@testable import PressSim

/// Found by a tester: `program resume` after `hold`, `release` or an acknowledged trip
/// said "running" but left the channel holding or released until the program's next
/// setpoint change (a one-hour hold step would run out with nothing regulated).
@Suite("A resumed program regulates again")
struct ProgramResumeTests {
    enum Interruption: String, CaseIterable { case hold, release, tripAndAck }

    @Test("after hold, release, or a trip and its acknowledgement, program resume regulates at the program's setpoint within a tick and holds it", arguments: Interruption.allCases)
    func resumeRegulates(_ how: Interruption) throws {
        let (sim, params) = simPlant("spring", seed: 21)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.startProgram(PressureProgram(name: "long hold", steps: [.set(mpa: 4, ramp: nil), .hold(mpa: nil, duration: 3600)]))
        loop.run(for: 20)
        #expect(loop.controller.mode == .regulating)
        switch how {
        case .hold: try loop.controller.hold()
        case .release: loop.controller.release()
        case .tripAndAck:
            sim.inject(SimInjection(sensorDisconnected: true))
            loop.run(for: 1)
            #expect(loop.controller.mode == .tripped)
            sim.inject(SimInjection(sensorDisconnected: false))
            loop.run(for: 3)
            // Automatic recovery may already have resumed it; otherwise acknowledge.
            if loop.controller.mode == .tripped { _ = loop.controller.acknowledge() }
        }
        loop.run(for: 5)
        if loop.controller.program?.state == .paused {
            #expect(loop.controller.mode != .regulating)
            try loop.controller.resumeProgram()
        }
        _ = loop.tick()
        #expect(loop.controller.mode == .regulating, "\(how): \(loop.controller.mode) after program resume")
        #expect(loop.controller.target == 4)
        var inBand = 0, n = 0
        loop.run(for: 30) { s in
            n += 1
            if let p = s.pressure, abs(p - 4) <= 0.2 { inBand += 1 }
        }
        #expect(Double(inBand) / Double(n) > 0.5, "\(how): in band \(inBand) of \(n) ticks in the 30 s after resuming")
        #expect(loop.controller.program?.state == .running)
    }
}

/// Found by a tester: `program start` on a released channel whose old setpoint was
/// still stored began a ramp step from that old setpoint, so a ramp to it "finished" at
/// once and the next step's clock ran while the pressure was still far away.
@Suite("A program started on a released channel ramps from the measured pressure")
struct ProgramStartReleasedTests {
    @Test("ramp 0 → 4 MPa at 0.1 MPa/s on a channel released from 4 MPa takes about 40 s, and the pressure follows the ramp")
    func rampFromMeasured() throws {
        let (sim, params) = simPlant("spring", seed: 22)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(4)
        loop.run(for: 30)
        loop.controller.release()
        loop.run(for: 30)
        let before = try #require(loop.controller.state.pressure)
        #expect(before < 1, "released: the pressure fell to \(before) MPa")
        try loop.controller.startProgram(PressureProgram(name: "ramp", steps: [.ramp(to: 4, rate: 0.1), .hold(mpa: nil, duration: 600)]))
        var stepAt: Double?
        var worstLag = 0.0
        for i in 1...6000 {
            let s = loop.tick()
            let t = Double(i) * loop.period
            if stepAt == nil, loop.controller.program?.index == 1 { stepAt = t }
            if let p = s.pressure, stepAt == nil { worstLag = max(worstLag, abs(p - min(4, before + 0.1 * t))) }
        }
        let took = try #require(stepAt, "the ramp step did not end within 60 s")
        #expect(took > 30 && took < 45, "the ramp step took \(took) s; from \(before) MPa at 0.1 MPa/s it should take about \((4 - before) / 0.1) s")
        #expect(worstLag < 0.5, "the pressure lagged the ramp by up to \(worstLag) MPa")
    }
}
