import Testing
@testable import PressCore

/// Who may take a channel's setpoint from whom. The expected table is written from what
/// the channel must do, not from the implementation: a changed rule fails here.
@Suite("Setpoint arbiter: pre-emption rules")
struct SetpointArbiterTests {
    enum Want: Equatable {
        /// The requester owns the setpoint afterwards (a handover event when it changed).
        case take
        /// The supervisor becomes the fallback: the owner stays, no event; it takes over
        /// when the owner ends.
        case wait
        /// Refused with this text (or `faultLatched` for the safety override).
        case refuse(String)
        case latched
    }

    static let order: [SetpointOwner] = [.operator, .supervisor, .resume, .program, .sweep, .autotune, .safety]

    /// Rows: the present owner. Columns: the requester, in `order`.
    static let table: [SetpointOwner: [Want]] = {
        let held = { (s: String) in Want.refuse(s) }
        let program = held("a program is loaded; stop it first")
        let autotune = held("an autotune is running; cancel it first")
        let sweep = held("a sweep is running; cancel it first")
        let resume = held("the channel is resuming after a restart; wait for the first measurement")
        return [
            //             operator supervisor resume    program sweep                            autotune                             safety
            .operator:   [.take,   .take,     .take,    .take,   .take,                           .take,                               .take],
            .supervisor: [.take,   .take,     .take,    .take,   .take,                           .take,                               .take],
            .resume:     [.take,   .wait,     .take,    .take,   resume,                          resume,                              .take],
            .program:    [.take,   .wait,     program,  .take,   program,                         program,                             .take],
            .sweep:      [.take,   .wait,     sweep,    .take,   held("a sweep is already running; cancel it first to start another"), sweep,                            .take],
            .autotune:   [.take,   .wait,     autotune, .take,   autotune,                        held("an autotune is already running; cancel it first to start another"), .take],
            .safety:     [.latched, .wait,    .latched, .latched, .latched,                       .latched,                            .take],
        ]
    }()

    /// An arbiter with `owner` in charge.
    static func arbiter(owner: SetpointOwner) -> SetpointArbiter {
        var a = SetpointArbiter(supervisor: owner == .supervisor)
        if owner != .operator && owner != .supervisor { _ = a.request(owner) }
        #expect(a.owner == owner)
        return a
    }

    @Test("every owner × requester: taken, deferred or refused, and the handover reported",
          arguments: order)
    func table(current: SetpointOwner) throws {
        // A new owner must get its row and column here.
        #expect(Self.order.count == SetpointOwner.allCases.count && Set(Self.order).count == Self.order.count)
        let row = try #require(Self.table[current])
        try #require(row.count == Self.order.count)
        for (requester, want) in zip(Self.order, row) {
            var a = Self.arbiter(owner: current)
            let ctx = "\(requester) over \(current)"
            switch (a.request(requester), want) {
            case (.success(let g), .take):
                #expect(a.owner == requester, "\(ctx)")
                #expect(g.handover == (requester == current ? nil : SetpointHandover(from: current, to: requester)), "\(ctx)")
            case (.success(let g), .wait):
                #expect(a.owner == current && g.handover == nil && g.ended.isEmpty, "\(ctx)")
                #expect(a.fallback == .supervisor, "\(ctx)")
                // When the owner ends, the supervisor takes over.
                #expect(a.end(current) == SetpointHandover(from: current, to: .supervisor), "\(ctx)")
            case (.failure(let why), .refuse(let text)):
                #expect(why.message == text, "\(ctx)")
                #expect(a.owner == current, "\(ctx): a refusal changes nothing")
            case (.failure(let why), .latched):
                #expect(why == .safetyActive, "\(ctx)")
                #expect(a.owner == .safety, "\(ctx)")
            case (let got, _):
                Issue.record("\(ctx): got \(got), want \(want)")
            }
        }
    }

    @Test("the operator's set ends the task and locks an unlocked supervisor")
    func operatorEndsEverything() {
        var a = SetpointArbiter(supervisor: true)
        _ = a.request(.program)
        let g = try? a.request(.operator).get()
        #expect(g?.ended == [.program, .supervisor])
        #expect(g?.handover == SetpointHandover(from: .program, to: .operator))
        #expect(a.owner == .operator && a.fallback == .operator)
        // A program replacing a program ends nothing; one replacing a sweep ends it.
        _ = a.request(.program)
        #expect((try? a.request(.program).get())?.ended == [])
        var b = SetpointArbiter()
        _ = b.request(.sweep)
        #expect((try? b.request(.program).get())?.ended == [.sweep])
    }

    @Test("a task that ends hands the setpoint back to the fallback; the safety override returns to what it covered")
    func endsAndOverride() {
        var a = SetpointArbiter(supervisor: true)
        _ = a.request(.sweep)
        _ = a.request(.safety)
        #expect(a.owner == .safety)
        // The sweep ends under the override: no handover (the safety still owns it).
        #expect(a.end(.sweep) == nil)
        #expect(a.end(.safety) == SetpointHandover(from: .safety, to: .supervisor))
        // Ending an owner that is not in charge changes nothing.
        #expect(a.end(.program) == nil && a.owner == .supervisor)
        #expect(a.end(.supervisor) == SetpointHandover(from: .supervisor, to: .operator))
        #expect(a.end(.operator) == nil && a.owner == .operator)
    }
}

/// The same rules through the channel's commands, with their error texts and events.
@Suite("Setpoint ownership on the channel")
struct ChannelOwnershipTests {
    static let params: ChannelParameters = {
        var p = ChannelTests.params
        p.limits.tripAction = .ramp
        return p
    }()

    /// Settled in band at `mpa` with an interfacial-resistance signal.
    static func reading(_ mpa: Double, _ t: Double) -> ChannelReadings {
        ChannelReadings(force: Sample(value: mpa * 100, time: t), interfacialResistance: Sample(value: 20, time: t))
    }

    static func settled(at mpa: Double = 5) throws -> (ChannelController, Double) {
        var c = ChannelController(parameters: params)
        var t = 0.0
        _ = c.step(now: t, readings: reading(mpa, t))
        try c.setTarget(mpa)
        for _ in 0..<20 { t += 0.01; _ = c.step(now: t, readings: reading(mpa, t)) }
        _ = c.drainEvents()
        return (c, t)
    }

    static func handovers(_ events: [ChannelEvent]) -> [SetpointHandover] {
        events.compactMap { if case .setpointOwner(let h) = $0 { return h }; return nil }
    }

    static let sweep = SweepSettings(from: 5, to: 2, steps: 6, dwell: 10)
    static let program = PressureProgram(name: "p", steps: [.hold(mpa: 5, duration: 100)])

    func rejection(_ f: () throws -> Void) -> CommandRejection? {
        do { try f(); return nil } catch { return error as? CommandRejection }
    }

    @Test("a sweep refuses experiments, a program ends it, the operator ends the program")
    func sweepProgramOperator() throws {
        var (c, _) = try Self.settled()
        try c.startSweep(Self.sweep)
        #expect(c.setpointOwner == .sweep && c.state.control.setpointOwner == .sweep)
        #expect(Self.handovers(c.drainEvents()) == [SetpointHandover(from: .operator, to: .sweep)])
        #expect(rejection { try c.startAutotune() } == .unsafe("a sweep is running; cancel it first"))
        #expect(rejection { try c.startSweep(Self.sweep) } == .unsafe("a sweep is already running; cancel it first to start another"))

        try c.startProgram(Self.program)
        #expect(c.sweep == nil && c.lastSweep != nil && c.setpointOwner == .program)
        let e = c.drainEvents()
        #expect(e.contains { if case .sweepFinished(let r) = $0 { return r.status == .aborted }; return false })
        #expect(Self.handovers(e) == [SetpointHandover(from: .sweep, to: .program)])
        #expect(rejection { try c.startAutotune() } == .unsafe("a program is loaded; stop it first"))
        #expect(rejection { try c.startSweep(Self.sweep) } == .unsafe("a program is loaded; stop it first"))

        try c.setTarget(4)
        #expect(c.program == nil && c.setpointOwner == .operator)
        let e2 = c.drainEvents()
        #expect(e2.contains { if case .programState(_, .stopped, "operator set a setpoint") = $0 { return true }; return false })
        #expect(Self.handovers(e2) == [SetpointHandover(from: .program, to: .operator)])
    }

    @Test("an autotune refuses a sweep and a second autotune; the operator's set cancels it")
    func autotune() throws {
        var (c, _) = try Self.settled()
        try c.startAutotune()
        #expect(c.setpointOwner == .autotune && c.activeControl == .autotune && c.state.control.active == "autotune")
        #expect(rejection { try c.startSweep(Self.sweep) } == .unsafe("an autotune is running; cancel it first"))
        #expect(rejection { try c.startAutotune() } == .unsafe("an autotune is already running; cancel it first to start another"))
        _ = c.drainEvents()
        try c.setTarget(4)
        #expect(c.autotuner == nil && c.activeControl == .pid && c.setpointOwner == .operator)
        let e = c.drainEvents()
        #expect(e.contains { if case .autotune(.cancelled, "operator set a setpoint") = $0 { return true }; return false })
        #expect(Self.handovers(e) == [SetpointHandover(from: .autotune, to: .operator)])
    }

    @Test("a ramp safe action owns the setpoint until released; commands are refused as latched")
    func safety() throws {
        var (c, t) = try Self.settled()
        t += 0.01
        _ = c.step(now: t, readings: Self.reading(12.5, t))
        #expect(c.mode == .tripped && c.rampingToSafe && c.setpointOwner == .safety)
        #expect(Self.handovers(c.drainEvents()) == [SetpointHandover(from: .operator, to: .safety)])
        #expect(rejection { try c.setTarget(5) } == .faultLatched([.overPressure]))
        #expect(rejection { try c.startProgram(Self.program) } == .faultLatched([.overPressure]))
        c.release()
        #expect(!c.rampingToSafe && c.setpointOwner == .operator)
        #expect(Self.handovers(c.drainEvents()) == [SetpointHandover(from: .safety, to: .operator)])
    }

    @Test("a resume after a restart owns the setpoint until the first measurement; the operator's set drops it")
    func resume() throws {
        var c = ChannelController(parameters: Self.params, initialOutput: 300)
        c.restore(mode: .regulating, target: 5, ramp: nil, faults: [])
        #expect(c.setpointOwner == .resume)
        _ = c.step(now: 0, readings: Self.reading(4.9, 0))
        #expect(c.mode == .regulating && c.setpointOwner == .operator)
        #expect(Self.handovers(c.drainEvents()) == [SetpointHandover(from: .operator, to: .resume), SetpointHandover(from: .resume, to: .operator)])

        // Dropped by a set before it applied: a later hold does not bring back the old target.
        var d = ChannelController(parameters: Self.params, initialOutput: 300)
        d.restore(mode: .regulating, target: 5, ramp: nil, faults: [])
        try d.setTarget(3)
        #expect(d.setpointOwner == .operator)
        try d.hold()
        var t = 0.0
        for _ in 0..<5 { _ = d.step(now: t, readings: Self.reading(3, t)); t += 0.01 }
        #expect(d.mode == .holding && d.target == 3)
    }
}
