import Foundation
import Testing
import PressCore
import PressProtocol

@Suite("The client's units and the core's agree")
struct UnitsAgreementTests {
    @Test("N and kN given to pressctl become the MPa the core computes from the same force", arguments: [0.5, 1.0, 2.0, 20.0])
    func forces(area: Double) {
        for newtons in [1.0, 250, 730, 2000, 40_000] {
            #expect(SetpointUnit.newton.toMPa(newtons, cellArea: area) == StackUnits.pressure(force: newtons, area: area))
            #expect(abs(SetpointUnit.kilonewton.toMPa(newtons / 1000, cellArea: area) - StackUnits.pressure(force: newtons, area: area)) < 1e-12)
        }
    }
}

@Suite("Event kinds")
struct EventKindsAgreementTests {
    @Test("every kind of event the daemon writes is one pressctl log events --kind accepts")
    func kindsListed() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var found = Set<String>()
        for dir in ["Sources/PressDaemon", "Sources/PressLog"] {
            for f in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(dir).path) where f.hasSuffix(".swift") {
                let text = try String(contentsOf: root.appendingPathComponent(dir).appendingPathComponent(f), encoding: .utf8)
                let re = try NSRegularExpression(pattern: #"kind: "([a-z_]+)""#)
                for m in re.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    found.insert(String(text[Range(m.range(at: 1), in: text)!]))
                }
            }
        }
        #expect(found.count >= 10, "the scan found \(found.sorted())")
        #expect(found.subtracting(EventKinds.all).isEmpty, "written but not listed: \(found.subtracting(EventKinds.all).sorted())")
    }
}

/// Found by a tester: the `[access]` table in configuration.md said admins may
/// "reload, simulator injection", protocol.md said admins also tune, sweep and
/// calibrate. Both now list methods, and this test holds them to the method table.
@Suite("Roles in the docs")
struct AccessDocsTests {
    /// The methods each role gains, from the table the daemon enforces.
    static var byRole: [Role: Set<String>] {
        Dictionary(grouping: MethodTable.all, by: \.role).mapValues { Set($0.map(\.name)) }
    }

    /// The backticked names in the table row of `doc` whose first cell contains `label`.
    static func methods(in doc: String, rowLabel label: String) throws -> Set<String> {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent(doc), encoding: .utf8)
        let row = try #require(text.split(separator: "\n").first { $0.hasPrefix("| ") && $0.split(separator: "|").first.map { $0.contains(label) } == true },
                               "\(doc) has no table row for \(label)")
        let cells = row.split(separator: "|")
        let re = try NSRegularExpression(pattern: "`([a-z_]+)`")
        let last = String(cells.last ?? "")
        return Set(re.matches(in: last, range: NSRange(last.startIndex..., in: last)).map { String(last[Range($0.range(at: 1), in: last)!]) })
    }

    @Test("protocol.md and configuration.md list, for each role, exactly the methods the daemon gives it")
    func rolesAgree() throws {
        let table = Self.byRole
        #expect(table.values.map(\.count).reduce(0, +) == MethodTable.all.count)
        for (role, protocolLabel, configLabel) in [(Role.observer, " observer ", "`observers`"), (.operator, " operator ", "`operators`"), (.admin, " admin ", "`admins`")] {
            let want = table[role] ?? []
            #expect(try Self.methods(in: "docs/protocol.md", rowLabel: protocolLabel) == want, "protocol.md, \(role)")
            #expect(try Self.methods(in: "docs/configuration.md", rowLabel: configLabel) == want, "configuration.md, \(role)")
        }
    }
}
