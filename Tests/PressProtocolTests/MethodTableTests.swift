import Foundation
import Testing
@testable import PressProtocol

@Suite("The method table is the protocol's one vocabulary")
struct MethodTableTests {
    static let protocolDoc: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)) ?? ""
    }()

    @Test("every method has a section in docs/protocol.md naming its role where it is not observer, and every parameter is documented")
    func documented() throws {
        let doc = Self.protocolDoc
        #expect(!doc.isEmpty)
        let headers = doc.split(separator: "\n").filter { $0.hasPrefix("### ") }
        for m in MethodTable.all {
            let header = headers.first { $0.contains("`\(m.name)`") }
            #expect(header != nil, "docs/protocol.md has no section for \(m.name)")
            for key in m.parameters { #expect(doc.contains("`\(key)`") || doc.contains("\"\(key)\""), "\(m.name): parameter \(key) not in docs/protocol.md") }
        }
        // Every documented method exists.
        for h in headers where h.contains("`") && doc.range(of: "## Methods")!.lowerBound < doc.range(of: String(h))!.lowerBound {
            let names = h.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            for n in names { #expect(MethodTable.byName[n] != nil, "docs/protocol.md documents \(n), which the table does not have") }
        }
    }

    @Test("hello's list, the decoder's parameter keys and the roles all come from the table")
    func derived() {
        #expect(ControlProtocol.methods == MethodTable.all.map(\.name))
        #expect(Set(RequestDecoder.parameterKeys.keys) == Set(MethodTable.all.map(\.name)))
        #expect(MethodTable.byName.count == MethodTable.all.count, "duplicate method names")
        // What the audit trail records: exactly the state-changing methods.
        #expect(Set(MethodTable.all.filter(\.audited).map(\.name)) == ["set", "hold", "gap", "release", "ack", "program_start", "program_pause",
                                                                         "program_resume", "program_stop", "run_set", "reload", "sim_inject",
                                                                         "calibrate", "tune", "sweep", "supervisor"])
        // Nothing that changes state is open to an observer.
        for m in MethodTable.all where m.audited { #expect(m.role >= .operator, "\(m.name)") }
    }

    @Test("every row decodes a request with its documented parameters into a command for the same channel")
    func rowsDecode() throws {
        let samples: [String: String] = [
            "set": #"{"channel":"A","value":5,"unit":"MPa"}"#, "program_start": #"{"channel":"A","program":"x"}"#,
            "subscribe": #"{"rate_hz":10}"#, "unsubscribe": #"{"subscription":1}"#,
            "log_export": #"{"since":0,"until":1}"#, "log_events": #"{"since":0,"until":1}"#, "sweeps": #"{"since":0,"until":1}"#,
            "run_set": #"{"channel":"A","metadata":{"cell_id":"x"}}"#, "calibrate": #"{"channel":"A","action":"tare"}"#,
            "tune": #"{"channel":"A","action":"start"}"#, "sweep": #"{"channel":"A","action":"cancel"}"#,
            "supervisor": #"{"channel":"A","action":"lock"}"#, "push_signals": #"{"channel":"A","temperature_c":25}"#,
            "sim_inject": #"{"channel":"A"}"#,
        ]
        for m in MethodTable.all {
            let params = samples[m.name] ?? (m.parameters.contains("channel") ? #"{"channel":"A"}"# : "{}")
            let line = #"{"id":1,"method":""# + m.name + #"","params":"# + params + "}"
            let (_, method, result) = RequestDecoder().decode(Data(line.utf8))
            #expect(method == m.name)
            switch result {
            case .success(let c):
                if m.parameters.contains("channel"), params.contains("\"A\"") { #expect(c.channel == "A", "\(m.name)") }
            case .failure(let e): Issue.record("\(m.name): \(e.message)")
            }
        }
    }
}
