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
