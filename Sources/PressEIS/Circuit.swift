import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Minimal complex number used internally.
struct Complex: Equatable {
    var re: Double
    var im: Double
    init(_ re: Double, _ im: Double) { self.re = re; self.im = im }
    static func + (a: Complex, b: Complex) -> Complex { Complex(a.re + b.re, a.im + b.im) }
    static func - (a: Complex, b: Complex) -> Complex { Complex(a.re - b.re, a.im - b.im) }
    static func * (a: Complex, b: Complex) -> Complex { Complex(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re) }
    static func * (a: Double, b: Complex) -> Complex { Complex(a * b.re, a * b.im) }
    static func / (a: Complex, b: Complex) -> Complex {
        // Smith's algorithm for robustness against overflow.
        if abs(b.re) >= abs(b.im) {
            let r = b.im / b.re, d = b.re + b.im * r
            return Complex((a.re + a.im * r) / d, (a.im - a.re * r) / d)
        } else {
            let r = b.re / b.im, d = b.re * r + b.im
            return Complex((a.re * r + a.im) / d, (a.im * r - a.re) / d)
        }
    }
    var magnitude: Double { hypot(re, im) }
}

/// Parameters of the equivalent circuit `R_b + (R_int ‖ CPE(Q, α)) [+ W(σ)]`.
///
/// * CPE: Z_CPE = 1 / (Q (jω)^α), Q in F·s^(α−1) (S·s^α), 0 < α ≤ 1 (α = 1 is an ideal capacitor).
/// * Warburg (semi-infinite, in series): Z_W = σ ω^(−1/2) (1 − j), σ in Ω·s^(−1/2).
///   Semi-infinite was chosen because, over the 0.1–1 Hz low end of a solid-state-cell sweep,
///   blocking/diffusion tails rarely reach the finite-length turnover, and it adds a single parameter.
public struct CircuitParameters: Sendable, Equatable {
    /// Bulk (series, high-frequency intercept) resistance R_b in Ω.
    public var bulkResistance: Double
    /// Interfacial (arc) resistance R_int in Ω.
    public var interfacialResistance: Double
    /// CPE coefficient Q in F·s^(α−1).
    public var cpeQ: Double
    /// CPE exponent α (0 < α ≤ 1).
    public var cpeAlpha: Double
    /// Warburg coefficient σ in Ω·s^(−1/2), or nil when the circuit has no Warburg element.
    public var warburgSigma: Double?

    /// Creates a parameter set.
    public init(bulkResistance: Double, interfacialResistance: Double, cpeQ: Double, cpeAlpha: Double, warburgSigma: Double? = nil) {
        self.bulkResistance = bulkResistance
        self.interfacialResistance = interfacialResistance
        self.cpeQ = cpeQ
        self.cpeAlpha = cpeAlpha
        self.warburgSigma = warburgSigma
    }

    /// Characteristic (apex) frequency of the R_int‖CPE arc in Hz: f = 1 / (2π (R_int Q)^(1/α)).
    public var characteristicFrequency: Double {
        1 / (2 * Double.pi * pow(interfacialResistance * cpeQ, 1 / cpeAlpha))
    }

    /// Complex impedance (Z′, Z″) in Ω at `frequency` Hz; Z″ is negative for capacitive behaviour.
    public func impedance(atFrequency frequency: Double) -> (real: Double, imaginary: Double) {
        let z = EquivalentCircuit.impedance(omega: 2 * Double.pi * frequency, rb: bulkResistance, r: interfacialResistance,
                                            q: cpeQ, alpha: cpeAlpha, sigma: warburgSigma ?? 0)
        return (z.re, z.im)
    }

    /// Synthesises a noise-free spectrum at the given frequencies.
    public func spectrum(frequencies: [Double], acquiredAt: Date? = nil) -> Spectrum {
        let z = frequencies.map { impedance(atFrequency: $0) }
        return Spectrum(frequencies: frequencies, real: z.map(\.real), imaginary: z.map(\.imaginary), acquiredAt: acquiredAt)
    }
}

/// Model evaluation and analytic derivatives. Internal.
enum EquivalentCircuit {
    static func cpeAdmittance(omega: Double, q: Double, alpha: Double) -> Complex {
        let m = q * pow(omega, alpha)
        let phi = alpha * Double.pi / 2
        return Complex(m * cos(phi), m * sin(phi))
    }

    static func impedance(omega: Double, rb: Double, r: Double, q: Double, alpha: Double, sigma: Double) -> Complex {
        let y = Complex(1 / r, 0) + cpeAdmittance(omega: omega, q: q, alpha: alpha)
        var z = Complex(rb, 0) + Complex(1, 0) / y
        if sigma != 0 {
            let w = sigma / omega.squareRoot()
            z = z + Complex(w, -w)
        }
        return z
    }

    /// Impedance and derivatives with respect to θ = (ln R_b, ln R_int, ln Q, α[, ln σ]).
    static func impedanceAndGradient(omega: Double, theta: [Double]) -> (Complex, [Complex]) {
        let rb = exp(theta[0]), r = exp(theta[1]), q = exp(theta[2]), alpha = theta[3]
        let p = cpeAdmittance(omega: omega, q: q, alpha: alpha)
        let y = Complex(1 / r, 0) + p
        let zp = Complex(1, 0) / y
        let zp2 = zp * zp
        var z = Complex(rb, 0) + zp
        var g: [Complex] = [
            Complex(rb, 0),
            (1 / r) * zp2,
            Complex(-1, 0) * zp2 * p,
            Complex(-1, 0) * zp2 * p * Complex(log(omega), Double.pi / 2),
        ]
        if theta.count > 4 {
            let sigma = exp(theta[4])
            let w = sigma / omega.squareRoot()
            let zw = Complex(w, -w)
            z = z + zw
            g.append(zw)
        }
        return (z, g)
    }
}
