import Testing
@testable import PressCore
@testable import PressSim

/// Found by a tester: a reload that lowered max_mpa below the setpoint moved the
/// setpoint with no event: the run log still said 5 MPa while the channel held 4.
@Suite("Reloaded limits that move the setpoint say so")
struct ReloadClampTests {
    @Test("max_mpa lowered below the setpoint: the setpoint moves to the new max, with a setpoint event and a config event naming both values; the pressure follows")
    func clampIsRecorded() throws {
        var (sim, params) = simPlant("spring", seed: 5)
        var loop = ClosedLoop(controller: ChannelController(parameters: params, initialOutput: sim.presentOutput), backend: sim)
        loop.run(for: 1)
        try loop.controller.setTarget(5)
        loop.run(for: 20)
        _ = loop.controller.drainEvents()
        params.limits.maxSetpoint = 4
        loop.controller.reconfigure(params)
        let events = loop.controller.drainEvents()
        #expect(loop.controller.target == 4)
        #expect(events.contains { if case .setpointChanged(4, _) = $0 { return true }; return false }, "\(events)")
        #expect(events.contains { if case .configuration(let m) = $0 { return m.contains("5.0") && m.contains("4.0") }; return false }, "\(events)")
        loop.run(for: 20)
        #expect(abs((loop.controller.state.pressure ?? 0) - 4) <= 0.2)
        // Limits that still contain the setpoint change nothing and say nothing.
        params.limits.maxSetpoint = 6
        loop.controller.reconfigure(params)
        #expect(loop.controller.drainEvents().isEmpty)
        #expect(loop.controller.target == 4)
    }
}
