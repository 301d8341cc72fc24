import Foundation
import PressNumerics

/// How residuals are weighted in the complex non-linear least-squares fit.
public enum FitWeighting: Sendable, Equatable {
    /// Modulus weighting: each point's real and imaginary residuals are divided by the measured |Z|
    /// (appropriate for noise proportional to |Z|, the usual case for modern analysers). Default.
    case modulus
    /// Unit weighting (absolute residuals in Ω).
    case unit
}

/// Which circuit variant(s) to fit.
public enum CircuitVariant: Sendable, Equatable {
    /// `R_b + (R_int ‖ CPE)`.
    case withoutWarburg
    /// `R_b + (R_int ‖ CPE) + W` (semi-infinite Warburg in series).
    case withWarburg
    /// Fit both and keep the Warburg only if an F-test says it improves the fit significantly.
    case automatic
}

/// Options for ``CircuitFitter``.
public struct CircuitFitOptions: Sendable, Equatable {
    /// Residual weighting (default ``FitWeighting/modulus``).
    public var weighting: FitWeighting = .modulus
    /// Circuit variant (default ``CircuitVariant/automatic``).
    public var variant: CircuitVariant = .automatic
    /// In automatic mode the Warburg is kept when the F-test p-value is below this (default 0.001).
    public var warburgSignificance: Double = 1e-3
    /// Lower bound for α (default 0.3); the upper bound is 1.
    public var minimumAlpha: Double = 0.3
    /// Maximum LM iterations per start (default 200).
    public var maxIterations: Int = 200
    /// Creates default options.
    public init() {}
}

/// Result of a complex non-linear least-squares fit of the equivalent circuit.
public struct CircuitFit: Sendable, Equatable {
    /// Best-fit parameter values.
    public var parameters: CircuitParameters
    /// One standard error per parameter (same units as the value; `.infinity` when the covariance
    /// matrix is singular). Computed from (JᵀJ)⁻¹ scaled by the residual variance χ²/ν, propagated
    /// from log space for the positive parameters (SE(x) = x · SE(ln x)).
    public var standardErrors: CircuitParameters
    /// Weighted sum of squared residuals χ² (dimensionless with modulus weighting).
    public var chiSquared: Double
    /// χ² / ν, with ν = 2N − p degrees of freedom. With modulus weighting √(χ²/ν) estimates the
    /// relative noise per component.
    public var reducedChiSquared: Double
    /// ν = 2N − p.
    public var degreesOfFreedom: Int
    /// LM iterations used by the retained start.
    public var iterations: Int
    /// Whether LM met its convergence criteria.
    public var converged: Bool
    /// F statistic of the Warburg test (automatic mode only, else nil).
    public var warburgFStatistic: Double?
    /// p-value of the Warburg F-test (automatic mode only, else nil).
    public var warburgPValue: Double?

    /// Relative standard error of R_int (SE / value).
    public var interfacialResistanceRelativeError: Double {
        standardErrors.interfacialResistance / parameters.interfacialResistance
    }
}

/// Equivalent-circuit fitter: `R_b + (R_int ‖ CPE(Q, α))` optionally `+ W(σ)`.
///
/// Complex non-linear least squares with real and imaginary residuals stacked, solved by a bounded
/// Levenberg–Marquardt in θ = (ln R_b, ln R_int, ln Q, α[, ln σ]). Several starting points derived
/// from the spectrum are tried and the lowest χ² is kept, which makes the result deterministic and
/// robust to a poor first guess.
public enum CircuitFitter {
    /// Starting values estimated from the spectrum shape.
    public struct InitialGuess: Sendable, Equatable {
        /// Guessed parameters.
        public var parameters: CircuitParameters
        /// Index of the arc apex (max −Z″ before any low-frequency tail) in the spectrum.
        public var apexIndex: Int
    }

    /// Estimates initial parameters: R_b from the high-frequency real intercept (smallest Z′),
    /// R_int from the arc width (apex Z′ = R_b + R_int/2 holds exactly for R‖CPE), α from the apex
    /// height (−Z″_apex = (R_int/2)·tan(απ/4)), Q from the apex frequency (Q = 1/(R_int ω_apex^α)),
    /// σ from the residual low-frequency −Z″. Returns nil if the spectrum shows no capacitive arc.
    public static func initialGuess(_ spectrum: Spectrum) -> InitialGuess? {
        guesses(spectrum.sortedByDescendingFrequency()).first
    }

    static func guesses(_ s: Spectrum) -> [InitialGuess] {
        let n = s.count
        guard n >= 3 else { return [] }
        let negIm = s.imaginary.map { -$0 }
        // Light 3-point smoothing against noise.
        var sm = negIm
        for i in 1..<(n - 1) { sm[i] = (negIm[i - 1] + negIm[i] + negIm[i + 1]) / 3 }
        var candidates: [Int] = []
        if let g = sm.indices.max(by: { sm[$0] < sm[$1] }), sm[g] > 0 { candidates.append(g) }
        // First prominent local maximum scanning from high frequency (arc apex before a Warburg tail).
        let globalMax = sm.max() ?? 0
        if globalMax > 0 {
            for i in 1..<(n - 1) {
                let lo = max(0, i - 3), hi = min(n - 1, i + 3)
                if sm[i] > 0.05 * globalMax, (lo...hi).allSatisfy({ sm[$0] <= sm[i] }) {
                    if !candidates.contains(i) { candidates.append(i) }
                    break
                }
            }
        }
        let rb0 = max(s.real.min() ?? 0, 1e-6 * (s.real.max() ?? 1))
        var out: [InitialGuess] = []
        for apex in candidates {
            let width = 2 * (s.real[apex] - rb0)
            let r0 = width > 0 ? width : max(2 * negIm[apex], 1e-6)
            let rbGuess = max(rb0, 1e-9)
            let alpha0 = min(max(4 / Double.pi * atan(2 * max(negIm[apex], 1e-12) / r0), 0.5), 1.0)
            let omega = 2 * Double.pi * s.frequencies[apex]
            let q0 = 1 / (r0 * pow(omega, alpha0))
            // Warburg guess from the lowest-frequency point's excess −Z″ over the arc model.
            let last = n - 1
            let arc = CircuitParameters(bulkResistance: rbGuess, interfacialResistance: r0, cpeQ: q0, cpeAlpha: alpha0)
            let excess = negIm[last] + arc.impedance(atFrequency: s.frequencies[last]).imaginary
            let sigma0 = max(excess, 0.01 * r0) * (2 * Double.pi * s.frequencies[last]).squareRoot()
            var p = arc
            p.warburgSigma = sigma0
            out.append(InitialGuess(parameters: p, apexIndex: apex))
        }
        return out
    }

    /// Fits the circuit to a spectrum.
    /// - Returns: nil when the spectrum has fewer than 5 points or no capacitive arc to start from.
    public static func fit(_ spectrum: Spectrum, options: CircuitFitOptions = CircuitFitOptions()) -> CircuitFit? {
        let s = spectrum.sortedByDescendingFrequency()
        guard s.count >= 5 else { return nil }
        let starts = guesses(s)
        guard !starts.isEmpty else { return nil }
        switch options.variant {
        case .withoutWarburg: return fitVariant(s, starts: starts, warburg: false, options: options)
        case .withWarburg: return fitVariant(s, starts: starts, warburg: true, options: options)
        case .automatic:
            guard let plain = fitVariant(s, starts: starts, warburg: false, options: options) else {
                return fitVariant(s, starts: starts, warburg: true, options: options)
            }
            guard let withW = fitVariant(s, starts: starts, warburg: true, options: options, extraStart: plain.parameters) else { return plain }
            // Nested-model F-test (one extra parameter).
            let nu2 = Double(withW.degreesOfFreedom)
            let f = max(plain.chiSquared - withW.chiSquared, 0) / (withW.chiSquared / nu2)
            let pValue = Statistics.fDistributionUpperTail(f, d1: 1, d2: nu2)
            var chosen = (pValue < options.warburgSignificance && withW.converged) ? withW : plain
            chosen.warburgFStatistic = f
            chosen.warburgPValue = pValue
            return chosen
        }
    }

    static func fitVariant(_ s: Spectrum, starts: [InitialGuess], warburg: Bool, options: CircuitFitOptions,
                           extraStart: CircuitParameters? = nil) -> CircuitFit? {
        let n = s.count
        let omegas = s.frequencies.map { 2 * Double.pi * $0 }
        let weights: [Double] = s.frequencies.indices.map { i in
            switch options.weighting {
            case .modulus: let m = s.modulus(at: i); return m > 0 ? 1 / m : 1
            case .unit: return 1
            }
        }
        let p = warburg ? 5 : 4
        guard 2 * n > p else { return nil }
        let evaluate: ([Double]) -> (r: [Double], j: Matrix) = { theta in
            var r = [Double](repeating: 0, count: 2 * n)
            var jm = Matrix(rows: 2 * n, cols: p)
            for i in 0..<n {
                let (z, g) = EquivalentCircuit.impedanceAndGradient(omega: omegas[i], theta: theta)
                let w = weights[i]
                r[i] = (z.re - s.real[i]) * w
                r[n + i] = (z.im - s.imaginary[i]) * w
                for k in 0..<p {
                    jm[i, k] = g[k].re * w
                    jm[n + i, k] = g[k].im * w
                }
            }
            return (r, jm)
        }
        let big = 50.0
        var lower = [-big, -big, -big, options.minimumAlpha]
        var upper = [big, big, big, 1.0]
        if warburg { lower.append(-big); upper.append(big) }
        var startParams = starts.map(\.parameters)
        if let e = extraStart {
            var x = e
            x.warburgSigma = starts.first?.parameters.warburgSigma
            startParams.insert(x, at: 0)
        }
        let lm = LevenbergMarquardt(maxIterations: options.maxIterations)
        var best: LevenbergMarquardt.Result? = nil
        for sp in startParams {
            var theta0 = [log(sp.bulkResistance), log(sp.interfacialResistance), log(sp.cpeQ), sp.cpeAlpha]
            if warburg { theta0.append(log(sp.warburgSigma ?? 1)) }
            let res = lm.minimise(theta0: theta0, lower: lower, upper: upper, evaluate: evaluate)
            if let b = best {
                if res.chiSquared < b.chiSquared * (1 - 1e-9) || (!b.converged && res.converged && res.chiSquared <= b.chiSquared * (1 + 1e-6)) {
                    best = res
                }
            } else { best = res }
        }
        guard let b = best, b.chiSquared.isFinite else { return nil }
        let t = b.theta
        let params = CircuitParameters(bulkResistance: exp(t[0]), interfacialResistance: exp(t[1]), cpeQ: exp(t[2]),
                                       cpeAlpha: t[3], warburgSigma: warburg ? exp(t[4]) : nil)
        let dof = 2 * n - p
        let s2 = b.chiSquared / Double(dof)
        var se = [Double](repeating: .infinity, count: p)
        if let cov = LinearAlgebra.spdInverse(b.jacobian.gram()) {
            for k in 0..<p { se[k] = (max(cov[k, k], 0) * s2).squareRoot() }
        }
        let errors = CircuitParameters(bulkResistance: params.bulkResistance * se[0],
                                       interfacialResistance: params.interfacialResistance * se[1],
                                       cpeQ: params.cpeQ * se[2], cpeAlpha: se[3],
                                       warburgSigma: warburg ? params.warburgSigma! * se[4] : nil)
        return CircuitFit(parameters: params, standardErrors: errors, chiSquared: b.chiSquared, reducedChiSquared: s2,
                          degreesOfFreedom: dof, iterations: b.iterations, converged: b.converged,
                          warburgFStatistic: nil, warburgPValue: nil)
    }
}

/// Special functions needed for the F-test. Internal.
enum Statistics {
    /// P(F > f) for an F(d1, d2) distribution: I_{d2/(d2+d1 f)}(d2/2, d1/2).
    static func fDistributionUpperTail(_ f: Double, d1: Double, d2: Double) -> Double {
        guard f > 0 else { return 1 }
        guard f.isFinite else { return 0 }
        return regularizedIncompleteBeta(x: d2 / (d2 + d1 * f), a: d2 / 2, b: d1 / 2)
    }

    /// Regularised incomplete beta I_x(a, b) by Lentz's continued fraction.
    static func regularizedIncompleteBeta(x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let g: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let lnFront: Double = g + a * log(x) + b * log(1 - x)
        if x < (a + 1) / (a + b + 2) {
            return exp(lnFront) * betaContinuedFraction(x: x, a: a, b: b) / a
        }
        return 1 - exp(lnFront) * betaContinuedFraction(x: 1 - x, a: b, b: a) / b
    }

    private static func betaContinuedFraction(x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let md = Double(m)
            let m2 = 2 * md
            var aa = md * (b - md) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            aa = -(a + md) * (a + b + md) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let del = d * c
            h *= del
            if abs(del - 1) < 3e-16 { break }
        }
        return h
    }
}
