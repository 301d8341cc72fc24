#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PressNumerics

// What a sweep's points say: the fitted knee (CSP and P90), the margin pressure, the
// dynamic protocol's CSP, and how an up leg differs from a down leg.

/// A fitted knee of interfacial resistance against stack pressure:
///
///     R(P) = R∞ + ΔR / (1 + (P/P_c)^n)
///
/// a logistic transition in ln P from the contact-limited resistance at low pressure
/// (R∞ + ΔR) to the plateau R∞. The critical stack pressure is reported as P_c, where the
/// excess resistance is half gone, with a 95 % confidence interval from the fit's
/// covariance; `p90` is where 90 % of it is gone (a conservative operating floor).
public struct KneeFit: Sendable, Equatable, Codable {
    public var plateau: Double
    public var rise: Double
    public var csp: Double
    public var sharpness: Double
    /// Standard error of ln P_c, and the 95 % interval of P_c, MPa.
    public var lnCspStandardError: Double
    public var cspLow: Double
    public var cspHigh: Double
    public var p90: Double
    /// Root-mean-square residual, Ω·cm².
    public var rmse: Double
    /// 95 % interval of `p90`, MPa, by the delta method on ln p90 = ln P_c + ln 9 / n
    /// (nil in records from before it was computed).
    public var p90Low: Double?
    public var p90High: Double?

    /// The 97.5 % Student t quantile for `dof` degrees of freedom (1.96 beyond 30).
    public static func t975(dof: Int) -> Double { dof < 1 ? .infinity : dof > t975.count ? 1.96 : t975[dof - 1] }

    /// Two-sided 97.5 % Student t quantiles for 1…30 degrees of freedom.
    static let t975: [Double] = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                                 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]

    /// Fits the knee to `points` by Levenberg–Marquardt. Nil when there are fewer than 6
    /// points, the fit does not converge, or the knee is not inside the swept range.
    public static func fit(_ points: [SweepPoint]) -> KneeFit? {
        let pts = points.filter { $0.pressure > 0 && $0.resistance.isFinite }
        guard pts.count >= 6 else { return nil }
        let ps = pts.map(\.pressure), rs = pts.map(\.resistance)
        let rMin = rs.min()!, rMax = rs.max()!
        guard rMax > rMin * 1.05 else { return nil }
        // Start: plateau at the lowest R, rise to the highest, P_c where R crosses halfway.
        let half = (rMin + rMax) / 2
        var pc0 = ps[ps.count / 2]
        let order = ps.indices.sorted { ps[$0] < ps[$1] }
        for k in 1..<order.count {
            let i = order[k - 1], j = order[k]
            if (rs[i] - half) * (rs[j] - half) <= 0, rs[i] != rs[j] {
                pc0 = ps[i] + (half - rs[i]) / (rs[j] - rs[i]) * (ps[j] - ps[i]); break
            }
        }
        var th = [rMin, rMax - rMin, log(max(pc0, 1e-6)), 4.0]
        func model(_ t: [Double], _ p: Double) -> Double { t[0] + t[1] / (1 + exp(t[3] * (log(p) - t[2]))) }
        func jacobian(_ t: [Double], _ p: Double) -> [Double] {
            let z = exp(t[3] * (log(p) - t[2]))
            let d = 1 + z
            return [1, 1 / d, t[1] * z * t[3] / (d * d), -t[1] * z * (log(p) - t[2]) / (d * d)]
        }
        // Bounded Levenberg–Marquardt (PressNumerics, shared with the impedance fits):
        // residuals model − R, the sharpness kept within 0.5…60.
        let lm = LevenbergMarquardt(maxIterations: 200)
        let fit = lm.minimise(theta0: th, lower: [-.infinity, -.infinity, -.infinity, 0.5], upper: [.infinity, .infinity, .infinity, 60]) { t in
            var j = Matrix(rows: ps.count, cols: 4)
            var r = [Double](repeating: 0, count: ps.count)
            for i in ps.indices {
                r[i] = model(t, ps[i]) - rs[i]
                let g = jacobian(t, ps[i])
                for k in 0..<4 { j[i, k] = g[k] }
            }
            return (r, j)
        }
        th = fit.theta
        let cost = fit.chiSquared
        let dof = pts.count - 4
        guard dof >= 1, th.allSatisfy(\.isFinite), th[1] > 0 else { return nil }
        let s2 = cost / Double(dof)
        guard let inv = LinearAlgebra.spdInverse(fit.jacobian.gram()) else { return nil }
        let se = (max(0, inv[2, 2]) * s2).squareRoot()
        let t = t975[min(dof, t975.count) - 1]
        let pc = exp(th[2])
        guard pc >= ps.min()!, pc <= ps.max()! else { return nil }
        // ln p90 = θ2 + ln 9 / θ3: gradient (1, −ln 9 / θ3²) on (θ2, θ3).
        let g = -log(9) / (th[3] * th[3])
        let seP90 = (max(0, inv[2, 2] + 2 * g * inv[2, 3] + g * g * inv[3, 3]) * s2).squareRoot()
        let p90 = pc * pow(9, 1 / th[3])
        return KneeFit(plateau: th[0], rise: th[1], csp: pc, sharpness: th[3], lnCspStandardError: se,
                       cspLow: pc * exp(-t * se), cspHigh: pc * exp(t * se), p90: p90,
                       rmse: (cost / Double(pts.count)).squareRoot(), p90Low: p90 * exp(-t * seP90), p90High: p90 * exp(t * seP90))
    }
}

/// The margin criterion: the highest pressure below which the interfacial resistance
/// exceeds the high-pressure reference (mean of the two highest-pressure levels) by
/// `margin`, interpolated in ln P between adjacent levels. It needs no lower plateau, so
/// it gives a number on a curve that keeps rising as pressure falls.
public struct MarginPressure: Sendable, Equatable, Codable {
    public var margin: Double
    /// Reference resistance and its standard error, Ω·cm²; threshold (1 + margin) × reference.
    public var reference: Double
    public var referenceSE: Double
    public var threshold: Double
    /// The margin pressure, MPa; nil when the resistance stays within the margin down to
    /// the lowest level (P_m is below the swept range).
    public var pressure: Double?
    /// 95 % interval, MPa: the optimistic crossing (each level's mean less its t·SE,
    /// against the threshold from the reference plus its t·SE) and the pessimistic one
    /// (the other way round). `low` nil: below the swept range. A bound equal to the top
    /// level means the crossing is at or above it.
    public var low: Double?
    public var high: Double?
    /// The lowest level's pressure, MPa (what "below the swept range" means).
    public var lowestPressure: Double
    /// False when a level had a single measurement: its spread is unknown, so there is
    /// no interval (`low` and `high` are nil). Nil in records written before.
    public var intervalAvailable: Bool?

    public var summary: String {
        let crit = "R > \(fmt3(1 + margin)) × the high-pressure \(fmt3(reference)) Ω·cm²"
        if intervalAvailable == false {
            let none = "no 95 % interval: a level has a single measurement (use --min-measurements 2 or more)"
            guard let p = pressure else { return "margin pressure below the swept range (\(crit) nowhere down to \(fmt3(lowestPressure)) MPa; \(none))" }
            return "margin pressure \(fmt3(p)) MPa (\(crit); \(none))"
        }
        guard let p = pressure else {
            return "margin pressure below the swept range (\(crit) nowhere down to \(fmt3(lowestPressure)) MPa"
                + (high.map { "; 95 % up to \(fmt3($0)) MPa" } ?? "") + ")"
        }
        return "margin pressure \(fmt3(p)) MPa (\(crit); 95 % \(low.map(fmt3) ?? "< \(fmt3(lowestPressure))")–\(high.map(fmt3) ?? fmt3(p)))"
    }

    /// Nil with fewer than three levels (two make the reference).
    public static func find(_ points: [SweepPoint], margin: Double) -> MarginPressure? {
        let pts = points.filter { $0.pressure > 0 && $0.resistance.isFinite }.sorted { $0.pressure > $1.pressure }
        guard pts.count >= 3 else { return nil }
        let a = pts[0], b = pts[1]
        let ref = (a.resistance + b.resistance) / 2
        let refSE = (a.resistanceSE * a.resistanceSE + b.resistanceSE * b.resistanceSE).squareRoot() / 2
        let tRef = KneeFit.t975(dof: max(1, a.samples + b.samples - 2))
        func t(_ p: SweepPoint) -> Double { p.samples > 1 ? KneeFit.t975(dof: p.samples - 1) : 0 }
        /// The highest crossing of `th` by `v`, scanning down from the top level.
        func crossing(_ v: [Double], _ th: Double) -> Double? {
            if v[0] > th { return pts[0].pressure }
            for i in 1..<pts.count where v[i] > th {
                let x0 = log(pts[i - 1].pressure), x1 = log(pts[i].pressure)
                let f = (th - v[i - 1]) / (v[i] - v[i - 1])
                return exp(x0 + min(max(f, 0), 1) * (x1 - x0))
            }
            return nil
        }
        let th = (1 + margin) * ref
        let est = crossing(pts.map(\.resistance), th)
        let pess = crossing(pts.map { $0.resistance + t($0) * $0.resistanceSE }, (1 + margin) * (ref - tRef * refSE))
        let opt = crossing(pts.map { $0.resistance - t($0) * $0.resistanceSE }, (1 + margin) * (ref + tRef * refSE))
        // One measurement at a level: its standard error is unknown, not zero.
        if pts.contains(where: { $0.samples < 2 }) {
            return MarginPressure(margin: margin, reference: ref, referenceSE: refSE, threshold: th, pressure: est,
                                  low: nil, high: nil, lowestPressure: pts.last!.pressure, intervalAvailable: false)
        }
        return MarginPressure(margin: margin, reference: ref, referenceSE: refSE, threshold: th, pressure: est,
                              low: opt.map { o in est.map { min(o, $0) } ?? o }, high: pess.map { q in est.map { max(q, $0) } ?? q },
                              lowestPressure: pts.last!.pressure, intervalAvailable: true)
    }
}

/// The dynamic protocol's answer: scanning down from the highest level, the lowest level
/// at which the resistance did not grow while the cell was stripped; the CSP lies between
/// it and the next lower level, which grew.
public struct DynamicCSP: Sendable, Equatable, Codable {
    /// Growth threshold, fraction per hour.
    public var threshold: Double
    /// The lowest non-growing level's pressure, MPa; nil when the highest level grew.
    public var pressure: Double?
    /// The next lower level's pressure, where the resistance grew, MPa; nil when no level
    /// grew (the dynamic CSP is at or below the lowest level).
    public var grewAt: Double?
    /// Mean |J|, mA/cm², and temperature, °C, at the `pressure` level.
    public var currentDensity: Double?
    public var temperature: Double?
    /// The highest level's pressure (when it grew, the CSP is above the swept range).
    public var highestPressure: Double

    public var summary: String {
        let j = currentDensity.map { " at |J| \(fmt3($0)) mA/cm²" } ?? ""
        let thr = "growth > \(fmt3(threshold * 100)) %/h"
        guard let p = pressure else { return "dynamic CSP above the swept range (\(thr) already at \(fmt3(highestPressure)) MPa)" }
        guard let g = grewAt else { return "dynamic CSP at or below \(fmt3(p)) MPa (no level grew, \(thr)\(j))" }
        return "dynamic CSP \(fmt3(p)) MPa (bracket \(fmt3(g))–\(fmt3(p)) MPa: \(thr) at \(fmt3(g))\(j))"
    }

    /// Nil unless the points carry growth verdicts (dynamic sweeps).
    public static func find(_ points: [SweepPoint], threshold: Double) -> DynamicCSP? {
        let pts = points.filter { $0.grows != nil }.sorted { $0.pressure > $1.pressure }
        guard let top = pts.first else { return nil }
        var held: SweepPoint?
        for p in pts {
            if p.grows == true {
                return DynamicCSP(threshold: threshold, pressure: held?.pressure, grewAt: held == nil ? nil : p.pressure,
                                  currentDensity: held?.currentDensity, temperature: held?.temperature, highestPressure: top.pressure)
            }
            held = p
        }
        return DynamicCSP(threshold: threshold, pressure: held?.pressure, grewAt: nil, currentDensity: held?.currentDensity,
                          temperature: held?.temperature, highestPressure: top.pressure)
    }
}

/// One leg's criteria.
public struct SweepLegAnalysis: Sendable, Equatable, Codable {
    public var leg: SweepLeg
    /// Levels in the leg (the turning level of a down-then-up sweep counts in both).
    public var levels: Int
    public var fit: KneeFit?
    public var margin: MarginPressure?
    public var dynamic: DynamicCSP?
}

/// How the up leg of a down-then-up sweep differs from its down leg (up − down).
public struct SweepHysteresis: Sendable, Equatable, Codable {
    /// Knee P_c shift, MPa, and the half-width of its 95 % interval (the legs' half-widths
    /// in quadrature); nil unless both legs have a knee.
    public var cspShift: Double?
    public var cspShiftHalfWidth: Double?
    /// Margin-pressure shift and half-width, MPa; nil unless both legs crossed.
    public var marginShift: Double?
    public var marginShiftHalfWidth: Double?
    /// Mean of (R_up − R_down) / R_down over the setpoints both legs measured, and how many.
    public var meanRelativeResistanceDifference: Double?
    public var pairs: Int

    public var summary: String {
        var s: [String] = []
        if let d = cspShift { s.append("CSP up − down \(fmt3(d)) ± \(fmt3(cspShiftHalfWidth ?? .nan)) MPa") }
        if let d = marginShift { s.append("margin pressure up − down \(fmt3(d)) ± \(fmt3(marginShiftHalfWidth ?? .nan)) MPa") }
        if let r = meanRelativeResistanceDifference { s.append("R up vs down \(fmt3(r * 100)) % over \(pairs) levels") }
        return "hysteresis: " + (s.isEmpty ? "not measurable" : s.joined(separator: ", "))
    }

    static func between(down: SweepLegAnalysis, up: SweepLegAnalysis, downPoints: [SweepPoint], upPoints: [SweepPoint]) -> SweepHysteresis {
        func half(_ lo: Double?, _ hi: Double?) -> Double? { guard let lo, let hi else { return nil }; return (hi - lo) / 2 }
        var h = SweepHysteresis(pairs: 0)
        if let a = down.fit, let b = up.fit {
            h.cspShift = b.csp - a.csp
            h.cspShiftHalfWidth = (pow(half(a.cspLow, a.cspHigh)!, 2) + pow(half(b.cspLow, b.cspHigh)!, 2)).squareRoot()
        }
        if let a = down.margin, let b = up.margin, let pa = a.pressure, let pb = b.pressure {
            h.marginShift = pb - pa
            if let ha = half(a.low, a.high), let hb = half(b.low, b.high) { h.marginShiftHalfWidth = (ha * ha + hb * hb).squareRoot() }
        }
        var diffs: [Double] = []
        for u in upPoints {
            if let d = downPoints.first(where: { abs($0.setpoint - u.setpoint) <= 1e-9 * max(1, abs(u.setpoint)) }), d.resistance > 0 {
                diffs.append((u.resistance - d.resistance) / d.resistance)
            }
        }
        h.pairs = diffs.count
        if !diffs.isEmpty { h.meanRelativeResistanceDifference = diffs.reduce(0, +) / Double(diffs.count) }
        return h
    }
}
