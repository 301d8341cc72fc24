import Foundation
import Testing
import PressCore
import PressProtocol
import PressSim
@testable import PressDaemon

/// Issue 26: what the operator sees of the `mpc` law in `status`.
@Suite("mpc in status")
struct MPCStatusTests {
    @Test("control.mpc carries the model, its prediction error and confidence under their wire names; other strategies have none")
    func wire() throws {
        var p = SimPresets.pneumaticController()
        p.strategy = .mpc
        var loop = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0), backend: SimPresets.pneumaticChannel())
        try loop.controller.setTarget(2)
        loop.run(for: 20)
        let info = StatusMapping.control(loop.controller.state.control, now: loop.now, target: 2)
        #expect(info.strategy == "mpc" && info.active == "mpc")
        let m = try #require(info.mpc)
        #expect(m.source == "nominal" && abs(m.deadTimeS - 0.05) < 1e-9 && m.timeConstantS == 0.2 && abs(m.horizonS - 0.85) < 1e-9 && m.active && m.handovers == 0, "\(m)")
        #expect(m.gain > 0 && m.predictionErrorMpa < 0.1 && m.confidence > 0.5, "\(m)")
        let json = String(decoding: try ControlProtocol.encoder().encode(info), as: UTF8.self)
        for key in ["\"mpc\":{", "\"prediction_error_mpa\":", "\"dead_time_s\":", "\"time_constant_s\":", "\"horizon_s\":", "\"confidence\":", "\"handovers\":0"] {
            #expect(json.contains(key), "\(key) in \(json)")
        }
        var q = SimPresets.pneumaticController()
        q.strategy = .adaptive
        let other = ChannelController(parameters: q, initialOutput: 0)
        #expect(StatusMapping.control(other.state.control, now: 0, target: nil).mpc == nil)
    }
}
