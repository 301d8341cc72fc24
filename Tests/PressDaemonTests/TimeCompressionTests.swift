import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// Issue 22: the default simulated rig run at `--time-scale 200` swung channel B between
/// 0.16 and 4.36 MPa on a 2 MPa setpoint. At ×200 one period of the loop is 50 µs of
/// wall time: whenever the host is late (another process, a page fault), the loop used to
/// skip ahead on the scaled clock, so the plant ran for seconds of its own time with the
/// output frozen and the controllers then integrated over that whole stretch at once.
/// A simulator must not hand the controllers a plant that jumped: its clock advances one
/// period per tick and slips behind the wall clock when the host cannot keep up.
@Suite("Time-compressed simulation")
struct TimeCompressionTests {
    @Test("host stalls at ×200 slip the simulated clock instead of jumping the plant: no excursion")
    func stallsSlipTheClock() async throws {
        try await withRig(timeScale: 200) { rig in
            let c = try rig.client()
            _ = try c.rawCall(#"{"id":1,"method":"set","params":{"channel":"A","value":5,"unit":"MPa"}}"#)
            _ = try c.rawCall(#"{"id":2,"method":"set","params":{"channel":"B","value":2,"unit":"MPa"}}"#)
            sleep(seconds: rig.wall(150))
            let before = try c.status()
            // Each stall blocks the control thread for 0.1 s of wall time: 20 s of plant
            // time at ×200, far longer than any period of the loop.
            for k in 0..<8 {
                let ch = k % 2 == 0 ? "A" : "B"
                let r = try c.rawCall(#"{"id":3,"method":"sim_inject","params":{"channel":"\#(ch)","stall_s":0.1}}"#)
                #expect(r.errorCode == nil)
                sleep(seconds: 0.15)
            }
            sleep(seconds: rig.wall(30))
            let after = try c.status()
            for name in ["A", "B"] {
                let b = try #require(before.channels.first { $0.name == name })
                let a = try #require(after.channels.first { $0.name == name })
                #expect(a.mode == "regulating", "\(name): \(a.mode) \(a.faults)")
                #expect(a.excursions?.count == b.excursions?.count,
                        "\(name): \((a.excursions?.count ?? 0) - (b.excursions?.count ?? 0)) new excursions, worst \(a.excursions?.worstAbsErrorMpa ?? 0) MPa")
            }
            // The plant time the host could not simulate in time is reported, not skipped.
            #expect((after.loop.slippedS ?? 0) >= 0.8 * 8 * 0.1 * 200, "slipped \(after.loop.slippedS ?? 0) s")
        }
    }
}
