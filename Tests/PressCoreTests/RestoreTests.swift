import Testing
@testable import PressCore

@Suite("Restart, saturation and emergency stop")
struct RestoreTests {
    let params = ChannelTests.params
    func reading(_ mpa: Double, _ t: Double) -> ChannelReadings { ChannelReadings(force: Sample(value: mpa * 100, time: t)) }

    @Test("a channel that was regulating resumes from the actuator's present output: the first ticks do not move it")
    func resumeBumpless() {
        var c = ChannelController(parameters: params, initialOutput: 2500)
        c.restore(mode: .regulating, target: 5, ramp: nil, faults: [])
        #expect(c.mode == .holding)
        var t = 0.0
        var outputs: [Double] = []
        for _ in 0..<5 { t += 0.01; outputs.append(c.step(now: t, readings: reading(5, t))) }
        #expect(c.mode == .regulating)
        #expect(c.target == 5)
        // At the setpoint, the output stays where the hardware is.
        #expect(outputs.allSatisfy { abs($0 - 2500) < 1e-6 })
    }

    @Test("an operator's release or hold while the restart's resume waits for a measurement cancels it: a later hold does not start regulating to the old target", arguments: ["release then hold", "hold"])
    func operatorCancelsResume(_ how: String) throws {
        var c = ChannelController(parameters: params, initialOutput: 2500)
        c.restore(mode: .regulating, target: 5, ramp: nil, faults: [])
        #expect(c.setpointOwner == .resume)
        if how == "hold" { try c.hold() } else { c.release(); try c.hold() }
        #expect(c.setpointOwner == .operator)
        var t = 0.0
        for _ in 0..<50 { t += 0.01; _ = c.step(now: t, readings: reading(3, t)) }
        #expect(c.mode == .holding, "\(how): \(c.mode)")
    }

    @Test("faults latched before a restart stay latched after it")
    func faultsSurvive() {
        var c = ChannelController(parameters: params, initialOutput: 0)
        let f = FaultRecord(code: .overPressure, message: "x", raisedAt: 1, active: true)
        c.restore(mode: .tripped, target: 5, ramp: nil, faults: [f])
        #expect(c.mode == .tripped)
        _ = c.step(now: 0.01, readings: reading(3, 0.01))
        #expect(c.faults.records.map(\.code) == [.overPressure])
        #expect(c.faults.records[0].active == false) // cause gone, still latched
        #expect(c.acknowledge().isEmpty)
        #expect(c.mode == .holding)
    }

    @Test("emergency stop releases at once and latches")
    func emergencyStop() throws {
        var c = ChannelController(parameters: params)
        _ = c.step(now: 0, readings: reading(0, 0))
        try c.setTarget(5)
        var t = 0.0
        for _ in 0..<20 { t += 0.01; _ = c.step(now: t, readings: reading(4, t)) }
        t += 0.01
        var r = reading(4, t); r.emergencyStop = true
        #expect(c.step(now: t, readings: r) == params.safeOutput)
        #expect(c.faults.activeCodes == [.emergencyStop])
    }

    @Test("a travel limit switch holds the actuator and latches")
    func limitSwitch() throws {
        var c = ChannelController(parameters: params)
        _ = c.step(now: 0, readings: reading(0, 0))
        try c.setTarget(5)
        var t = 0.0
        for _ in 0..<20 { t += 0.01; _ = c.step(now: t, readings: reading(4, t)) }
        let before = c.pid.output
        t += 0.01
        var r = reading(4, t); r.limitSwitch = true
        #expect(c.step(now: t, readings: r) == before)
        #expect(c.mode == .tripped)
        #expect(c.faults.activeCodes == [.limitSwitch])
    }

    @Test("cannot reach setpoint: after the timeout the output goes back to the last output that held the band")
    func saturation() throws {
        var p = params
        p.limits.saturationTimeout = 5
        p.pid.outputMax = 3000
        var c = ChannelController(parameters: p)
        _ = c.step(now: 0, readings: reading(0, 0))
        try c.setTarget(5)
        // A plant whose pressure follows the output (0.002 MPa/µm) until a supply cap.
        var t = 0.0, pressure = 0.0
        var cap = 100.0
        var good: Double?
        for k in 0..<3000 {
            t += 0.01
            if k == 1000 { cap = 3.0; good = c.pid.output } // the supply drops: 3 MPa at most
            // A live load cell: its last digit dithers (an exactly constant reading is
            // a frozen transmitter, another fault).
            let out = c.step(now: t, readings: reading(pressure + (k % 2 == 0 ? 0.0005 : -0.0005), t))
            pressure = min(out * 0.002, cap)
            if c.mode == .tripped { break }
        }
        #expect(c.mode == .tripped)
        #expect(c.faults.activeCodes == [.cannotReachSetpoint])
        #expect(abs(c.pid.output - good!) < 30) // back near the output that held 5 MPa, not at the 3000 µm limit
        // The integrator did not wind up while saturated.
        #expect(c.pid.integral < 3000 + 1e-6)
    }
}

@Suite("Fault actions")
struct FaultActionTests {
    @Test("trip_action = ramp: the channel stays closed-loop and ramps down to the safe pressure")
    func rampToSafe() throws {
        var p = ChannelTests.params
        p.limits = PressureLimits(minSetpoint: 0.5, maxSetpoint: 10, trip: 12, tripAction: .ramp, safePressure: 6, safeRamp: 1)
        var c = ChannelController(parameters: p)
        var pressure = 0.0, t = 0.0
        _ = c.step(now: 0, readings: ChannelReadings(force: Sample(value: 0, time: 0)))
        try c.setTarget(9)
        var trace: [(Double, Double, ChannelMode)] = []
        for k in 0..<3000 {
            t += 0.01
            // A plant whose pressure follows the output; at k=1500 it swells by 4 MPa.
            let out = c.step(now: t, readings: ChannelReadings(force: Sample(value: pressure * 100, time: t)))
            pressure = out * 0.002 + (k >= 1500 ? 4 : 0)
            trace.append((t, pressure, c.mode))
        }
        #expect(c.mode == .tripped)
        #expect(c.rampingToSafe)
        #expect(abs(pressure - 6) < 0.1) // reachable: the swelling adds 4 MPa at zero output
        // It came down at about the safe ramp rate, not at once.
        let tripT = trace.first { $0.2 == .tripped }!.0
        let at3s = trace.first { $0.0 >= tripT + 3 }!.1
        #expect(at3s > 7 && at3s < 11)
    }
}
