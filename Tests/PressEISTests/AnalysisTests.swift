import Foundation
import Testing
@testable import PressEIS

@Suite struct AnalysisTests {
    let freqs = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 8)

    @Test func acceptsGoodSpectrum() throws {
        var rng = SplitMix64(seed: 11)
        let p = CircuitParameters(bulkResistance: 35, interfacialResistance: 420, cpeQ: 2e-6, cpeAlpha: 0.87)
        let s0 = Synth.noisy(p, frequencies: freqs, noise: 0.01, rng: &rng)
        let when = Date(timeIntervalSince1970: 1_800_000_000)
        let s = Spectrum(frequencies: s0.frequencies, real: s0.real, imaginary: s0.imaginary, acquiredAt: when)
        let a = try SpectrumAnalysis.analyse(s).get()
        #expect(Synth.relErr(a.bulkResistance, 35) < 0.03)
        #expect(Synth.relErr(a.interfacialResistance!, 420) < 0.03)
        #expect(a.interfacialResistanceError! > 0 && a.interfacialResistanceError! < 0.03 * 420)
        #expect(a.acquiredAt == when)
        #expect(a.kramersKronig.passed && a.fit!.converged)
        let asr = a.areaSpecific(areaCM2: 0.5)
        #expect(asr.interfacial == a.interfacialResistance! * 0.5 && asr.bulkError == a.bulkResistanceError * 0.5)
        #expect(abs(SpectrumAnalysis.areaSpecificResistance(10, areaCM2: 0.785) - 7.85) < 1e-12)
    }

    @Test func rejectsTooFewPoints() {
        let p = CircuitParameters(bulkResistance: 35, interfacialResistance: 420, cpeQ: 2e-6, cpeAlpha: 0.87)
        let s = p.spectrum(frequencies: Synth.frequencies(from: 1e5, to: 10, perDecade: 2))
        #expect(SpectrumAnalysis.analyse(s) == .failure(.tooFewPoints(count: 9, minimum: 10)))
    }

    @Test func rejectsPureResistor() {
        var rng = SplitMix64(seed: 12)
        let f = freqs
        let s = Spectrum(frequencies: f, real: f.map { _ in 100 * (1 + 0.01 * rng.gaussian()) }, imaginary: f.map { _ in 1.0 * rng.gaussian() })
        guard case .failure(.noArc(let h, _)) = SpectrumAnalysis.analyse(s) else {
            Issue.record("pure resistor must be rejected as noArc"); return
        }
        #expect(h < 0.03)
    }

    @Test func rejectsNonsense() {
        var rng = SplitMix64(seed: 13)
        let f = freqs
        let s = Spectrum(frequencies: f, real: f.map { _ in rng.uniform(1, 1000) }, imaginary: f.map { _ in -rng.uniform(1, 1000) })
        guard case .failure(let r) = SpectrumAnalysis.analyse(s) else { Issue.record("nonsense accepted"); return }
        #expect(!r.description.isEmpty)
        if case .kramersKronigFailed = r {} else { Issue.record("expected KK failure, got \(r)") }
        // Non-finite values are refused up front.
        var re = f.map { _ in 10.0 }; re[3] = .nan
        #expect(SpectrumAnalysis.analyse(Spectrum(frequencies: f, real: re, imaginary: f.map { _ in -1.0 }))
                == .failure(.invalidData("point 4: f=\(f[3]), Z′=nan, Z″=-1.0")))
    }

    @Test func rejectsDrift() {
        var rng = SplitMix64(seed: 14)
        let p = CircuitParameters(bulkResistance: 40, interfacialResistance: 600, cpeQ: 1 / (600 * pow(2 * Double.pi * 3, 0.85)), cpeAlpha: 0.85)
        let s = Synth.drifted(p, frequencies: Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10), drift: 0.5, noise: 0.005, rng: &rng)
        guard case .failure(.kramersKronigFailed(let kk)) = SpectrumAnalysis.analyse(s) else { Issue.record("drift accepted"); return }
        #expect(!kk.failureReasons.isEmpty)
    }

    /// A tiny arc (3 Ω) on a large series resistance (200 Ω) with 1 % noise cannot give R_int to 25 %.
    @Test func rejectsUncertainInterfacialResistance() {
        var rng = SplitMix64(seed: 15)
        let p = CircuitParameters(bulkResistance: 200, interfacialResistance: 3, cpeQ: 1 / (3 * pow(2 * Double.pi * 1e3, 0.8)), cpeAlpha: 0.8)
        var opts = AnalysisOptions()
        opts.minimumArcHeight = 0   // get past the arc gate to exercise the SE rule
        let s = Synth.noisy(p, frequencies: Synth.frequencies(from: 1e6, to: 0.1, perDecade: 5), noise: 0.01, rng: &rng)
        switch SpectrumAnalysis.analyse(s, options: opts) {
        case .failure(.interfacialResistanceUncertain(let rel, let limit)):
            #expect(rel > limit)
        case .failure(.fitNotConverged):
            break
        case let other:
            Issue.record("expected uncertainty rejection, got \(other)")
        }
    }

    @Test func rejectionMessagesAreHuman() {
        #expect(AnalysisRejection.tooFewPoints(count: 4, minimum: 10).description == "spectrum has 4 points, at least 10 are needed")
        #expect(AnalysisRejection.interfacialResistanceUncertain(relativeError: 0.4, limit: 0.25).description == "R_int relative standard error 40.0% exceeds 25.0%")
    }
}

@Suite struct InductiveTailTests {
    /// A series inductance (0.5 µH) makes the top frequencies inductive; those points are trimmed before the
    /// fit (the circuit has no L) while Lin-KK, which models L, still passes.
    @Test func inductiveHighFrequencyPointsAreTrimmed() throws {
        var rng = SplitMix64(seed: 21)
        let p = CircuitParameters(bulkResistance: 20, interfacialResistance: 300, cpeQ: 1e-6, cpeAlpha: 0.9)
        let f = Synth.frequencies(from: 7e6, to: 1, perDecade: 8)
        let s0 = Synth.noisy(p, frequencies: f, noise: 0.005, rng: &rng)
        let im = zip(f, s0.imaginary).map { $1 + 2 * Double.pi * $0 * 0.5e-6 }
        #expect(im[0] > 0)
        let s = Spectrum(frequencies: f, real: s0.real, imaginary: im)
        let a = try SpectrumAnalysis.analyse(s).get()
        #expect(Synth.relErr(a.bulkResistance, 20) < 0.05)
        #expect(Synth.relErr(a.interfacialResistance!, 300) < 0.03)
        #expect(a.kramersKronig.frequencies.count == f.count)
    }
}

@Suite struct AnalysisStressTests {
    /// Random circuits with the apex anywhere in (or at the edge of) the sweep, with and without Warburg,
    /// 1 % noise. Whatever the pipeline accepts must be right to within its own error bars: every accepted
    /// R_int within 4 SE of the truth, ≥ 85 % within 2 SE. Arcs at the sweep edges must be rejected, not guessed.
    @Test func acceptedResultsAreWithinTheirErrorBars() {
        var rng = SplitMix64(seed: 4242)
        var accepted = 0, within2 = 0, worstZ = 0.0
        var rejections: [String: Int] = [:]
        for i in 0..<120 {
            let f = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 5 + i % 6)
            let rb = rng.logUniform(5, 200), rint = rng.logUniform(10, 2000), alpha = rng.uniform(0.7, 1.0)
            let fc = rng.logUniform(0.1, 1e6)
            var p = CircuitParameters(bulkResistance: rb, interfacialResistance: rint, cpeQ: 1 / (rint * pow(2 * Double.pi * fc, alpha)), cpeAlpha: alpha)
            if i % 3 == 0 { p.warburgSigma = rng.uniform(0.3, 1.0) * rint * (2 * Double.pi * 0.1).squareRoot() }
            switch SpectrumAnalysis.analyse(Synth.noisy(p, frequencies: f, noise: 0.01, rng: &rng)) {
            case .success(let a):
                accepted += 1
                let z = abs(a.interfacialResistance! - rint) / a.interfacialResistanceError!
                worstZ = max(worstZ, z)
                if z <= 2 { within2 += 1 }
            case .failure(let r):
                rejections[Mirror(reflecting: r).children.first?.label ?? "\(r)", default: 0] += 1
            }
        }
        print("stress: accepted \(accepted)/120, within 2 SE \(within2), worst |ΔR_int|/SE \(worstZ), rejections \(rejections)")
        #expect(accepted >= 90)
        #expect(worstZ < 4)
        #expect(Double(within2) >= 0.85 * Double(accepted))
    }

    @Test func rejectsArcAtTheEdgeOfTheSweep() {
        var rng = SplitMix64(seed: 31)
        // Apex at 0.15 Hz with a sweep ending at 0.1 Hz: only the high-frequency half of the arc is measured.
        let p = CircuitParameters(bulkResistance: 50, interfacialResistance: 400, cpeQ: 1 / (400 * pow(2 * Double.pi * 0.15, 0.9)), cpeAlpha: 0.9)
        let s = Synth.noisy(p, frequencies: Synth.frequencies(from: 1e6, to: 0.1, perDecade: 8), noise: 0.005, rng: &rng)
        guard case .failure(.arcOutsideWindow(let fc, let lo, _)) = SpectrumAnalysis.analyse(s) else {
            Issue.record("arc at the sweep edge must be rejected"); return
        }
        #expect(fc < lo * pow(10, 0.5))
    }
}
