import Foundation
import Testing
@testable import PressCore

@Suite("Pressure programs")
struct ProgramTests {
    /// Runs `program` for `seconds` at 10 Hz, returning (time, setpoint) pairs.
    func trace(_ program: PressureProgram, seconds: Double, start: Double = 1, inputs: @escaping (Double) -> Bool = { _ in false }) -> ([(Double, Double?)], ProgramRunner) {
        var r = ProgramRunner(program: program, startSetpoint: start)
        var out: [(Double, Double?)] = []
        var t = 0.0
        while t <= seconds + 1e-9 {
            let now = t
            r.update(now: now) { $0 == "charging" ? inputs(now) : nil }
            out.append((t, r.setpoint))
            t += 0.1
        }
        return (out, r)
    }

    func at(_ tr: [(Double, Double?)], _ t: Double) -> Double? { tr.min { abs($0.0 - t) < abs($1.0 - t) }!.1 }

    @Test("ramp then hold: the ramp lasts |Δ|/rate, the hold its duration")
    func rampHold() {
        let p = PressureProgram(name: "t", steps: [.ramp(to: 5, rate: 0.5), .hold(mpa: nil, duration: 10)])
        let (tr, r) = trace(p, seconds: 30)
        #expect(at(tr, 1) == 5)
        #expect(r.state == .finished)
        // Finished after 8 s (ramp from 1 to 5 at 0.5 MPa/s) + 10 s.
        var probe = ProgramRunner(program: p, startSetpoint: 1)
        var t = 0.0
        while probe.state == .running && t < 60 { probe.update(now: t) { _ in nil }; t += 0.1 }
        #expect(abs(t - 18.1) < 0.25)
    }

    @Test("square wave alternates high and low each half period for its duration")
    func square() {
        let p = PressureProgram(name: "t", steps: [.square(low: 4, high: 6, period: 10, duration: 40, ramp: nil), .set(mpa: 5, ramp: nil)])
        let (tr, _) = trace(p, seconds: 45)
        #expect(at(tr, 2) == 6)
        #expect(at(tr, 7) == 4)
        #expect(at(tr, 12) == 6)
        #expect(at(tr, 37) == 4)
        #expect(at(tr, 42) == 5)
    }

    @Test("sine follows mean + amplitude·sin(2πt/T)")
    func sine() {
        let p = PressureProgram(name: "t", steps: [.sine(mean: 5, amplitude: 1, period: 20, duration: 100)])
        let (tr, _) = trace(p, seconds: 30)
        #expect(abs(at(tr, 5)! - 6) < 1e-6)
        #expect(abs(at(tr, 15)! - 4) < 1e-6)
    }

    @Test("press–release–settle")
    func pressRelease() {
        let p = PressureProgram(name: "t", steps: [.pressRelease(press: 8, pressTime: 5, release: 1, settleTime: 10, ramp: nil), .set(mpa: 3, ramp: nil)])
        let (tr, _) = trace(p, seconds: 20)
        #expect(at(tr, 2) == 8)
        #expect(at(tr, 10) == 1)
        #expect(at(tr, 16) == 3)
    }

    @Test("loops run their block count times in all, nested loops reset")
    func loops() {
        // steps: 0 set 1; 1 hold 1 s at 2; 2 loop→1 ×3; 3 hold 1 s at 4; 4 loop→0 ×2
        let p = PressureProgram(name: "t", steps: [
            .set(mpa: 1, ramp: nil), .hold(mpa: 2, duration: 1), .loop(toStep: 1, count: 3),
            .hold(mpa: 4, duration: 1), .loop(toStep: 0, count: 2),
        ])
        var r = ProgramRunner(program: p, startSetpoint: 0)
        var entered: [Int] = []
        var t = 0.0
        while r.state == .running && t < 100 { entered += r.update(now: t) { _ in nil }; t += 0.05 }
        #expect(r.state == .finished)
        // Each outer pass: hold@2 three times, then hold@4: 2 × (3 + 1) s = 8 s.
        #expect(abs(t - 8) < 0.2)
        #expect(entered.filter { $0 == 3 }.count == 2)
    }

    @Test("wait_input waits for the cycler's charging signal, and fails on its timeout")
    func waitInput() {
        let p = PressureProgram(name: "t", steps: [.waitInput(input: "charging", state: true, timeout: 50), .set(mpa: 7, ramp: nil)])
        let (tr, r) = trace(p, seconds: 30) { $0 >= 20 }
        #expect(at(tr, 19) == 1)
        #expect(at(tr, 21) == 7)
        #expect(r.state == .finished)
        let (_, failed) = trace(p, seconds: 60)
        #expect(failed.state == .failed)
        #expect(failed.failure?.contains("charging") == true)
    }

    @Test("pause stops the step clock; a JSON round trip resumes at the same place")
    func pauseAndPersist() throws {
        let p = PressureProgram(name: "t", steps: [.hold(mpa: 5, duration: 10), .set(mpa: 6, ramp: nil)])
        var r = ProgramRunner(program: p, startSetpoint: 1)
        for k in 0...40 { r.update(now: Double(k) * 0.1) { _ in nil } } // 4 s
        r.pause()
        for k in 41...200 { r.update(now: Double(k) * 0.1) { _ in nil } } // paused 16 s
        #expect(abs(r.elapsed - 4) < 1e-9)
        let data = try JSONEncoder().encode(r)
        var back = try JSONDecoder().decode(ProgramRunner.self, from: data)
        #expect(back == r)
        back.resume()
        back.rebase()
        for k in 0...61 { back.update(now: 1000 + Double(k) * 0.1) { _ in nil } }
        #expect(back.setpoint == 6)
    }

    @Test("validation names the step and the problem")
    func validation() {
        let limits = PressureLimits(minSetpoint: 1, maxSetpoint: 10, trip: 12)
        let p = PressureProgram(name: "t", steps: [.set(mpa: 5, ramp: nil), .square(low: 2, high: 11, period: 0, duration: 10, ramp: nil), .loop(toStep: 5, count: 2)])
        let e = p.validationErrors(limits: limits)
        #expect(e.contains { $0.step == 1 && $0.message.contains("11.0 MPa is outside") })
        #expect(e.contains { $0.step == 1 && $0.message.contains("period") })
        #expect(e.contains { $0.step == 2 && $0.message.contains("earlier step") })
    }
}
