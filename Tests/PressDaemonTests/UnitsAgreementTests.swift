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
