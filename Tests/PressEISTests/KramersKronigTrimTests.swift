import Foundation
import Testing
@testable import PressEIS

/// Lin-KK as electrochemists use it (issue 24): inconsistent points at the ends of a sweep are
/// left out and the rest is fitted; a spectrum inconsistent over its arc is rejected; the limits
/// are absolute, so a clean spectrum is never rejected for being cleaner than its noise.
@Suite struct KramersKronigTrimTests {
    static let truth = CircuitParameters(bulkResistance: 20, interfacialResistance: 200,
                                         cpeQ: 1 / (200 * pow(2 * Double.pi * 1000, 0.85)), cpeAlpha: 0.85)
    static let freqs = Synth.frequencies(from: 1e6, to: 0.01, perDecade: 8)   // apex at 1 kHz: 3 decades of tail below

    /// The cell changes during the last, slowest points only (the sweep's lowest half decade):
    /// those points are left out and the arc, measured before, is fitted.
    @Test("drift in the last low-frequency points: trimmed there, the arc fitted, R_int right")
    func lowFrequencyEndTrimmed() throws {
        var rng = SplitMix64(seed: 41)
        let clean = Synth.noisy(Self.truth, frequencies: Self.freqs, noise: 0.003, rng: &rng)
        let n = Self.freqs.count
        // The last 5 points (below 0.03 Hz) read 15–40 % high in Z′ as the cell drifts away.
        let real = clean.real.enumerated().map { i, v in i >= n - 5 ? v * (1 + 0.15 + 0.05 * Double(i - (n - 5))) : v }
        let s = Spectrum(frequencies: Self.freqs, real: real, imaginary: clean.imaginary)
        #expect(KramersKronigCheck.run(s)?.passed == false, "the whole sweep is not consistent")
        let a = try SpectrumAnalysis.analyse(s).get()
        #expect(a.kramersKronig.trimmedHighFrequency == 0)
        #expect((3...8).contains(a.kramersKronig.trimmedLowFrequency), "trimmed \(a.kramersKronig.trimmedLowFrequency) at the low end")
        #expect(a.kramersKronig.trimDescription?.contains("below") == true)
        #expect(Synth.relErr(a.interfacialResistance!, 200) < 0.02 && Synth.relErr(a.bulkResistance, 20) < 0.02)
        #expect(a.fittedPoints == n - a.kramersKronig.trimmedLowFrequency)
    }

    /// Noisy points at the top of the sweep (leads, a current range at its limit) are left out.
    @Test("noise in the first high-frequency points: trimmed there")
    func highFrequencyEndTrimmed() throws {
        var rng = SplitMix64(seed: 42)
        let clean = Synth.noisy(Self.truth, frequencies: Self.freqs, noise: 0.003, rng: &rng)
        var real = clean.real, imag = clean.imaginary
        for i in 0..<5 { real[i] *= 1 + 0.08 * (i % 2 == 0 ? 1 : -1); imag[i] += 0.08 * (i % 2 == 0 ? -1 : 1) * real[i] }
        let a = try SpectrumAnalysis.analyse(Spectrum(frequencies: Self.freqs, real: real, imaginary: imag)).get()
        #expect((4...7).contains(a.kramersKronig.trimmedHighFrequency), "trimmed \(a.kramersKronig.trimmedHighFrequency) at the top")
        #expect(a.kramersKronig.trimmedLowFrequency == 0)
        #expect(Synth.relErr(a.interfacialResistance!, 200) < 0.02)
    }

    /// A distortion of the arc itself (Z″ +10 % around the apex): no trimming of the ends helps.
    @Test("an arc inconsistent in itself is rejected, not trimmed")
    func arcItselfRejected() {
        var rng = SplitMix64(seed: 43)
        let clean = Synth.noisy(Self.truth, frequencies: Self.freqs, noise: 0.003, rng: &rng)
        let imag = zip(Self.freqs, clean.imaginary).map { f, z in z * (1 + 0.1 * exp(-pow(log10(f / 1000), 2) / 0.18)) }
        guard case .failure(.kramersKronigFailed(let kk)) = SpectrumAnalysis.analyse(Spectrum(frequencies: Self.freqs, real: clean.real, imaginary: imag)) else {
            Issue.record("a distorted arc must fail Lin-KK"); return
        }
        #expect(kk.failureReasons.contains { $0.contains("over the arc itself") }, "\(kk.failureReasons)")
        #expect(kk.trimmedHighFrequency == 0 && kk.trimmedLowFrequency == 0)
    }

    /// The same small inconsistency (Z′ raised by up to 2.5 % over a decade, Z″ unchanged: a
    /// 0.5–0.7 % systematic Lin-KK residual, under every limit) with 1 % noise and with 0.03 %
    /// noise: the verdict must not depend on how clean the rest of the spectrum is.
    @Test("a clean spectrum is not rejected for being cleaner than its noise estimate")
    func cleanerThanNoiseAccepted() {
        for noise in [0.01, 0.0003] {
            var rng = SplitMix64(seed: 44)
            let s0 = Synth.noisy(Self.truth, frequencies: Self.freqs, noise: noise, rng: &rng)
            let real = zip(Self.freqs, s0.real).map { f, z in z * (1 + 0.025 * exp(-pow(log10(f / 30), 2) / 0.1)) }
            let kk = KramersKronigCheck.run(Spectrum(frequencies: Self.freqs, real: real, imaginary: s0.imaginary))!
            #expect(kk.systematicResidual > 0.004, "the deviation is there: \(kk.systematicResidual)")
            #expect(kk.passed, "noise \(noise): \(kk.failureReasons) (systematic \(kk.systematicResidual), noise estimate \(kk.noiseEstimate))")
        }
    }

    /// Never more than half the sweep, and never below ten points.
    @Test("trimming stops at its budget: a sweep inconsistent over most of its length is rejected")
    func budget() {
        var rng = SplitMix64(seed: 45)
        let clean = Synth.noisy(Self.truth, frequencies: Self.freqs, noise: 0.003, rng: &rng)
        // Everything below 30 Hz drifts (more than half of the sweep, the arc's low side included).
        let real = zip(Self.freqs, clean.real).map { f, v in f < 30 ? v * (1 + 0.3 * log10(30 / f)) : v }
        guard case .failure(.kramersKronigFailed) = SpectrumAnalysis.analyse(Spectrum(frequencies: Self.freqs, real: real, imaginary: clean.imaginary)) else {
            Issue.record("must be rejected"); return
        }
    }
}

/// How often a cell that drifts through the whole sweep is rejected by the analysis (Lin-KK with
/// trimming), by drift size and noise: the table in docs/impedance.md. A drift that only moves the
/// last, slow points is trimmed by design; one that moves the arc is rejected.
@Suite struct DriftDetectionRateTests {
    @Test("drift of R_int across the sweep: detection rates (docs/impedance.md), +50 % rejected in at least 3 of 4")
    func rates() {
        var table = "| noise | +10 % | +20 % | +30 % | +50 % |\n|---|---|---|---|---|\n"
        let n = 40
        for noise in [0.002, 0.005, 0.01] {
            var row = "| \(noise * 100) % |"
            for drift in [0.1, 0.2, 0.3, 0.5] {
                var rng = SplitMix64(seed: 2718)
                var rejected = 0
                for _ in 0..<n {
                    var (p, _) = Synth.randomCase(&rng, warburg: false)
                    let f = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10)
                    p.cpeQ = 1 / (p.interfacialResistance * pow(2 * Double.pi * rng.logUniform(1, 30), p.cpeAlpha))
                    if case .failure = SpectrumAnalysis.analyse(Synth.drifted(p, frequencies: f, drift: drift, noise: noise, rng: &rng)) { rejected += 1 }
                }
                row += " \(rejected * 100 / n) % |"
                if drift == 0.5 { #expect(rejected * 4 >= 3 * n, "+50 % drift at \(noise * 100) % noise: \(rejected) of \(n) rejected") }
            }
            table += row + "\n"
        }
        print("drift detection, \(n) spectra per cell:\n" + table)
    }
}
