import Foundation

/// Why a spectrum was not turned into resistances. Each case carries the numbers behind the decision.
public enum AnalysisRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer usable points than required.
    case tooFewPoints(count: Int, minimum: Int)
    /// A frequency or impedance value is not finite or a frequency is not positive.
    case invalidData(String)
    /// No capacitive arc: the largest −Z″ is too small relative to |Z| (values are relative).
    case noArc(maxNegativeImaginaryRelative: Double, minimum: Double)
    /// The Lin-KK consistency check failed (over the arc itself, or over more of the sweep than may be trimmed).
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
    /// The data are consistent (Lin-KK) but the circuit does not describe them: √(χ²/ν) of the
    /// modulus-weighted fit, the relative misfit per point, is above the limit (more arcs than one,
    /// a process the circuit has no element for).
    case circuitDoesNotFit(fitResidual: Double, limit: Double, kramersKronigResidual: Double)
    /// A blocking-electrode spectrum whose bulk resistance is too uncertain.
    case bulkResistanceUncertain(relativeError: Double, limit: Double)

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
        case .circuitDoesNotFit(let r, let l, let kk):
            return String(format: "the circuit R_b + (R_int ‖ CPE) [+ W] does not describe this spectrum: fit residual %.1f%% of |Z| (limit %.1f%%) where the data are consistent to %.2f%% (Lin-KK): more than one arc or a process the circuit lacks", 100 * r, 100 * l, 100 * kk)
        case .bulkResistanceUncertain(let e, let l):
            return String(format: "blocking electrode: R_b relative standard error %.1f%% exceeds %.1f%%", 100 * e, 100 * l)
        }
    }
}

/// What kind of spectrum an ``Analysis`` found.
public enum SpectrumKind: String, Sendable, Equatable {
    /// A cell with an interfacial arc: R_b + (R_int ‖ CPE) [+ W].
    case interfacialArc
    /// Ion-blocking electrodes: the bulk (arc or intercept) and the electrodes' capacitive spike;
    /// R_int is not defined.
    case blockingElectrode
}

/// The result of analysing one spectrum.
public struct Analysis: Sendable, Equatable {
    /// Which circuit described the spectrum.
    public var kind: SpectrumKind
    /// Bulk resistance R_b in Ω.
    public var bulkResistance: Double
    /// Standard error of R_b in Ω.
    public var bulkResistanceError: Double
    /// Interfacial resistance R_int in Ω; nil when not defined (blocking electrodes).
    public var interfacialResistance: Double?
    /// Standard error of R_int in Ω; nil when R_int is not defined.
    public var interfacialResistanceError: Double?
    /// CPE coefficient Q of the interface in F·s^(α−1): the arc's, or for blocking electrodes the
    /// electrodes' spike.
    public var cpeQ: Double
    /// Standard error of Q.
    public var cpeQError: Double
    /// CPE exponent α of the interface (the spike's β for blocking electrodes).
    public var cpeAlpha: Double
    /// Standard error of α.
    public var cpeAlphaError: Double
    /// Warburg coefficient σ in Ω·s^−½, nil when the Warburg was not retained.
    public var warburgSigma: Double?
    /// Standard error of σ, nil when the Warburg was not retained.
    public var warburgSigmaError: Double?
    /// Lin-KK worst relative residual over the checked range (convenience for ``kramersKronig``.maxResidual).
    public var kramersKronigMaxResidual: Double { kramersKronig.maxResidual }
    /// Acquisition time of the spectrum, if known.
    public var acquiredAt: Date?
    /// The interfacial-arc circuit's fit (nil for blocking electrodes).
    public var fit: CircuitFit?
    /// The blocking-electrode circuit's fit (nil for an interfacial arc).
    public var blocking: BlockingElectrodeFit?
    /// Lin-KK result (residuals, μ, M, the points trimmed at either end).
    public var kramersKronig: KramersKronigResult
    /// √(χ²/ν) of the modulus-weighted circuit fit: the relative misfit per point.
    public var fitResidual: Double
    /// Number of points fitted (after trimming).
    public var fittedPoints: Int
    /// The frequency range fitted, in Hz (lowest...highest).
    public var fittedRange: ClosedRange<Double>

    /// Area-specific resistances in Ω·cm²: multiplies R_b, R_int and their errors by `areaCM2`.
    public func areaSpecific(areaCM2: Double) -> (bulk: Double, bulkError: Double, interfacial: Double?, interfacialError: Double?) {
        (bulkResistance * areaCM2, bulkResistanceError * areaCM2, interfacialResistance.map { $0 * areaCM2 }, interfacialResistanceError.map { $0 * areaCM2 })
    }
}

/// Options for ``SpectrumAnalysis``.
public struct AnalysisOptions: Sendable, Equatable {
    /// Minimum number of points (default 10).
    public var minimumPoints: Int = 10
    /// Minimum max(−Z″)/|Z| at that point for an arc to count as present (default 0.03).
    public var minimumArcHeight: Double = 0.03
    /// Maximum relative standard error of R_int (default 0.25); for blocking electrodes, of R_b.
    public var maximumInterfacialRelativeError: Double = 0.25
    /// Drop the run of highest-frequency points with Z″ ≥ 0 (cable/fixture inductance, which the
    /// circuit does not model) before the arc test and the fit (default true). Lin-KK always sees
    /// them (its model has a series inductance).
    public var trimInductiveHighFrequencyPoints: Bool = true
    /// The fitted apex frequency 1/(2π(R_int Q)^(1/α)) must lie at least this many decades inside the
    /// measured frequency range (default 0.5).
    public var apexMarginDecades: Double = 0.5
    /// Run the Lin-KK check and reject on failure (default true).
    public var requireKramersKronig: Bool = true
    /// Reject a fit whose √(χ²/ν) (relative misfit per point, modulus weighting) is above this:
    /// the circuit does not describe the spectrum (default 0.04, calibrated on the real corpus:
    /// docs/impedance.md).
    public var maximumFitResidual: Double = 0.04
    /// Blocking electrodes: an arc in front of the spike whose effective capacitance is below this
    /// (F) is the pellet's bulk (geometric capacitance, pF; grain boundaries up to ~10 nF), not an
    /// interface (µF) (default 1e-8, after Irvine, Sinclair and West, Adv. Mater. 2 (1990) 132).
    public var bulkArcMaximumCapacitance: Double = 1e-8
    /// Lin-KK options.
    public var kramersKronig = KramersKronigOptions()
    /// Fit options.
    public var fit = CircuitFitOptions()
    /// Creates default options.
    public init() {}
}

/// Top-level pipeline: validate → Lin-KK (trimming inconsistent ends) → circuit fit → acceptance rules.
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
        guard let withoutInductive = dropInductive(full, options), withoutInductive.count >= options.minimumPoints else {
            return .failure(.tooFewPoints(count: full.imaginary.drop(while: { $0 >= 0 }).count, minimum: options.minimumPoints))
        }
        let arc = arcHeight(withoutInductive)
        guard arc >= options.minimumArcHeight else {
            return .failure(.noArc(maxNegativeImaginaryRelative: arc, minimum: options.minimumArcHeight))
        }
        guard let kk = KramersKronigCheck.runTrimmed(full, options: options.kramersKronig) else {
            return .failure(.fitFailed("Lin-KK least-squares system is singular"))
        }
        if options.requireKramersKronig && !kk.passed { return .failure(.kramersKronigFailed(kk)) }
        // The fit sees the consistent part only (and no inductive points at its top).
        let keep = kk.passed ? kk.trimmedHighFrequency..<(full.count - kk.trimmedLowFrequency) : 0..<full.count
        let kept = full.withPoints(frequencies: Array(full.frequencies[keep]), real: Array(full.real[keep]), imaginary: Array(full.imaginary[keep]))
        guard let s = dropInductive(kept, options), s.count >= options.minimumPoints else {
            return .failure(.tooFewPoints(count: kept.imaginary.drop(while: { $0 >= 0 }).count, minimum: options.minimumPoints))
        }
        if SpectrumShape(s).blockingTail, let blocking = blockingElectrode(s, spectrum: spectrum, kk: kk, options: options) {
            return blocking
        }
        return interfacialArc(s, spectrum: spectrum, kk: kk, options: options)
    }

    /// R_b + (R_int ‖ CPE) [+ W] on the checked, non-inductive points.
    static func interfacialArc(_ s: Spectrum, spectrum: Spectrum, kk: KramersKronigResult, options: AnalysisOptions) -> Result<Analysis, AnalysisRejection> {
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
        let residual = fit.reducedChiSquared.squareRoot()
        if options.fit.weighting == .modulus, residual > options.maximumFitResidual {
            return .failure(.circuitDoesNotFit(fitResidual: residual, limit: options.maximumFitResidual, kramersKronigResidual: kk.rmsResidual))
        }
        let rel = fit.interfacialResistanceRelativeError
        guard rel.isFinite, rel <= options.maximumInterfacialRelativeError else {
            return .failure(.interfacialResistanceUncertain(relativeError: rel, limit: options.maximumInterfacialRelativeError))
        }
        return .success(Analysis(kind: .interfacialArc, bulkResistance: p.bulkResistance, bulkResistanceError: e.bulkResistance,
                                 interfacialResistance: p.interfacialResistance, interfacialResistanceError: e.interfacialResistance,
                                 cpeQ: p.cpeQ, cpeQError: e.cpeQ, cpeAlpha: p.cpeAlpha, cpeAlphaError: e.cpeAlpha,
                                 warburgSigma: p.warburgSigma, warburgSigmaError: e.warburgSigma,
                                 acquiredAt: spectrum.acquiredAt, fit: fit, blocking: nil, kramersKronig: kk,
                                 fitResidual: residual, fittedPoints: s.count, fittedRange: fLo...fHi))
    }

    /// Blocking electrodes: the bulk (an arc with a geometric capacitance, or the intercept) and the
    /// spike. Returns nil when the spectrum's arc is an interface's (its capacitance is too large),
    /// so that the interfacial-arc circuit judges it.
    static func blockingElectrode(_ s: Spectrum, spectrum: Spectrum, kk: KramersKronigResult, options: AnalysisOptions) -> Result<Analysis, AnalysisRejection>? {
        let hasArc = !SpectrumShape(s).apexes.isEmpty
        guard let b = BlockingElectrodeFitter.fit(s, withArc: hasArc, maxIterations: options.fit.maxIterations) else { return nil }
        if let c = b.arcCapacitance, c > options.bulkArcMaximumCapacitance { return nil }
        guard b.converged else { return .failure(.fitNotConverged(iterations: b.iterations)) }
        let fLo = s.frequencies.min()!, fHi = s.frequencies.max()!
        if let fa = b.arcApexFrequency, !(fa.isFinite && fa <= fHi && fa >= fLo) {
            return .failure(.arcOutsideWindow(apexFrequency: fa, lowest: fLo, highest: fHi))
        }
        let residual = b.reducedChiSquared.squareRoot()
        if residual > options.maximumFitResidual {
            return .failure(.circuitDoesNotFit(fitResidual: residual, limit: options.maximumFitResidual, kramersKronigResidual: kk.rmsResidual))
        }
        let rel = b.bulkResistanceError / b.bulkResistance
        guard rel.isFinite, rel <= options.maximumInterfacialRelativeError else {
            return .failure(.bulkResistanceUncertain(relativeError: rel, limit: options.maximumInterfacialRelativeError))
        }
        return .success(Analysis(kind: .blockingElectrode, bulkResistance: b.bulkResistance, bulkResistanceError: b.bulkResistanceError,
                                 interfacialResistance: nil, interfacialResistanceError: nil,
                                 cpeQ: b.electrodeQ, cpeQError: b.electrodeQError, cpeAlpha: b.electrodeBeta, cpeAlphaError: b.electrodeBetaError,
                                 warburgSigma: nil, warburgSigmaError: nil, acquiredAt: spectrum.acquiredAt, fit: nil, blocking: b,
                                 kramersKronig: kk, fitResidual: residual, fittedPoints: s.count, fittedRange: fLo...fHi))
    }

    /// The spectrum without its run of highest-frequency points with Z″ ≥ 0 (when the options say so);
    /// nil when every point is inductive.
    static func dropInductive(_ s: Spectrum, _ options: AnalysisOptions) -> Spectrum? {
        guard options.trimInductiveHighFrequencyPoints else { return s }
        let k = s.imaginary.prefix(while: { $0 >= 0 }).count
        guard k > 0 else { return s }
        guard k < s.count else { return nil }
        return s.withPoints(frequencies: Array(s.frequencies.dropFirst(k)), real: Array(s.real.dropFirst(k)), imaginary: Array(s.imaginary.dropFirst(k)))
    }

    /// The largest 3-point-smoothed −Z″ relative to |Z| at that point.
    static func arcHeight(_ s: Spectrum) -> Double {
        var arc = 0.0
        for i in 0..<s.count {
            let lo = max(0, i - 1), hi = min(s.count - 1, i + 1)
            var v = 0.0
            for k in lo...hi { v += -s.imaginary[k] }
            v /= Double(hi - lo + 1)
            arc = max(arc, v / s.modulus(at: i))
        }
        return arc
    }

    /// Convenience: multiplies a resistance (or its error) in Ω by the electrode area in cm² to give Ω·cm².
    public static func areaSpecificResistance(_ ohms: Double, areaCM2: Double) -> Double { ohms * areaCM2 }
}
