import Foundation

/// Why a spectrum was not turned into resistances. Each case carries the numbers behind the decision.
public enum AnalysisRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer usable points than required.
    case tooFewPoints(count: Int, minimum: Int)
    /// A frequency or impedance value is not finite or a frequency is not positive.
    case invalidData(String)
    /// No capacitive arc: the largest −Z″ is too small relative to |Z| (values are relative).
    case noArc(maxNegativeImaginaryRelative: Double, minimum: Double)
    /// The Lin-KK consistency check failed.
    case kramersKronigFailed(KramersKronigResult)
    /// The KK check or the fit could not be computed (singular system / no starting point).
    case fitFailed(String)
    /// Levenberg–Marquardt did not meet its convergence criteria.
    case fitNotConverged(iterations: Int)
    /// The relative standard error of R_int exceeds the bound.
    case interfacialResistanceUncertain(relativeError: Double, limit: Double)
    /// The fitted arc apex frequency lies outside (or too close to the ends of) the measured range,
    /// so the arc is not resolved and R_int is confounded with R_b or the Warburg tail.
    case arcOutsideWindow(apexFrequency: Double, lowest: Double, highest: Double)
    /// The fitted parameters are physically implausible (e.g. R_int at the numeric bound).
    case implausibleFit(String)

    /// Human-readable message.
    public var description: String {
        switch self {
        case .tooFewPoints(let c, let m): return "spectrum has \(c) points, at least \(m) are needed"
        case .invalidData(let s): return "invalid data: \(s)"
        case .noArc(let v, let m):
            return String(format: "no arc: max −Z″ is %.2f%% of |Z|, at least %.2f%% needed", 100 * v, 100 * m)
        case .kramersKronigFailed(let r):
            return "Kramers–Kronig (Lin-KK) check failed: " + r.failureReasons.joined(separator: "; ")
        case .fitFailed(let s): return "fit failed: \(s)"
        case .fitNotConverged(let it): return "equivalent-circuit fit did not converge after \(it) iterations"
        case .interfacialResistanceUncertain(let e, let l):
            return String(format: "R_int relative standard error %.1f%% exceeds %.1f%%", 100 * e, 100 * l)
        case .arcOutsideWindow(let f, let lo, let hi):
            return String(format: "arc apex at %.3g Hz is not inside the measured range %.3g–%.3g Hz (with the required margin)", f, lo, hi)
        case .implausibleFit(let s): return "implausible fit: \(s)"
        }
    }
}

/// The result of analysing one spectrum.
public struct Analysis: Sendable, Equatable {
    /// Bulk resistance R_b in Ω.
    public var bulkResistance: Double
    /// Standard error of R_b in Ω.
    public var bulkResistanceError: Double
    /// Interfacial resistance R_int in Ω.
    public var interfacialResistance: Double
    /// Standard error of R_int in Ω.
    public var interfacialResistanceError: Double
    /// CPE coefficient Q in F·s^(α−1).
    public var cpeQ: Double
    /// Standard error of Q.
    public var cpeQError: Double
    /// CPE exponent α.
    public var cpeAlpha: Double
    /// Standard error of α.
    public var cpeAlphaError: Double
    /// Warburg coefficient σ in Ω·s^−½, nil when the Warburg was not retained.
    public var warburgSigma: Double?
    /// Standard error of σ, nil when the Warburg was not retained.
    public var warburgSigmaError: Double?
    /// Lin-KK worst relative residual (convenience for ``kramersKronig``.maxResidual).
    public var kramersKronigMaxResidual: Double { kramersKronig.maxResidual }
    /// Acquisition time from the file, if any.
    public var acquiredAt: Date?
    /// Full fit result (χ², reduced χ², iterations, F-test …).
    public var fit: CircuitFit
    /// Lin-KK result (residuals, μ, M).
    public var kramersKronig: KramersKronigResult

    /// Area-specific resistances in Ω·cm²: multiplies R_b, R_int and their errors by `areaCM2`.
    public func areaSpecific(areaCM2: Double) -> (bulk: Double, bulkError: Double, interfacial: Double, interfacialError: Double) {
        (bulkResistance * areaCM2, bulkResistanceError * areaCM2, interfacialResistance * areaCM2, interfacialResistanceError * areaCM2)
    }
}

/// Options for ``SpectrumAnalysis``.
public struct AnalysisOptions: Sendable, Equatable {
    /// Minimum number of points (default 10).
    public var minimumPoints: Int = 10
    /// Minimum max(−Z″)/|Z| at that point for an arc to count as present (default 0.03).
    public var minimumArcHeight: Double = 0.03
    /// Maximum relative standard error of R_int (default 0.25).
    public var maximumInterfacialRelativeError: Double = 0.25
    /// Drop the run of highest-frequency points with Z″ ≥ 0 (cable/fixture inductance, which the
    /// circuit does not model) before the arc test and the fit (default true). Lin-KK always sees
    /// the full spectrum (its model has a series inductance).
    public var trimInductiveHighFrequencyPoints: Bool = true
    /// The fitted apex frequency 1/(2π(R_int Q)^(1/α)) must lie at least this many decades inside the
    /// measured frequency range (default 0.5).
    public var apexMarginDecades: Double = 0.5
    /// Run the Lin-KK check and reject on failure (default true).
    public var requireKramersKronig: Bool = true
    /// Lin-KK options.
    public var kramersKronig = KramersKronigOptions()
    /// Fit options.
    public var fit = CircuitFitOptions()
    /// Creates default options.
    public init() {}
}

/// Top-level pipeline: validate → Lin-KK → circuit fit → acceptance rules.
public enum SpectrumAnalysis {
    /// Analyses one spectrum. See ``AnalysisRejection`` for the rejection rules, in the order tested.
    public static func analyse(_ spectrum: Spectrum, options: AnalysisOptions = AnalysisOptions()) -> Result<Analysis, AnalysisRejection> {
        guard spectrum.count >= options.minimumPoints else {
            return .failure(.tooFewPoints(count: spectrum.count, minimum: options.minimumPoints))
        }
        for i in 0..<spectrum.count {
            let f = spectrum.frequencies[i]
            guard f.isFinite, f > 0, spectrum.real[i].isFinite, spectrum.imaginary[i].isFinite else {
                return .failure(.invalidData("point \(i + 1): f=\(f), Z′=\(spectrum.real[i]), Z″=\(spectrum.imaginary[i])"))
            }
            guard spectrum.modulus(at: i) > 0 else { return .failure(.invalidData("point \(i + 1): |Z| = 0")) }
        }
        guard Set(spectrum.frequencies).count >= options.minimumPoints else {
            return .failure(.tooFewPoints(count: Set(spectrum.frequencies).count, minimum: options.minimumPoints))
        }
        let full = spectrum.sortedByDescendingFrequency()
        var s = full
        if options.trimInductiveHighFrequencyPoints {
            let k = full.imaginary.prefix(while: { $0 >= 0 }).count
            if k > 0 {
                s = Spectrum(frequencies: Array(full.frequencies.dropFirst(k)), real: Array(full.real.dropFirst(k)),
                             imaginary: Array(full.imaginary.dropFirst(k)), acquiredAt: full.acquiredAt,
                             source: full.source, fileName: full.fileName)
                guard s.count >= options.minimumPoints else {
                    return .failure(.tooFewPoints(count: s.count, minimum: options.minimumPoints))
                }
            }
        }
        // Arc presence: 3-point-smoothed −Z″ relative to |Z|.
        var arc = 0.0
        for i in 0..<s.count {
            let lo = max(0, i - 1), hi = min(s.count - 1, i + 1)
            var v = 0.0
            for k in lo...hi { v += -s.imaginary[k] }
            v /= Double(hi - lo + 1)
            arc = max(arc, v / s.modulus(at: i))
        }
        guard arc >= options.minimumArcHeight else {
            return .failure(.noArc(maxNegativeImaginaryRelative: arc, minimum: options.minimumArcHeight))
        }
        guard let kk = KramersKronigCheck.run(full, options: options.kramersKronig) else {
            return .failure(.fitFailed("Lin-KK least-squares system is singular"))
        }
        if options.requireKramersKronig && !kk.passed { return .failure(.kramersKronigFailed(kk)) }
        guard let fit = CircuitFitter.fit(s, options: options.fit) else {
            return .failure(.fitFailed("no starting point could be derived from the spectrum"))
        }
        guard fit.converged else { return .failure(.fitNotConverged(iterations: fit.iterations)) }
        let p = fit.parameters, e = fit.standardErrors
        let zMax = (0..<s.count).map { s.modulus(at: $0) }.max() ?? 0
        guard p.interfacialResistance < 1e3 * zMax, p.bulkResistance < 1e3 * zMax else {
            return .failure(.implausibleFit("resistance far outside the measured impedance range"))
        }
        let fLo = s.frequencies.min()!, fHi = s.frequencies.max()!
        let fc = p.characteristicFrequency
        let margin = pow(10, options.apexMarginDecades)
        guard fc.isFinite, fc >= fLo * margin, fc <= fHi / margin else {
            return .failure(.arcOutsideWindow(apexFrequency: fc, lowest: fLo, highest: fHi))
        }
        let rel = fit.interfacialResistanceRelativeError
        guard rel.isFinite, rel <= options.maximumInterfacialRelativeError else {
            return .failure(.interfacialResistanceUncertain(relativeError: rel, limit: options.maximumInterfacialRelativeError))
        }
        return .success(Analysis(bulkResistance: p.bulkResistance, bulkResistanceError: e.bulkResistance,
                                 interfacialResistance: p.interfacialResistance, interfacialResistanceError: e.interfacialResistance,
                                 cpeQ: p.cpeQ, cpeQError: e.cpeQ, cpeAlpha: p.cpeAlpha, cpeAlphaError: e.cpeAlpha,
                                 warburgSigma: p.warburgSigma, warburgSigmaError: e.warburgSigma,
                                 acquiredAt: spectrum.acquiredAt, fit: fit, kramersKronig: kk))
    }

    /// Convenience: multiplies a resistance (or its error) in Ω by the electrode area in cm² to give Ω·cm².
    public static func areaSpecificResistance(_ ohms: Double, areaCM2: Double) -> Double { ohms * areaCM2 }
}
