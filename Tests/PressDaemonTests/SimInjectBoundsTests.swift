import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// Found by a tester: `sim_inject` with `stall_s` ≥ 4295 crashed pressd (a trap
/// converting the stall to microseconds), dropping every channel without its shutdown
/// action. Out-of-range injections are now refused, naming the parameter.
@Suite("sim_inject refuses what would break the simulator")
struct SimInjectBoundsTests {
    @Test("a stall of hours, a negative gain, a non-finite or absurd value: invalid_params naming the key; the daemon keeps running")
    func bounds() async throws {
        try await withRig { rig in
            let c = try rig.client()
            for (key, value) in [("stall_s", "1e9"), ("stall_s", "4295"), ("stall_s", "-1"), ("force_gain", "-1e308"),
                                 ("cycle_period_s", "1e30"), ("thickness_step_um", "1e30"), ("supply_mpa", "-3")] {
                let reply = try c.rawCall(#"{"id":"k","method":"sim_inject","params":{"channel":"A",""# + key + #"":"# + value + "}}")
                #expect(reply.errorCode == "invalid_params", "\(key) = \(value): \(reply)")
                #expect(reply.errorMessage?.contains(key) == true, "\(key) = \(value): \(reply.errorMessage ?? "")")
                #expect(reply["id"] as? String == "k")
            }
            // In bounds is accepted, and the loop still runs.
            #expect(try c.rawCall(#"{"id":1,"method":"sim_inject","params":{"channel":"A","stall_s":0.01,"force_gain":1}}"#).errorCode == nil)
            let t0 = try c.status().loop.ticks
            usleep(300_000)
            #expect(try c.status().loop.ticks > t0)
        }
    }
}
