import Foundation
@testable import PressEIS

/// Deterministic PRNG (SplitMix64) with uniform and Gaussian draws, so every test run sees the same noise.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0 }
    mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * uniform() }
    mutating func logUniform(_ a: Double, _ b: Double) -> Double { exp(uniform(log(a), log(b))) }
    /// Standard normal (Box–Muller).
    mutating func gaussian() -> Double {
        let u1 = uniform(), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

enum Synth {
    /// Log-spaced frequencies from fMax down to fMin inclusive, `perDecade` points per decade.
    static func frequencies(from fMax: Double, to fMin: Double, perDecade: Int) -> [Double] {
        let decades = log10(fMax / fMin)
        let n = Int((decades * Double(perDecade)).rounded()) + 1
        return (0..<n).map { fMax * pow(10, -decades * Double($0) / Double(n - 1)) }
    }

    /// Spectrum of `p` with proportional Gaussian noise: Z′ and Z″ each get N(0, (noise·|Z|)²).
    static func noisy(_ p: CircuitParameters, frequencies: [Double], noise: Double, rng: inout SplitMix64) -> Spectrum {
        var re: [Double] = [], im: [Double] = []
        for f in frequencies {
            let z = p.impedance(atFrequency: f)
            let m = hypot(z.real, z.imaginary)
            re.append(z.real + noise * m * rng.gaussian())
            im.append(z.imaginary + noise * m * rng.gaussian())
        }
        return Spectrum(frequencies: frequencies, real: re, imaginary: im)
    }

    /// A random test circuit and a sweep that contains its arc (apex ≥ 1.5 decades inside the sweep).
    static func randomCase(_ rng: inout SplitMix64, warburg: Bool) -> (CircuitParameters, [Double]) {
        let wide = rng.uniform() < 0.5
        let (fMax, fMin) = wide ? (1e6, 0.1) : (7e6, 1.0)
        let perDecade = 5 + Int(rng.uniform() * 6)   // 5…10
        let freqs = frequencies(from: fMax, to: fMin, perDecade: perDecade)
        while true {
            let rb = rng.logUniform(5, 200)
            let rint = rng.logUniform(10, 2000)
            if rint < rb { continue }            // arc must be resolvable against 1 % noise on |Z|
            let alpha = rng.uniform(0.7, 1.0)
            let fc = rng.logUniform(fMin * 30, fMax / 30)
            let q = 1 / (rint * pow(2 * Double.pi * fc, alpha))
            if q < 1e-8 || q > 1e-3 { continue }
            var p = CircuitParameters(bulkResistance: rb, interfacialResistance: rint, cpeQ: q, cpeAlpha: alpha)
            if warburg {
                // Warburg real part at the lowest frequency = 0.3…1 × R_int.
                p.warburgSigma = rng.uniform(0.3, 1.0) * rint * (2 * Double.pi * fMin).squareRoot()
            }
            return (p, freqs)
        }
    }

    /// Spectrum acquired while R_int drifts linearly in time across the sweep (descending frequency),
    /// each point taking max(3 periods, 1 s). `drift` is the total relative change of R_int.
    static func drifted(_ p: CircuitParameters, frequencies: [Double], drift: Double, noise: Double, rng: inout SplitMix64) -> Spectrum {
        let durations = frequencies.map { max(3 / $0, 1) }
        let total = durations.reduce(0, +)
        var t = 0.0
        var re: [Double] = [], im: [Double] = []
        for (i, f) in frequencies.enumerated() {
            t += durations[i] / 2
            var q = p
            q.interfacialResistance = p.interfacialResistance * (1 + drift * t / total)
            t += durations[i] / 2
            let z = q.impedance(atFrequency: f)
            let m = hypot(z.real, z.imaginary)
            re.append(z.real + noise * m * rng.gaussian())
            im.append(z.imaginary + noise * m * rng.gaussian())
        }
        return Spectrum(frequencies: frequencies, real: re, imaginary: im)
    }

    static func relErr(_ a: Double, _ b: Double) -> Double { abs(a - b) / abs(b) }
}

enum Fixtures {
    static let directory: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func text(_ name: String) throws -> String {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        if let s = String(data: data, encoding: .utf8) { return s }
        return String(data.map { Character(Unicode.Scalar($0)) })
    }
}
