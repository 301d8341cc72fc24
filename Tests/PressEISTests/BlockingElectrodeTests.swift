import Foundation
import Testing
@testable import PressEIS

/// Ion-blocking electrodes (a solid-electrolyte pellet between steel): R_b with its uncertainty,
/// R_int not defined; an interface's arc in front of a capacitive tail is not mistaken for the bulk.
@Suite struct BlockingElectrodeTests {
    static let freqs = Synth.frequencies(from: 7e6, to: 0.1, perDecade: 10)

    /// Z = R_s + (R_b ‖ CPE_g) + CPE_el with proportional noise.
    static func spectrum(rs: Double, rb: Double?, qg: Double, alpha: Double, qe: Double, beta: Double, noise: Double, seed: UInt64) -> Spectrum {
        var rng = SplitMix64(seed: seed)
        var re: [Double] = [], im: [Double] = []
        for f in freqs {
            let w = 2 * Double.pi * f
            let zcpe = { (q: Double, a: Double) -> (Double, Double) in
                let m = 1 / (q * pow(w, a)); return (m * cos(a * .pi / 2), -m * sin(a * .pi / 2))
            }
            var z = (rs, 0.0)
            if let rb {
                // R ‖ CPE: 1 / (1/R + Q (jω)^α)
                let yr = 1 / rb + qg * pow(w, alpha) * cos(alpha * .pi / 2), yi = qg * pow(w, alpha) * sin(alpha * .pi / 2)
                let d = yr * yr + yi * yi
                z.0 += yr / d; z.1 += -yi / d
            }
            let e = zcpe(qe, beta)
            z.0 += e.0; z.1 += e.1
            let m = hypot(z.0, z.1)
            re.append(z.0 + noise * m * rng.gaussian()); im.append(z.1 + noise * m * rng.gaussian())
        }
        return Spectrum(frequencies: freqs, real: re, imaginary: im)
    }

    @Test("a pellet's bulk arc (about 140 pF, apex 1.2 MHz) and the electrodes' spike: R_b = R_s + R_arc within its error bars, R_int not defined")
    func arcAndSpike() throws {
        var inside = 0
        for seed in 1...10 {
            let s = Self.spectrum(rs: 3, rb: 1500, qg: 2e-10, alpha: 0.95, qe: 2e-7, beta: 0.9, noise: 0.005, seed: UInt64(seed))
            let a = try SpectrumAnalysis.analyse(s).get()
            #expect(a.kind == .blockingElectrode && a.interfacialResistance == nil && a.interfacialResistanceError == nil)
            #expect(Synth.relErr(a.bulkResistance, 1503) < 0.02, "R_b \(a.bulkResistance)")
            #expect(a.bulkResistanceError > 0 && a.bulkResistanceError < 0.02 * 1503)
            if abs(a.bulkResistance - 1503) <= 2 * a.bulkResistanceError { inside += 1 }
            #expect(abs(a.cpeAlpha - 0.9) < 0.02, "the spike's β \(a.cpeAlpha)")
        }
        #expect(inside >= 8, "R_b within 2 SE of the truth in \(inside) of 10")
    }

    @Test("the bulk arc above the measured range: the intercept and the spike give R_b")
    func spikeOnly() throws {
        let s = Self.spectrum(rs: 40, rb: nil, qg: 0, alpha: 1, qe: 1e-6, beta: 0.88, noise: 0.003, seed: 7)
        let a = try SpectrumAnalysis.analyse(s).get()
        #expect(a.kind == .blockingElectrode && a.blocking?.arcMeasured == false)
        #expect(Synth.relErr(a.bulkResistance, 40) < 0.01, "R_b \(a.bulkResistance)")
    }

    /// An interface (20 µF) in front of a capacitive tail is an interfacial arc: never reported
    /// as a bulk resistance R_b + R_int.
    @Test("an interfacial arc (µF) before a capacitive tail is not taken for the bulk")
    func interfaceIsNotBulk() {
        let s = Self.spectrum(rs: 10, rb: 100, qg: 2e-5, alpha: 0.9, qe: 1e-3, beta: 0.9, noise: 0.003, seed: 8)
        if case .success(let a) = SpectrumAnalysis.analyse(s) {
            #expect(a.kind == .interfacialArc, "R_b \(a.bulkResistance) reported as blocking")
            #expect(Synth.relErr(a.bulkResistance, 10) < 0.05)
        }
    }
}
