import Foundation
import Testing
@testable import PressEIS

@Suite struct FitTests {
    /// Noise-free data must be reproduced essentially exactly (guards model, Jacobian and LM).
    @Test func exactRecoveryWithoutNoise() throws {
        let freqs = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 8)
        for p in [CircuitParameters(bulkResistance: 20, interfacialResistance: 700, cpeQ: 3e-6, cpeAlpha: 0.8),
                  CircuitParameters(bulkResistance: 150, interfacialResistance: 150, cpeQ: 1e-7, cpeAlpha: 1.0),
                  CircuitParameters(bulkResistance: 5, interfacialResistance: 40, cpeQ: 5e-5, cpeAlpha: 0.72, warburgSigma: 8)] {
            var o = CircuitFitOptions()
            o.variant = p.warburgSigma == nil ? .withoutWarburg : .withWarburg
            let fit = try #require(CircuitFitter.fit(p.spectrum(frequencies: freqs), options: o))
            #expect(fit.converged)
            #expect(Synth.relErr(fit.parameters.bulkResistance, p.bulkResistance) < 1e-6)
            #expect(Synth.relErr(fit.parameters.interfacialResistance, p.interfacialResistance) < 1e-6)
            #expect(Synth.relErr(fit.parameters.cpeQ, p.cpeQ) < 1e-5)
            #expect(abs(fit.parameters.cpeAlpha - p.cpeAlpha) < 1e-6)
            if let s = p.warburgSigma { #expect(Synth.relErr(fit.parameters.warburgSigma!, s) < 1e-5) }
        }
    }

    /// Analytic Jacobian agrees with central finite differences.
    @Test func jacobianMatchesFiniteDifferences() {
        let theta = [log(33.0), log(420.0), log(2e-6), 0.83, log(12.0)]
        for f in [1e5, 300.0, 0.7] {
            let omega = 2 * Double.pi * f
            let (_, g) = EquivalentCircuit.impedanceAndGradient(omega: omega, theta: theta)
            for k in 0..<theta.count {
                var tp = theta, tm = theta
                let h = 1e-6
                tp[k] += h; tm[k] -= h
                let zp = EquivalentCircuit.impedanceAndGradient(omega: omega, theta: tp).0
                let zm = EquivalentCircuit.impedanceAndGradient(omega: omega, theta: tm).0
                let fdRe = (zp.re - zm.re) / (2 * h), fdIm = (zp.im - zm.im) / (2 * h)
                let scale = max(hypot(fdRe, fdIm), 1e-9)
                #expect(abs(g[k].re - fdRe) / scale < 1e-6)
                #expect(abs(g[k].im - fdIm) / scale < 1e-6)
            }
        }
    }

    /// 50 random circuits, 1 % proportional noise, no Warburg: R_b, R_int within 3 %, α within 0.03.
    @Test func recoveryOverRandomCircuits() throws {
        var rng = SplitMix64(seed: 2026)
        var worst = (rb: 0.0, rint: 0.0, alpha: 0.0)
        var warburgKept = 0
        for _ in 0..<50 {
            let (p, f) = Synth.randomCase(&rng, warburg: false)
            let s = Synth.noisy(p, frequencies: f, noise: 0.01, rng: &rng)
            let fit = try #require(CircuitFitter.fit(s))
            #expect(fit.converged)
            if fit.parameters.warburgSigma != nil { warburgKept += 1 }
            worst.rb = max(worst.rb, Synth.relErr(fit.parameters.bulkResistance, p.bulkResistance))
            worst.rint = max(worst.rint, Synth.relErr(fit.parameters.interfacialResistance, p.interfacialResistance))
            worst.alpha = max(worst.alpha, abs(fit.parameters.cpeAlpha - p.cpeAlpha))
        }
        print("recovery (no Warburg, 1 % noise, 50 circuits): worst |ΔR_b|/R_b = \(worst.rb), |ΔR_int|/R_int = \(worst.rint), |Δα| = \(worst.alpha); Warburg wrongly kept \(warburgKept)/50")
        #expect(worst.rb < 0.03)
        #expect(worst.rint < 0.03)
        #expect(worst.alpha < 0.03)
        #expect(warburgKept <= 2)
    }

    /// 30 random circuits with a semi-infinite Warburg, 1 % noise, automatic variant.
    @Test func recoveryWithWarburg() throws {
        var rng = SplitMix64(seed: 77)
        var worst = (rb: 0.0, rint: 0.0, alpha: 0.0, sigma: 0.0)
        var kept = 0
        for _ in 0..<30 {
            let (p, f) = Synth.randomCase(&rng, warburg: true)
            let s = Synth.noisy(p, frequencies: f, noise: 0.01, rng: &rng)
            let fit = try #require(CircuitFitter.fit(s))
            #expect(fit.converged)
            guard let sigma = fit.parameters.warburgSigma else { continue }
            kept += 1
            worst.rb = max(worst.rb, Synth.relErr(fit.parameters.bulkResistance, p.bulkResistance))
            worst.rint = max(worst.rint, Synth.relErr(fit.parameters.interfacialResistance, p.interfacialResistance))
            worst.alpha = max(worst.alpha, abs(fit.parameters.cpeAlpha - p.cpeAlpha))
            worst.sigma = max(worst.sigma, Synth.relErr(sigma, p.warburgSigma!))
        }
        print("recovery (Warburg, 1 % noise, 30 circuits): kept \(kept)/30, worst |ΔR_b|/R_b = \(worst.rb), |ΔR_int|/R_int = \(worst.rint), |Δα| = \(worst.alpha), |Δσ|/σ = \(worst.sigma)")
        #expect(kept == 30)
        #expect(worst.rb < 0.03)
        #expect(worst.rint < 0.04)
        #expect(worst.alpha < 0.03)
        #expect(worst.sigma < 0.10)
    }

    /// Standard errors are honest: over 200 noise draws the true value lies within ±2 SE in ≥ 85 % of fits
    /// (Gaussian expectation 95 %), and the SEs are not grossly inflated (not ≥ 99.9 % with a tiny spread either).
    @Test(arguments: [
        CircuitParameters(bulkResistance: 30, interfacialResistance: 600, cpeQ: 1e-6, cpeAlpha: 0.85),
        CircuitParameters(bulkResistance: 120, interfacialResistance: 90, cpeQ: 2e-7, cpeAlpha: 0.95),
    ])
    func standardErrorsAreHonest(_ p: CircuitParameters) throws {
        var rng = SplitMix64(seed: 99)
        let freqs = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 7)
        var o = CircuitFitOptions(); o.variant = .withoutWarburg
        var inside = (rb: 0, rint: 0, alpha: 0)
        var ratios: [Double] = []
        let draws = 200
        for _ in 0..<draws {
            let s = Synth.noisy(p, frequencies: freqs, noise: 0.01, rng: &rng)
            let fit = try #require(CircuitFitter.fit(s, options: o))
            let v = fit.parameters, e = fit.standardErrors
            if abs(v.bulkResistance - p.bulkResistance) <= 2 * e.bulkResistance { inside.rb += 1 }
            if abs(v.interfacialResistance - p.interfacialResistance) <= 2 * e.interfacialResistance { inside.rint += 1 }
            if abs(v.cpeAlpha - p.cpeAlpha) <= 2 * e.cpeAlpha { inside.alpha += 1 }
            ratios.append((v.interfacialResistance - p.interfacialResistance) / e.interfacialResistance)
        }
        let cov = (Double(inside.rb) / Double(draws), Double(inside.rint) / Double(draws), Double(inside.alpha) / Double(draws))
        let sdRatio = (ratios.map { $0 * $0 }.reduce(0, +) / Double(draws)).squareRoot()
        print("±2SE coverage R_b \(cov.0), R_int \(cov.1), α \(cov.2); RMS of (R_int error / SE) = \(sdRatio)")
        #expect(cov.0 >= 0.85 && cov.1 >= 0.85 && cov.2 >= 0.85)
        #expect(sdRatio > 0.7 && sdRatio < 1.4)
    }

    /// The automatic variant keeps the Warburg only when the data need it.
    @Test func warburgSelection() throws {
        let freqs = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10)
        var rng = SplitMix64(seed: 5)
        let plain = CircuitParameters(bulkResistance: 40, interfacialResistance: 500, cpeQ: 1e-6, cpeAlpha: 0.88)
        var withW = plain; withW.warburgSigma = 200
        let f1 = try #require(CircuitFitter.fit(Synth.noisy(plain, frequencies: freqs, noise: 0.01, rng: &rng)))
        let f2 = try #require(CircuitFitter.fit(Synth.noisy(withW, frequencies: freqs, noise: 0.01, rng: &rng)))
        #expect(f1.parameters.warburgSigma == nil)
        #expect(f2.parameters.warburgSigma != nil)
        #expect((f2.warburgPValue ?? 1) < 1e-3)
        #expect(f1.warburgPValue != nil && f1.warburgPValue! > 1e-3)
    }

    @Test func initialGuessIsClose() throws {
        let p = CircuitParameters(bulkResistance: 40, interfacialResistance: 500, cpeQ: 1e-6, cpeAlpha: 0.9)
        let g = try #require(CircuitFitter.initialGuess(p.spectrum(frequencies: Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10))))
        #expect(Synth.relErr(g.parameters.bulkResistance, 40) < 0.05)
        #expect(Synth.relErr(g.parameters.interfacialResistance, 500) < 0.15)
        #expect(abs(g.parameters.cpeAlpha - 0.9) < 0.1)
    }

    @Test func fTestTail() {
        // F(1, 100): P(F > 6.895) ≈ 0.01; P(F > 3.936) ≈ 0.05.
        #expect(abs(Statistics.fDistributionUpperTail(6.895, d1: 1, d2: 100) - 0.01) < 2e-4)
        #expect(abs(Statistics.fDistributionUpperTail(3.936, d1: 1, d2: 100) - 0.05) < 5e-4)
        #expect(Statistics.fDistributionUpperTail(0, d1: 1, d2: 10) == 1)
    }
}
