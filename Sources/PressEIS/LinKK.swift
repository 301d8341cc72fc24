import Foundation

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
    /// Reject when any single relative residual |ΔZ′|/|Z| or |ΔZ″|/|Z| exceeds this (default 0.05).
    public var maxResidualLimit: Double = 0.05
    /// Reject when the RMS of all relative residuals exceeds this (default 0.02).
    public var rmsResidualLimit: Double = 0.02
    /// Reject when a running mean of `systematicWindow` consecutive relative residuals (real or
    /// imaginary, frequency order) exceeds this in magnitude (default 0.01).
    public var systematicResidualLimit: Double = 0.012
    /// Noise-adaptive systematic criterion: reject when the largest running mean exceeds this many
    /// standard errors of a running mean of white noise, σ̂/√window, where σ̂ = 1.4826·MAD of all
    /// residuals (default 5.0) …
    public var systematicZLimit: Double = 5.0
    /// … and is at the same time larger than this absolute floor (default 0.004), so that tiny,
    /// harmless structure in nearly noise-free data is not rejected.
    public var systematicZFloor: Double = 0.004
    /// Window length (points) for the systematic-residual criteria (default 7).
    public var systematicWindow: Int = 7
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
    /// Robust noise estimate σ̂ = 1.4826 · median(|residual|) over both components.
    public var noiseEstimate: Double
    /// ``systematicResidual`` / (σ̂ / √window): how many white-noise standard errors the worst running mean is.
    public var systematicZ: Double
    /// Pseudo-χ² = Σ (ΔZ′² + ΔZ″²)/|Z|² (Boukamp).
    public var pseudoChiSquared: Double
    /// Whether all thresholds were met.
    public var passed: Bool
    /// Human-readable reasons for failure (empty when passed).
    public var failureReasons: [String]
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
        let z = sigmaHat > 0 ? sys / (sigmaHat / Double(w).squareRoot()) : (sys > 0 ? Double.infinity : 0)
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
        if z > options.systematicZLimit && sys > options.systematicZFloor {
            reasons.append(String(format: "systematic KK residual %.2f%% is %.1f× the noise level (limit %.1f×)", 100 * sys, z, options.systematicZLimit))
        }
        return KramersKronigResult(elementCount: c.m, mu: c.mu, seriesResistance: c.x[0], resistances: Array(c.x[1...c.m]),
                                   timeConstants: c.taus, realResiduals: dRe, imaginaryResiduals: dIm,
                                   frequencies: s.frequencies, maxResidual: maxRes, rmsResidual: rms,
                                   systematicResidual: sys, noiseEstimate: sigmaHat, systematicZ: z, pseudoChiSquared: chi, passed: reasons.isEmpty,
                                   failureReasons: reasons)
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
