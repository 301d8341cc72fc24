import Foundation
import PressNumerics

/// The fit of a **blocking-electrode** spectrum: an ion conductor between electrodes that pass
/// no ions (a solid-electrolyte pellet between stainless-steel discs, the cell every
/// solid-electrolyte lab measures its ionic conductivity with). There is no interfacial arc: at
/// low frequency the electrodes charge like a capacitor (a near-vertical spike), and the bulk
/// shows as a high-frequency arc (bulk and grain boundary together, with the pellet's
/// geometric capacitance, pF–nF) or, when that arc lies above the measured range, only as the
/// real-axis intercept.
///
/// * With an arc: Z = R_s + (R_arc ‖ CPE_g) + CPE_el, R_b = R_s + R_arc (R_s ≥ 0: leads and
///   contacts, usually negligible).
/// * Without: Z = R_b + CPE_el.
///
/// CPE_el = 1 / (Q_el (jω)^β), the electrodes' double layer; β near 1 for a good blocking contact.
public struct BlockingElectrodeFit: Sendable, Equatable {
    /// Bulk resistance R_b in Ω (R_s + R_arc with an arc, the intercept without).
    public var bulkResistance: Double
    /// Standard error of R_b in Ω (from the covariance of the fitted parameters).
    public var bulkResistanceError: Double
    /// Whether the bulk arc was measured (and fitted) or only its intercept.
    public var arcMeasured: Bool
    /// Effective capacitance of the bulk arc in F, (R_arc Q_g)^(1/α) / R_arc (nil without an arc).
    public var arcCapacitance: Double?
    /// Apex frequency of the bulk arc in Hz (nil without an arc).
    public var arcApexFrequency: Double?
    /// The electrodes' CPE coefficient Q_el in F·s^(β−1).
    public var electrodeQ: Double
    /// Standard error of Q_el.
    public var electrodeQError: Double
    /// The electrodes' CPE exponent β (1: an ideal blocking capacitor).
    public var electrodeBeta: Double
    /// Standard error of β.
    public var electrodeBetaError: Double
    /// χ² of the modulus-weighted fit.
    public var chiSquared: Double
    /// χ²/ν: its square root is the relative misfit per point.
    public var reducedChiSquared: Double
    /// ν = 2N − p.
    public var degreesOfFreedom: Int
    /// Levenberg–Marquardt iterations of the retained start.
    public var iterations: Int
    /// Whether Levenberg–Marquardt met its convergence criteria.
    public var converged: Bool
}

/// Fits ``BlockingElectrodeFit``'s circuits with the project's Levenberg–Marquardt (modulus
/// weighting, analytic Jacobian, several starts from the spectrum's shape).
enum BlockingElectrodeFitter {
    /// Fits the circuit with a bulk arc when `withArc`, the intercept-and-spike circuit otherwise.
    /// `s` is sorted by descending frequency and has no inductive points at its top.
    static func fit(_ s: Spectrum, withArc: Bool, maxIterations: Int = 200) -> BlockingElectrodeFit? {
        let n = s.count
        let p = withArc ? 6 : 3
        guard 2 * n > p + 2 else { return nil }
        let omegas = s.frequencies.map { 2 * Double.pi * $0 }
        let weights = (0..<n).map { 1 / max(s.modulus(at: $0), 1e-300) }
        // The spike's CPE from the lowest frequencies: β from the phase, Q from −Z″.
        let last = n - 1
        let phase = -atan2(s.imaginary[last], s.real[last] - (s.real.min() ?? 0))
        let beta0 = min(max(2 * phase / Double.pi, 0.5), 1)
        let qe0 = sin(beta0 * Double.pi / 2) / (max(-s.imaginary[last], 1e-300) * pow(omegas[last], beta0))
        var starts: [[Double]] = []
        if withArc {
            // The bulk arc ends where −Z″ is lowest before the spike; its apex is the largest −Z″ above that.
            let foot = footIndex(s)
            let rArc = max(s.real[foot], 1e-9)
            let apex = (0...foot).max { -s.imaginary[$0] < -s.imaginary[$1] } ?? 0
            let alpha0 = min(max(4 / Double.pi * atan(2 * max(-s.imaginary[apex], 1e-12) / rArc), 0.5), 1.0)
            let qg0 = 1 / (rArc * pow(omegas[apex], alpha0))
            for rsFraction in [0.0, 0.5] {
                let rs = rsFraction * max(s.real[0], 0)
                starts.append([rs, log(max(rArc - rs, 1e-9)), log(qg0), alpha0, log(qe0), beta0])
            }
        } else {
            starts.append([log(max(s.real.min() ?? 1e-9, 1e-9)), log(qe0), beta0])
        }
        let big = 60.0
        let lower = withArc ? [0, -big, -big, 0.3, -big, 0.3] : [-big, -big, 0.3]
        let upper = withArc ? [Double.greatestFiniteMagnitude, big, big, 1, big, 1] : [big, big, 1]
        let evaluate: ([Double]) -> (r: [Double], j: Matrix) = { theta in
            var r = [Double](repeating: 0, count: 2 * n)
            var jm = Matrix(rows: 2 * n, cols: p)
            for i in 0..<n {
                let (z, g) = model(omega: omegas[i], theta: theta, withArc: withArc)
                let w = weights[i]
                r[i] = (z.re - s.real[i]) * w
                r[n + i] = (z.im - s.imaginary[i]) * w
                for k in 0..<p { jm[i, k] = g[k].re * w; jm[n + i, k] = g[k].im * w }
            }
            return (r, jm)
        }
        let lm = LevenbergMarquardt(maxIterations: maxIterations)
        var best: LevenbergMarquardt.Result? = nil
        for t0 in starts {
            let res = lm.minimise(theta0: t0, lower: lower, upper: upper, evaluate: evaluate)
            if best == nil || res.chiSquared < best!.chiSquared { best = res }
        }
        guard let b = best, b.chiSquared.isFinite else { return nil }
        let t = b.theta
        let dof = 2 * n - p
        let s2 = b.chiSquared / Double(dof)
        // Covariance over the parameters not held at a bound (R_s at 0 is a fixed zero).
        let free = (0..<p).filter { !(withArc && $0 == 0 && t[0] <= 0) }
        var cov = [[Double]](repeating: [Double](repeating: .infinity, count: p), count: p)
        var sub = Matrix(rows: 2 * n, cols: free.count)
        for row in 0..<(2 * n) { for (c, k) in free.enumerated() { sub[row, c] = b.jacobian[row, k] } }
        if let inv = LinearAlgebra.spdInverse(sub.gram()) {
            for (a, ka) in free.enumerated() { for (c, kc) in free.enumerated() { cov[ka][kc] = inv[a, c] * s2 } }
        }
        let fit: BlockingElectrodeFit
        if withArc {
            let rArc = exp(t[1]), qg = exp(t[2]), alpha = t[3]
            let rs = t[0]
            // Var(R_s + R_arc) with R_arc = e^θ₁: Var(R_s) + R_arc² Var(θ₁) + 2 R_arc Cov(R_s, θ₁).
            var variance = rArc * rArc * cov[1][1]
            if free.contains(0) { variance += cov[0][0] + 2 * rArc * cov[0][1] }
            let tau = pow(rArc * qg, 1 / alpha)
            fit = BlockingElectrodeFit(bulkResistance: rs + rArc, bulkResistanceError: max(variance, 0).squareRoot(), arcMeasured: true,
                                       arcCapacitance: tau / rArc, arcApexFrequency: 1 / (2 * Double.pi * tau),
                                       electrodeQ: exp(t[4]), electrodeQError: exp(t[4]) * max(cov[4][4], 0).squareRoot(),
                                       electrodeBeta: t[5], electrodeBetaError: max(cov[5][5], 0).squareRoot(),
                                       chiSquared: b.chiSquared, reducedChiSquared: s2, degreesOfFreedom: dof,
                                       iterations: b.iterations, converged: b.converged)
        } else {
            fit = BlockingElectrodeFit(bulkResistance: exp(t[0]), bulkResistanceError: exp(t[0]) * max(cov[0][0], 0).squareRoot(), arcMeasured: false,
                                       arcCapacitance: nil, arcApexFrequency: nil,
                                       electrodeQ: exp(t[1]), electrodeQError: exp(t[1]) * max(cov[1][1], 0).squareRoot(),
                                       electrodeBeta: t[2], electrodeBetaError: max(cov[2][2], 0).squareRoot(),
                                       chiSquared: b.chiSquared, reducedChiSquared: s2, degreesOfFreedom: dof,
                                       iterations: b.iterations, converged: b.converged)
        }
        return fit
    }

    /// The point between the bulk arc and the spike: the lowest −Z″ below the highest-frequency apex.
    static func footIndex(_ s: Spectrum) -> Int {
        let negIm = s.imaginary.map { -$0 }
        let apex = SpectrumShape(s).apexes.first ?? 0
        return (apex..<s.count).min { negIm[$0] < negIm[$1] } ?? apex
    }

    /// Z and ∂Z/∂θ. With an arc θ = (R_s, ln R_arc, ln Q_g, α, ln Q_el, β), else θ = (ln R_b, ln Q_el, β).
    static func model(omega: Double, theta t: [Double], withArc: Bool) -> (Complex, [Complex]) {
        let k = withArc ? 4 : 1
        let qe = exp(t[k]), beta = t[k + 1]
        let ze = Complex(1, 0) / EquivalentCircuit.cpeAdmittance(omega: omega, q: qe, alpha: beta)
        let dzeLnQ = Complex(-1, 0) * ze
        let dzeBeta = Complex(-1, 0) * ze * Complex(log(omega), Double.pi / 2)
        guard withArc else {
            let rb = exp(t[0])
            return (Complex(rb, 0) + ze, [Complex(rb, 0), dzeLnQ, dzeBeta])
        }
        let r = exp(t[1]), q = exp(t[2]), alpha = t[3]
        let p = EquivalentCircuit.cpeAdmittance(omega: omega, q: q, alpha: alpha)
        let za = Complex(1, 0) / (Complex(1 / r, 0) + p)
        let za2 = za * za
        let z = Complex(t[0], 0) + za + ze
        return (z, [Complex(1, 0), (1 / r) * za2, Complex(-1, 0) * za2 * p,
                    Complex(-1, 0) * za2 * p * Complex(log(omega), Double.pi / 2), dzeLnQ, dzeBeta])
    }
}
