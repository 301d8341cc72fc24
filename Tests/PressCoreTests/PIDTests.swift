import Testing
@testable import PressCore

/// A first-order plant y' = (K·u − y)/τ, integrated exactly over each step.
struct FirstOrderPlant {
    var gain: Double
    var tau: Double
    var y: Double = 0
    mutating func step(u: Double, dt: Double) -> Double {
        let a = exp(-dt / tau)
        y = a * y + (1 - a) * gain * u
        return y
    }
}

import Foundation

@Suite("PID controller")
struct PIDTests {
    func auto(_ p: PIDParameters, measurement: Double = 0, output: Double = 0) -> PIDController {
        var c = PIDController(parameters: p, initialOutput: output)
        c.setManual(output: output)
        c.setAutomatic(measurement: measurement)
        return c
    }

    @Test("integration uses the measured dt of each call")
    func measuredDt() {
        var c = auto(PIDParameters(kp: 0, ki: 2))
        let dts = [0.01, 0.05, 0.002, 0.1, 0.01]
        for dt in dts { c.update(setpoint: 1, measurement: 0, dt: dt) }
        // ∫ki·e dt = 2 · 1 · Σdt; a controller assuming a nominal period would give 2·5·0.01.
        #expect(abs(c.integral - 2 * dts.reduce(0, +)) < 1e-12)
        // The output applies the integral accumulated up to the previous step (Åström's
        // ordering: compute, saturate, then integrate with the applied output).
        #expect(abs(c.output - 2 * dts.dropLast().reduce(0, +)) < 1e-12)
    }

    @Test("a non-positive or non-finite dt neither integrates nor differentiates")
    func badDt() {
        var c = auto(PIDParameters(kp: 0, ki: 1, kd: 1))
        c.update(setpoint: 1, measurement: 0, dt: 0.01)
        let before = c.integral
        c.update(setpoint: 1, measurement: 0.5, dt: 0)
        c.update(setpoint: 1, measurement: 0.7, dt: .nan)
        #expect(c.integral == before)
        #expect(c.lastTerms.derivative == 0)
    }

    @Test("derivative acts on the measurement: a setpoint step gives no derivative kick")
    func derivativeOnMeasurement() {
        var c = auto(PIDParameters(kp: 0, ki: 0, kd: 10))
        c.update(setpoint: 0, measurement: 0, dt: 0.01)
        c.update(setpoint: 5, measurement: 0, dt: 0.01)
        #expect(c.lastTerms.derivative == 0)
        // A measurement change does produce derivative action, opposing the rise.
        c.update(setpoint: 5, measurement: 0.1, dt: 0.01)
        #expect(c.lastTerms.derivative < 0)
    }

    @Test("the derivative is first-order filtered with the configured time constant")
    func derivativeFilter() {
        let dt = 0.01, tf = 0.09
        var filtered = auto(PIDParameters(kp: 0, kd: 1, derivativeFilterTime: tf))
        var raw = auto(PIDParameters(kp: 0, kd: 1, derivativeFilterTime: 0))
        for c in [0.0, 1.0] {
            filtered.update(setpoint: 0, measurement: c, dt: dt)
            raw.update(setpoint: 0, measurement: c, dt: dt)
        }
        // Unfiltered: −Δy/dt = −100. Filtered (backward Euler): a = dt/(tf+dt) = 0.1.
        #expect(abs(raw.lastTerms.derivative + 100) < 1e-9)
        #expect(abs(filtered.lastTerms.derivative + 10) < 1e-9)
        // And it converges toward zero after the step, without ringing.
        filtered.update(setpoint: 0, measurement: 1, dt: dt)
        #expect(filtered.lastTerms.derivative < 0 && filtered.lastTerms.derivative > -10)
    }

    @Test("output limits hold in every step", arguments: [AntiWindup.backCalculation, .conditional, .none])
    func outputLimits(mode: AntiWindup) {
        var c = auto(PIDParameters(kp: 5, ki: 20, outputMin: -1, outputMax: 2, antiWindup: mode))
        var plant = FirstOrderPlant(gain: 1, tau: 0.5)
        for k in 0..<2000 {
            let sp = k < 1000 ? 10.0 : -10.0
            let u = c.update(setpoint: sp, measurement: plant.y, dt: 0.01)
            #expect(u >= -1 && u <= 2)
            _ = plant.step(u: u, dt: 0.01)
        }
    }

    /// Drives a limited plant against an unreachable setpoint for 20 s, then asks for
    /// a reachable one; returns the time until the output leaves its upper limit.
    func recoveryTime(_ mode: AntiWindup) -> Double {
        var c = auto(PIDParameters(kp: 0.5, ki: 2, outputMin: 0, outputMax: 1, antiWindup: mode))
        var plant = FirstOrderPlant(gain: 1, tau: 1)
        let dt = 0.01
        for _ in 0..<2000 { _ = plant.step(u: c.update(setpoint: 5, measurement: plant.y, dt: dt), dt: dt) }
        var t = 0.0
        while t < 60 {
            let u = c.update(setpoint: 0.5, measurement: plant.y, dt: dt)
            _ = plant.step(u: u, dt: dt)
            t += dt
            if u < 0.999 { return t }
        }
        return .infinity
    }

    @Test("anti-windup: back-calculation and conditional integration leave the limit at once; none winds up")
    func antiWindup() {
        let back = recoveryTime(.backCalculation)
        let cond = recoveryTime(.conditional)
        let none = recoveryTime(.none)
        #expect(back < 0.5)
        #expect(cond < 0.5)
        #expect(none > 10 * max(back, cond))
    }

    @Test("anti-windup respects the rate limit: the integrator tracks the applied output")
    func antiWindupRateLimit() {
        for kp in [0.0, 1.0] {
            var c = auto(PIDParameters(kp: kp, ki: 10, outputMin: 0, outputMax: 100, outputRateLimit: 1))
            for _ in 0..<100 { c.update(setpoint: 10, measurement: 0, dt: 0.01) }
            // About 1 s at 1 unit/s: the output is about 1; the integrator must not have
            // run to ki·e·t = 100 (it sits within ki·e·Tt − kp·e of the output).
            #expect(abs(c.output - 1) < 0.011)
            #expect(c.integral < 2)
        }
    }

    @Test("output rate limit bounds every change")
    func outputRate() {
        var c = auto(PIDParameters(kp: 100, outputMin: -1000, outputMax: 1000, outputRateLimit: 3))
        var last = c.output
        for k in 0..<300 {
            let dt = k % 3 == 0 ? 0.02 : 0.005
            let u = c.update(setpoint: k < 150 ? 10 : -10, measurement: 0, dt: dt)
            #expect(abs(u - last) <= 3 * dt + 1e-12)
            last = u
        }
    }

    @Test("setpoint ramp: the working setpoint moves at the configured rate from the measurement")
    func setpointRamp() {
        var c = auto(PIDParameters(kp: 1, setpointRampRate: 2), measurement: 1)
        var last = 1.0
        for _ in 0..<100 {
            c.update(setpoint: 5, measurement: 1, dt: 0.01)
            let w = c.workingSetpoint!
            #expect(w - last <= 2 * 0.01 + 1e-12)
            last = w
        }
        #expect(abs(last - 3) < 1e-9) // 1 + 2 MPa/s · 1 s
        for _ in 0..<200 { c.update(setpoint: 5, measurement: 1, dt: 0.01) }
        #expect(c.workingSetpoint == 5)
    }

    @Test("deadband: small errors are ignored, larger ones reduced by the band (no jump at the edge)")
    func deadband() {
        var c = auto(PIDParameters(kp: 2, ki: 1, deadband: 0.1))
        for _ in 0..<100 { c.update(setpoint: 1, measurement: 0.95, dt: 0.01) }
        #expect(c.output == 0)
        c.update(setpoint: 1, measurement: 0.7, dt: 0.01)
        #expect(abs(c.lastTerms.proportional - 2 * 0.2) < 1e-12)
        c.update(setpoint: 1, measurement: 0.9 - 1e-9, dt: 0.01)
        #expect(abs(c.lastTerms.proportional) < 1e-6)
    }

    @Test("feedforward is added to the output before limits")
    func feedforward() {
        var c = auto(PIDParameters(kp: 1, outputMin: 0, outputMax: 10))
        let u = c.update(setpoint: 2, measurement: 2, feedforward: 3.5, dt: 0.01)
        #expect(u == 3.5)
        let clipped = c.update(setpoint: 2, measurement: 2, feedforward: 50, dt: 0.01)
        #expect(clipped == 10)
    }

    @Test("manual → automatic is bumpless, also with a setpoint far from the measurement")
    func bumplessManualToAuto() {
        var c = PIDController(parameters: PIDParameters(kp: 3, ki: 2, kd: 0.1, setpointRampRate: 1))
        c.setManual(output: 7.25)
        for _ in 0..<10 { c.update(setpoint: 0, measurement: 2, dt: 0.01) }
        #expect(c.output == 7.25)
        c.setAutomatic(measurement: 2)
        let u = c.update(setpoint: 9, measurement: 2, dt: 0.01)
        // Only the ramp's first 0.01 MPa of error may act: 3·0.01 + 2·0.01·0.01.
        #expect(abs(u - 7.25) < 0.04)
    }

    @Test("changing gains in automatic does not move the output")
    func bumplessGainChange() {
        let p0 = PIDParameters(kp: 1, ki: 1, kd: 0.2, derivativeFilterTime: 0.02)
        var changed = auto(p0), twin = auto(p0)
        var plant = FirstOrderPlant(gain: 2, tau: 0.3)
        // Change the gains early in the transient, while the error is large.
        for _ in 0..<5 {
            let u = changed.update(setpoint: 1, measurement: plant.y, dt: 0.01)
            twin.update(setpoint: 1, measurement: plant.y, dt: 0.01)
            _ = plant.step(u: u, dt: 0.01)
        }
        var p1 = p0
        p1.kp = 4; p1.ki = 0.3; p1.kd = 0.05
        changed.setParameters(p1)
        let y = plant.step(u: changed.output, dt: 0.01)
        let after = changed.update(setpoint: 1, measurement: y, dt: 0.01)
        let unchanged = twin.update(setpoint: 1, measurement: y, dt: 0.01)
        let naiveJump = (p1.kp - p0.kp) * changed.lastTerms.error
        #expect(naiveJump > 2)                 // without compensation the output would jump
        #expect(abs(after - unchanged) < 0.05) // with it, it moves as the old tuning would
    }

    @Test("direct action regulates a plant with negative gain; reverse action would run away")
    func directAction() {
        func run(_ action: ControllerAction) -> Double {
            var c = auto(PIDParameters(kp: 0.5, ki: 2, outputMin: -100, outputMax: 100, action: action))
            var plant = FirstOrderPlant(gain: -1, tau: 0.5)
            for _ in 0..<2000 { _ = plant.step(u: c.update(setpoint: 3, measurement: plant.y, dt: 0.01), dt: 0.01) }
            return plant.y
        }
        #expect(abs(run(.direct) - 3) < 0.01)
        #expect(abs(run(.reverse) - 3) > 1)
    }

    @Test("parameter validation names the field")
    func validation() {
        let bad = PIDParameters(kp: -1, outputMin: 5, outputMax: 1, outputRateLimit: 0)
        let fields = bad.validationErrors().map(\.field)
        #expect(fields.contains("kp"))
        #expect(fields.contains("output_min"))
        #expect(fields.contains("output_rate"))
    }
}
