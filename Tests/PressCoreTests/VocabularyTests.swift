import Foundation
import Testing
@testable import PressCore

/// The typed vocabulary keeps its wire and persisted spelling.
@Suite("Typed vocabulary and units")
struct VocabularyTests {
    @Test("what computes the output and who owns the setpoint keep their status spelling")
    func spellings() {
        #expect(ActiveControl.allCases.map(\.rawValue) == ["pid", "adaptive", "learned", "autotune", "mpc"])
        #expect(SetpointOwner.allCases.map(\.rawValue) == ["operator", "supervisor", "resume", "program", "sweep", "autotune", "safety"])
        #expect(ExcursionCause.allCases.map(\.rawValue) == ["fault", "saturation", "setpoint_change", "disturbance", "injected"])
    }

    @Test("an excursion record is persisted with its cause under the key `cause`, as before")
    func excursionCoding() throws {
        let x = ExcursionRecord(start: 1, end: 2, setpoint: 5, worstError: -0.5, kind: .setpointChange)
        let json = try #require(String(data: JSONEncoder().encode(x), encoding: .utf8))
        #expect(json.contains("\"cause\":\"setpoint_change\""), "\(json)")
        let old = #"{"start":1,"end":2,"setpoint":5,"worstError":-0.5,"cause":"fault"}"#
        let back = try JSONDecoder().decode(ExcursionRecord.self, from: Data(old.utf8))
        #expect(back.kind == .fault && back.cause == "fault")
    }

    @Test("force ↔ pressure: 1 MPa on 1 cm² is 100 N, the channel's conversions agree")
    func units() {
        #expect(StackUnits.pressure(force: 500, area: 2) == 2.5)
        #expect(StackUnits.force(pressure: 2.5, area: 2) == 500)
        let p = ChannelTests.params
        #expect(p.pressure(fromForce: 730) == StackUnits.pressure(force: 730, area: p.cellArea))
        #expect(p.force(fromPressure: 7.3) == StackUnits.force(pressure: 7.3, area: p.cellArea))
    }
}
