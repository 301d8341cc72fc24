import Foundation
import PressNumerics

/// Options for the Lin-KK consistency check.
public struct KramersKronigOptions: Sendable, Equatable {
    /// μ threshold c of Schönleber et al. (2014): M is increased until μ ≤ c (default 0.85).
    public var muThreshold: Double = 0.85
    /// Upper limit on the number of RC elements M (default 50; also limited to N − 2).
    public var maxElements: Int = 50
    /// The μ search starts at M = max(2, ⌈this × decades spanned⌉) (default 1). Starting lower lets
    /// badly under-fitted small-M solutions (which also produce negative R_k) stop the search early.
    public var minimumElementsPerDecade: Double = 2.5
    /// Include a series inductance L in the KK model (default true; absorbs cable inductance at the top of the sweep).
    public var includeInductance: Bool = true
    /// Include a series capacitance C in the KK model (default true; needed when −Z″ keeps rising at
    /// low frequency, e.g. blocking electrodes or a Warburg tail, which a finite RC sum cannot reach).
    public var includeCapacitance: Bool = true
    /// Reject when any single relative residual |ΔZ′|/|Z| or |ΔZ″|/|Z| in the fitted range exceeds this
    /// (default 0.08, calibrated on the real corpus: see docs/impedance.md).
    public var maxResidualLimit: Double = 0.08
    /// Reject when the RMS of all relative residuals in the fitted range exceeds this (default 0.02).
    public var rmsResidualLimit: Double = 0.02
    /// Reject when a running mean of `systematicWindow` consecutive relative residuals (real or
    /// imaginary, frequency order) exceeds this in magnitude (default 0.012).
    public var systematicResidualLimit: Double = 0.012
    /// Window length (points) for the systematic-residual criterion (default 7).
    public var systematicWindow: Int = 7
    /// Points at the ends of the sweep whose residuals break the limits may be left out of the
    /// check (and of the fit), at most this fraction of the spectrum in all (default 0.5) …
    public var maximumTrimFraction: Double = 0.5
    /// … and never into an arc: the points around an apex down to this fraction of its height
    /// (and one beyond on each side) stay. A spectrum inconsistent over its arc is rejected, not
    /// trimmed (default 0.5).
    public var arcFraction: Double = 0.5
    /// A point of an arc whose residual in the check over the whole sweep (running mean of
    /// `systematicWindow` points centred on it, either component) exceeds this makes the arc
    /// inconsistent: the spectrum is not trimmed (default 0.008; a drift while the arc was measured
    /// shows here, noise at the ends of the sweep does not).
    public var arcResidualLimit: Double = 0.008
    /// Creates default options.
    public init() {}
}

/// Result of the Lin-KK test.
public struct KramersKronigResult: Sendable, Equatable {
    /// Number of RC elements chosen by the μ criterion.
    public var elementCount: Int
    /// μ = 1 − Σ|R_k<0| / Σ|R_k≥0| at the chosen M.
    public var mu: Double
    /// Fitted series resistance R_0 in Ω.
    public var seriesResistance: Double
    /// Fitted RC resistances R_k in Ω (time constants in ``timeConstants``).
    public var resistances: [Double]
    /// Fixed time constants τ_k in s, log-spaced from 1/ω_max to 1/ω_min.
    public var timeConstants: [Double]
    /// Relative residuals (Z′ − Z′_KK)/|Z| per point, in the spectrum's descending-frequency order.
    public var realResiduals: [Double]
    /// Relative residuals (Z″ − Z″_KK)/|Z| per point, descending-frequency order.
    public var imaginaryResiduals: [Double]
    /// Frequencies (Hz) of the residuals, descending.
    public var frequencies: [Double]
    /// Largest |relative residual| over all points and both components.
    public var maxResidual: Double
    /// RMS of all relative residuals (both components).
    public var rmsResidual: Double
    /// Largest |running mean| of relative residuals over `systematicWindow` consecutive points.
    public var systematicResidual: Double
    /// Robust noise estimate σ̂ = 1.4826 · median(|residual|) over both components (information only:
    /// a spectrum cleaner than its noise estimate is never rejected for it).
    public var noiseEstimate: Double
    /// Pseudo-χ² = Σ (ΔZ′² + ΔZ″²)/|Z|² (Boukamp).
    public var pseudoChiSquared: Double
    /// Whether all thresholds were met.
    public var passed: Bool
    /// Human-readable reasons for failure (empty when passed).
    public var failureReasons: [String]
    /// Points left out at the high-frequency end (the residuals above are of the rest).
    public var trimmedHighFrequency: Int = 0
    /// Points left out at the low-frequency end.
    public var trimmedLowFrequency: Int = 0
    /// The check over the whole sweep, when points were trimmed or the trimmed check failed too:
    /// its metrics say how inconsistent the whole sweep was.
    public var untrimmedMaxResidual: Double? = nil
    /// RMS of the residuals over the whole sweep, when points were trimmed.
    public var untrimmedRMSResidual: Double? = nil

    /// The frequency range checked (highest, lowest), after trimming.
    public var checkedRange: (highest: Double, lowest: Double) { (frequencies.first ?? .nan, frequencies.last ?? .nan) }

    /// "2 points above 150 kHz and 5 below 0.3 Hz left out" or nil when none were.
    public var trimDescription: String? {
        var parts: [String] = []
        if trimmedHighFrequency > 0 { parts.append("\(trimmedHighFrequency) point\(trimmedHighFrequency == 1 ? "" : "s") above \(KramersKronigResult.hz(checkedRange.highest))") }
        if trimmedLowFrequency > 0 { parts.append("\(trimmedLowFrequency) point\(trimmedLowFrequency == 1 ? "" : "s") below \(KramersKronigResult.hz(checkedRange.lowest))") }
        return parts.isEmpty ? nil : parts.joined(separator: " and ") + " left out (inconsistent)"
    }

    static func hz(_ f: Double) -> String {
        f >= 1e6 ? String(format: "%.3g MHz", f / 1e6) : f >= 1e3 ? String(format: "%.3g kHz", f / 1e3)
            : f >= 1 ? String(format: "%.3g Hz", f) : String(format: "%.3g mHz", f * 1e3)
    }
}

/// Lin-KK test (Schönleber, Klotz, Ivers-Tiffée, Electrochim. Acta 131 (2014) 20–27).
///
/// The spectrum is fitted by linear least squares (Householder QR, both components stacked,
/// weights 1/|Z|) with Z_KK(ω) = R_0 + jωL + 1/(jωC) + Σ_k R_k / (1 + jωτ_k), with M time constants
/// log-spaced between 1/ω_max and 1/ω_min. M grows from 2 until μ ≤ c. A KK-compliant (causal,
/// linear, stable) spectrum is reproduced to within noise; drift and non-causal artefacts leave
/// structured residuals.
public enum KramersKronigCheck {
    /// Runs the test. Returns nil if the spectrum has fewer than 5 points or the least-squares system is singular.
    public static func run(_ spectrum: Spectrum, options: KramersKronigOptions = KramersKronigOptions()) -> KramersKronigResult? {
        let s = spectrum.sortedByDescendingFrequency()
        let n = s.count
        guard n >= 5 else { return nil }
        let extras = 1 + (options.includeInductance ? 1 : 0) + (options.includeCapacitance ? 1 : 0)
        let maxM = min(options.maxElements, 2 * n - extras - 1, n)
        guard maxM >= 1 else { return nil }
        let omegas = s.frequencies.map { 2 * Double.pi * $0 }
        let wMax = omegas.max()!, wMin = omegas.min()!
        var chosen: (m: Int, x: [Double], taus: [Double], mu: Double)? = nil
        let decades = log10(wMax / wMin)
        var m = min(max(2, Int((options.minimumElementsPerDecade * decades).rounded(.up))), maxM)
        while m <= maxM {
            guard let (x, taus) = solve(s, omegas: omegas, m: m, wMin: wMin, wMax: wMax, options: options) else { break }
            let rk = Array(x[1...m])
            let pos = rk.filter { $0 >= 0 }.reduce(0, +)
            let neg = rk.filter { $0 < 0 }.reduce(0) { $0 + abs($1) }
            let mu = pos > 0 ? 1 - neg / pos : 0
            chosen = (m, x, taus, mu)
            if mu <= options.muThreshold { break }
            m += 1
        }
        guard let c = chosen else { return nil }
        var dRe = [Double](repeating: 0, count: n), dIm = dRe
        for i in 0..<n {
            let z = model(omega: omegas[i], x: c.x, taus: c.taus, options: options)
            let mod = s.modulus(at: i)
            dRe[i] = (s.real[i] - z.re) / mod
            dIm[i] = (s.imaginary[i] - z.im) / mod
        }
        let all = dRe + dIm
        let maxRes = all.map { abs($0) }.max() ?? 0
        let chi = all.reduce(0) { $0 + $1 * $1 }
        let rms = (chi / Double(all.count)).squareRoot()
        let w = max(1, min(options.systematicWindow, n))
        var sys = 0.0
        for series in [dRe, dIm] {
            var sum = series[0..<w].reduce(0, +)
            sys = max(sys, abs(sum) / Double(w))
            if n > w {
                for i in w..<n {
                    sum += series[i] - series[i - w]
                    sys = max(sys, abs(sum) / Double(w))
                }
            }
        }
        let sortedAbs = all.map { abs($0) }.sorted()
        let median = sortedAbs.count % 2 == 1 ? sortedAbs[sortedAbs.count / 2]
            : (sortedAbs[sortedAbs.count / 2 - 1] + sortedAbs[sortedAbs.count / 2]) / 2
        let sigmaHat = 1.4826 * median
        var reasons: [String] = []
        if maxRes > options.maxResidualLimit {
            reasons.append(String(format: "max KK residual %.2f%% exceeds %.2f%%", 100 * maxRes, 100 * options.maxResidualLimit))
        }
        if rms > options.rmsResidualLimit {
            reasons.append(String(format: "RMS KK residual %.2f%% exceeds %.2f%%", 100 * rms, 100 * options.rmsResidualLimit))
        }
        if sys > options.systematicResidualLimit {
            reasons.append(String(format: "systematic KK residual (mean of %d points) %.2f%% exceeds %.2f%%", w, 100 * sys, 100 * options.systematicResidualLimit))
        }
        return KramersKronigResult(elementCount: c.m, mu: c.mu, seriesResistance: c.x[0], resistances: Array(c.x[1...c.m]),
                                   timeConstants: c.taus, realResiduals: dRe, imaginaryResiduals: dIm,
                                   frequencies: s.frequencies, maxResidual: maxRes, rmsResidual: rms,
                                   systematicResidual: sys, noiseEstimate: sigmaHat, pseudoChiSquared: chi, passed: reasons.isEmpty,
                                   failureReasons: reasons)
    }

    /// Runs the test the way electrochemists use it: over the whole sweep first; if that fails,
    /// points at either end whose residuals are the largest are left out one at a time and the test
    /// is run again on the rest, until it passes, the next point to leave out belongs to an arc
    /// (``KramersKronigOptions/arcFraction``: the spectrum is inconsistent over its arc), or more than ``KramersKronigOptions/maximumTrimFraction`` of the
    /// points would go. Returns the last check run (passed or not) with the trimmed counts; nil
    /// when the system is singular.
    public static func runTrimmed(_ spectrum: Spectrum, options: KramersKronigOptions = KramersKronigOptions()) -> KramersKronigResult? {
        let s = spectrum.sortedByDescendingFrequency()
        guard let full = run(s, options: options) else { return nil }
        if full.passed { return full }
        let shape = SpectrumShape(s)
        let arcs = shape.arcIndices(fraction: options.arcFraction)
        let n = s.count
        let budget = Int((options.maximumTrimFraction * Double(n)).rounded(.down))
        let step = max(1, n / 50)
        var lo = 0, hi = n          // kept: lo..<hi
        var last = full
        var stop = "inconsistent"
        func protected(_ i: Int) -> Bool { arcs.contains { $0.contains(i) } }
        // Over the whole sweep, is any point of an arc off by more than the limit?
        let half = max(1, options.systematicWindow / 2)
        let local = (0..<n).map { i -> Double in
            let r = max(0, i - half)...min(n - 1, i + half)
            let re = r.map { full.realResiduals[$0] }.reduce(0, +) / Double(r.count)
            let im = r.map { full.imaginaryResiduals[$0] }.reduce(0, +) / Double(r.count)
            return max(abs(re), abs(im))
        }
        if let bad = (0..<n).first(where: { protected($0) && local[$0] > options.arcResidualLimit }) {
            var whole = full
            whole.failureReasons.append(String(format: "inconsistent over the arc itself (%.1f%% at %@), not only at the ends of the sweep",
                                               100 * local[bad], KramersKronigResult.hz(s.frequencies[bad])))
            return whole
        }
        while true {
            // The worse end: the larger mean |residual| over its 3 outermost points.
            let k = last.realResiduals.count
            func badness(_ r: Range<Int>) -> Double {
                r.map { max(abs(last.realResiduals[$0]), abs(last.imaginaryResiduals[$0])) }.reduce(0, +) / Double(r.count)
            }
            let w = min(3, k)
            let highBad = badness(0..<w), lowBad = badness((k - w)..<k)
            // Only the worse end is trimmed: if it belongs to an arc, the arc itself is inconsistent.
            let high = highBad >= lowBad
            let range = high ? lo..<min(lo + step, hi) : max(hi - step, lo)..<hi
            if range.contains(where: protected) {
                stop = "inconsistent over the arc itself, not only at the ends of the sweep"
                break
            }
            guard (lo + (n - hi)) + step <= budget, hi - lo - step >= 10 else {
                stop = "inconsistent over more than \(Int(options.maximumTrimFraction * 100)) % of the sweep"
                break
            }
            if high { lo += step } else { hi -= step }
            let sub = s.withPoints(frequencies: Array(s.frequencies[lo..<hi]), real: Array(s.real[lo..<hi]), imaginary: Array(s.imaginary[lo..<hi]))
            guard let r = run(sub, options: options) else { break }
            last = r
            if r.passed { break }
        }
        last.trimmedHighFrequency = lo
        last.trimmedLowFrequency = n - hi
        if lo > 0 || hi < n {
            last.untrimmedMaxResidual = full.maxResidual
            last.untrimmedRMSResidual = full.rmsResidual
        }
        if !last.passed {
            // Judged on the whole sweep: say what is wrong with it, and that trimming could not help.
            var whole = full
            whole.failureReasons.append(stop)
            return whole
        }
        return last
    }

    /// Unknowns: [R_0, R_1…R_M, (L), (1/C)].
    static func solve(_ s: Spectrum, omegas: [Double], m: Int, wMin: Double, wMax: Double,
                      options: KramersKronigOptions) -> ([Double], [Double])? {
        let n = s.count
        let tauMin = 1 / wMax, tauMax = 1 / wMin
        let taus: [Double] = m == 1 ? [(tauMin * tauMax).squareRoot()]
            : (0..<m).map { k in exp(log(tauMin) + Double(k) / Double(m - 1) * log(tauMax / tauMin)) }
        let cols = 1 + m + (options.includeInductance ? 1 : 0) + (options.includeCapacitance ? 1 : 0)
        var a = Matrix(rows: 2 * n, cols: cols)
        var b = [Double](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let w = 1 / s.modulus(at: i)
            let om = omegas[i]
            a[i, 0] = w
            for k in 0..<m {
                let x = om * taus[k]
                let d = 1 + x * x
                a[i, 1 + k] = w / d
                a[n + i, 1 + k] = -w * x / d
            }
            var c = 1 + m
            if options.includeInductance { a[n + i, c] = w * om; c += 1 }
            if options.includeCapacitance { a[n + i, c] = -w / om }
            b[i] = s.real[i] * w
            b[n + i] = s.imaginary[i] * w
        }
        guard let x = LinearAlgebra.leastSquares(a, b) else { return nil }
        return (x, taus)
    }

    static func model(omega: Double, x: [Double], taus: [Double], options: KramersKronigOptions) -> Complex {
        let m = taus.count
        var re = x[0], im = 0.0
        for k in 0..<m {
            let t = omega * taus[k]
            let d = 1 + t * t
            re += x[1 + k] / d
            im -= x[1 + k] * t / d
        }
        var c = 1 + m
        if options.includeInductance { im += x[c] * omega; c += 1 }
        if options.includeCapacitance { im -= x[c] / omega }
        return Complex(re, im)
    }
}
