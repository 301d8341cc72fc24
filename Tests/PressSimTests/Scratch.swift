import Testing
import PressCore
@testable import PressSim

@Test func scratchTune() throws {
    for (name, backend, params) in [("A", SimPresets.springChannel(), SimPresets.springController()),
                                     ("B", SimPresets.pneumaticChannel(), SimPresets.pneumaticController())] {
        var loop = ClosedLoop(controller: ChannelController(parameters: params), backend: backend)
        loop.run(for: 1)
        try loop.controller.setTarget(5)
        var t = 0.0
        var firstIn: Double?
        var maxErr = 0.0, out = 0, n = 0, peak = 0.0
        loop.run(for: 70) { s in
            t += 0.01
            let p = s.pressure ?? 0
            peak = max(peak, p)
            if firstIn == nil, abs(p - 5) < 0.25 { firstIn = t }
            if t > 10 { n += 1; maxErr = max(maxErr, abs(p-5)); if abs(p-5) > 0.25 { out += 1 } }
            if Int(t*100) % 100 == 0 && t < 6 { print(name, t, p, s.output, s.mode) }
        }
        print(name, "firstIn", firstIn ?? -1, "peak", peak, "maxErr", maxErr, "out", out, "of", n)
    }
}
