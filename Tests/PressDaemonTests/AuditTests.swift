import Foundation
import Testing
import PressProtocol

/// protocol.md: every state-changing request, and every refused one, is in the audit
/// trail. Found by a tester: only permission refusals were marked; a `set` refused as
/// out of range was stored as if accepted, and a refusal at decoding was not stored.
@Suite("The audit trail says how each state-changing request ended", .serialized)
struct AuditTests {
    @Test("accepted, out of range, refused at decoding, refused by the loop: each recorded once, the refusals as REFUSED with the error code; reads are not recorded")
    func outcomes() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        #expect(try c.rawCall(#"{"id":1,"method":"set","params":{"channel":"A","value":3,"unit":"MPa"}}"#).errorCode == nil)
        #expect(try c.rawCall(#"{"id":2,"method":"set","params":{"channel":"A","value":40,"unit":"MPa"}}"#).errorCode == "out_of_range")
        #expect(try c.rawCall(#"{"id":3,"method":"ack","params":{"force":true}}"#).errorCode == "invalid_params")
        #expect(try c.rawCall(#"{"id":4,"method":"program_pause","params":{"channel":"A"}}"#).errorCode == "no_program")
        #expect(try c.rawCall(#"{"id":5,"method":"status"}"#).errorCode == nil)
        usleep(300_000)
        d.stop()
        let requests = try PressLogProbe.events(dir: d.dir).filter { $0.kind == "request" }
        let details = requests.map(\.detail)
        #expect(details.filter { $0.contains("\"value\":3") }.count == 1)
        #expect(details.contains { $0.contains("\"value\":3") && !$0.hasPrefix("REFUSED") })
        #expect(details.contains { $0.hasPrefix("REFUSED (out_of_range") && $0.contains("\"value\":40") }, "\(details)")
        #expect(details.contains { $0.hasPrefix("REFUSED (invalid_params") && $0.contains("\"force\"") }, "\(details)")
        #expect(details.contains { $0.hasPrefix("REFUSED (no_program") && $0.contains("program_pause") }, "\(details)")
        #expect(!details.contains { $0.contains("\"status\"") })
        #expect(requests.allSatisfy { $0.uid == Int(getuid()) })
    }
}
