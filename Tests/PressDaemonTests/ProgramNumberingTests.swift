import Testing
@testable import PressCore
@testable import PressDaemon

/// Found by a tester: program steps were numbered from 1 in `program status` and from 0
/// in the run log, the error messages and `to_step`. Now they are numbered from 1
/// everywhere a person reads them.
@Suite("Program steps are numbered from 1 everywhere")
struct ProgramNumberingTests {
    static let text = """
    name = "p"
    [[steps]]
    type = "set"
    mpa = 4.0
    [[steps]]
    type = "hold"
    duration_s = 10
    [[steps]]
    type = "square"
    low_mpa = 4.0
    high_mpa = 6.0
    period_s = 0
    duration_s = 60
    """

    @Test("a file error names step 3 and its line, not steps[2]")
    func fileError() {
        do {
            _ = try ProgramFile.parse(Self.text, source: "p.toml")
            Issue.record("a zero period was accepted")
        } catch {
            #expect(error.description == "p.toml:12: step 3: period_s: must be > 0, found 0.0")
        }
    }

    @Test("to_step counts from 1: to_step = 2 loops back to the hold, the second step")
    func loopTarget() throws {
        let text = Self.text.replacingOccurrences(of: "period_s = 0", with: "period_s = 10") + "\n[[steps]]\ntype = \"loop\"\nto_step = 2\ncount = 3\n"
        let p = try ProgramFile.parse(text, source: "p.toml")
        #expect(p.steps[3] == .loop(toStep: 1, count: 3))
        let bad = text.replacingOccurrences(of: "to_step = 2", with: "to_step = 0")
        #expect(throws: ConfigError.self) { try ProgramFile.parse(bad, source: "p.toml") }
    }

    @Test("program status, the run log and the pause event agree on the step's number")
    func statusAndLogAgree() throws {
        let p = try ProgramFile.parse(Self.text.replacingOccurrences(of: "period_s = 0", with: "period_s = 10"), source: "p.toml")
        var r = ProgramRunner(program: p, startSetpoint: 0)
        r.update(now: 0, inputs: { _ in nil })
        r.update(now: 1, inputs: { _ in nil })
        #expect(r.index == 1, "the set step is done, the hold runs")
        #expect(programInfo(r).step == 2)
        let logged = format(LoopEvent(time: 1, channel: "A", event: .programStep(name: "p", index: r.index, step: "hold")))
        #expect(logged.detail == "p: step 2 (hold)")
        #expect(logged.metadata["step"] == "2")
    }
}
