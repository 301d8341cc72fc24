import Foundation
import Testing
@testable import PressEIS

@Suite struct KramersKronigTests {
    @Test func cleanSpectraPass() {
        var rng = SplitMix64(seed: 314)
        var failures = 0, worstMax = 0.0
        for noise in [0.005, 0.01] {
            for warburg in [false, true] {
                for _ in 0..<20 {
                    let (p, f) = Synth.randomCase(&rng, warburg: warburg)
                    let kk = KramersKronigCheck.run(Synth.noisy(p, frequencies: f, noise: noise, rng: &rng))!
                    if !kk.passed { failures += 1 }
                    worstMax = max(worstMax, kk.maxResidual)
                }
            }
        }
        print("Lin-KK clean spectra: \(failures)/80 rejected, worst max residual \(worstMax)")
        #expect(failures == 0)
    }

    @Test func noiseFreeResidualsAreTiny() {
        let p = CircuitParameters(bulkResistance: 50, interfacialResistance: 500, cpeQ: 1e-6, cpeAlpha: 0.8, warburgSigma: 30)
        let kk = KramersKronigCheck.run(p.spectrum(frequencies: Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10)))!
        #expect(kk.passed)
        #expect(kk.maxResidual < 2e-3)
        #expect(kk.mu <= 0.85 || kk.elementCount == 50)
    }

    /// R_int rising linearly in time by 50 % across the sweep (slow low-frequency points take most of the time).
    @Test func driftIsRejected() {
        var rng = SplitMix64(seed: 2718)
        var detected = 0
        let trials = 30
        for i in 0..<trials {
            var (p, _) = Synth.randomCase(&rng, warburg: false)
            let f = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10)
            p.cpeQ = 1 / (p.interfacialResistance * pow(2 * Double.pi * rng.logUniform(1, 30), p.cpeAlpha))
            let s = Synth.drifted(p, frequencies: f, drift: 0.5, noise: i % 2 == 0 ? 0.005 : 0.01, rng: &rng)
            if !KramersKronigCheck.run(s)!.passed { detected += 1 }
        }
        print("Lin-KK drift (+50 % R_int over the sweep): \(detected)/\(trials) rejected")
        #expect(detected >= 26)
    }

    /// A non-causal distortion: Z″ scaled by up to +10 % around the arc apex, Z′ untouched.
    @Test func nonCausalDistortionIsRejected() {
        var rng = SplitMix64(seed: 1618)
        var detected = 0
        for _ in 0..<30 {
            let (p, f) = Synth.randomCase(&rng, warburg: false)
            let s0 = Synth.noisy(p, frequencies: f, noise: 0.005, rng: &rng)
            let fc = p.characteristicFrequency
            let im = zip(f, s0.imaginary).map { fr, z in z * (1 + 0.1 * exp(-pow(log10(fr / fc), 2) / 0.18)) }
            if !KramersKronigCheck.run(Spectrum(frequencies: f, real: s0.real, imaginary: im))!.passed { detected += 1 }
        }
        print("Lin-KK non-causal distortion: \(detected)/30 rejected")
        #expect(detected >= 28)
    }

    @Test func residualOrderAndMu() {
        let p = CircuitParameters(bulkResistance: 10, interfacialResistance: 100, cpeQ: 1e-5, cpeAlpha: 0.9)
        let f = Synth.frequencies(from: 1e5, to: 1, perDecade: 6)
        // Ascending input order: residuals are reported in descending frequency order.
        let kk = KramersKronigCheck.run(p.spectrum(frequencies: f.reversed()))!
        #expect(kk.frequencies == f)
        #expect(kk.realResiduals.count == f.count && kk.timeConstants.count == kk.elementCount)
        #expect(abs(kk.timeConstants.first! - 1 / (2 * Double.pi * 1e5)) < 1e-12)
        #expect(abs(kk.timeConstants.last! - 1 / (2 * Double.pi)) < 1e-9)
    }
}
