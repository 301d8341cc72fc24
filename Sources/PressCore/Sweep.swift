#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a critical-stack-pressure sweep does.
public struct SweepSettings: Sendable, Equatable, Codable {
    /// First (highest) and last (lowest) pressure, MPa. The sweep steps down: contact is
    /// lost, and interfacial resistance rises, as pressure falls through the CSP.
    public var from: Double
    public var to: Double
    /// Pressure levels, including both ends.
    public var steps: Int
    /// Time at each level after it is reached, s. Only resistance measurements acquired
    /// in the last `measureFraction` of it count (an analyser's result carries the time
    /// its spectrum was taken, which may be minutes before it arrives).
    public var dwell: Double
    public var measureFraction: Double
    /// Distinct resistance measurements a level needs; the dwell extends until it has
    /// them, for at most `measurementTimeout` s more, and the sweep aborts if they do
    /// not come.
    public var minMeasurements: Int
    public var measurementTimeout: Double
    /// A level not reached (in band) within this is an abort, s.
    public var settleTimeout: Double
    /// Abort when the resistance exceeds this multiple of the lowest seen so far
    /// (impedance runaway: the interface is being damaged).
    public var runawayFactor: Double
    /// Where the setpoint goes when the sweep ends, MPa (nil: `from`).
    public var returnTo: Double?

    public init(from: Double, to: Double, steps: Int = 12, dwell: Double = 60, measureFraction: Double = 0.5,
                minMeasurements: Int = 3, measurementTimeout: Double = 900,
                settleTimeout: Double = 120, runawayFactor: Double = 20, returnTo: Double? = nil) {
        self.from = from; self.to = to; self.steps = steps; self.dwell = dwell; self.measureFraction = measureFraction
        self.minMeasurements = minMeasurements; self.measurementTimeout = measurementTimeout
        self.settleTimeout = settleTimeout; self.runawayFactor = runawayFactor; self.returnTo = returnTo
    }

    enum CodingKeys: String, CodingKey {
        case from, to, steps, dwell, measureFraction, minMeasurements, measurementTimeout, settleTimeout, runawayFactor, returnTo
    }

    /// Also reads settings recorded before measurements carried their time (no
    /// `minMeasurements`, `measurementTimeout`).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(from: try c.decode(Double.self, forKey: .from), to: try c.decode(Double.self, forKey: .to),
                  steps: try c.decode(Int.self, forKey: .steps), dwell: try c.decode(Double.self, forKey: .dwell),
                  measureFraction: try c.decode(Double.self, forKey: .measureFraction),
                  minMeasurements: try c.decodeIfPresent(Int.self, forKey: .minMeasurements) ?? 1,
                  measurementTimeout: try c.decodeIfPresent(Double.self, forKey: .measurementTimeout) ?? 900,
                  settleTimeout: try c.decode(Double.self, forKey: .settleTimeout),
                  runawayFactor: try c.decode(Double.self, forKey: .runawayFactor),
                  returnTo: try c.decodeIfPresent(Double.self, forKey: .returnTo))
    }

    /// The pressure levels, high to low.
    public var levels: [Double] {
        (0..<steps).map { from + (to - from) * Double($0) / Double(max(1, steps - 1)) }
    }

    /// Problems that make the settings unusable on a channel with `limits`.
    public func validationErrors(limits: PressureLimits) -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(from > to) { e.append(("from_mpa", "must be above to_mpa (the sweep steps down)")) }
        if !(to >= limits.minSetpoint) { e.append(("to_mpa", "must be ≥ the channel's min_mpa \(limits.minSetpoint)")) }
        if !(from <= limits.maxSetpoint) { e.append(("from_mpa", "must be ≤ the channel's max_mpa \(limits.maxSetpoint)")) }
        if !(steps >= 6 && steps <= 100) { e.append(("steps", "must be 6…100 (the knee fit needs at least 6 levels)")) }
        if !(dwell > 0) { e.append(("dwell_s", "must be > 0")) }
        if !(measureFraction > 0 && measureFraction <= 1) { e.append(("measure_fraction", "must be in (0, 1]")) }
        if !(minMeasurements >= 1 && minMeasurements <= 1000) { e.append(("min_measurements", "must be 1…1000")) }
        if !(measurementTimeout >= 0 && measurementTimeout <= 86_400) { e.append(("measurement_timeout_s", "must be 0…86400")) }
        if !(settleTimeout > 0) { e.append(("settle_timeout_s", "must be > 0")) }
        if !(runawayFactor > 1) { e.append(("runaway_factor", "must be > 1")) }
        if let r = returnTo, !(r >= limits.minSetpoint && r <= limits.maxSetpoint) { e.append(("return_mpa", "must be within the channel's limits")) }
        return e
    }
}

/// One level of a sweep.
public struct SweepPoint: Sendable, Equatable, Codable {
    public var setpoint: Double
    /// Mean measured stack pressure over the measurement window, MPa.
    public var pressure: Double
    /// Mean and standard deviation of the interfacial resistance, Ω·cm², over `samples`
    /// distinct measurements (each acquired at its own time, after the level settled).
    public var resistance: Double
    public var resistanceSD: Double
    public var samples: Int
    /// Mean cell temperature, °C, and mean absolute current density, mA/cm², while the
    /// level was measured (nil where the channel has no such signal).
    public var temperature: Double?
    public var currentDensity: Double?
    /// Acquisition times of the first and last measurement used, loop seconds.
    public var firstMeasurement: Double?
    public var lastMeasurement: Double?
    public init(setpoint: Double, pressure: Double, resistance: Double, resistanceSD: Double, samples: Int, temperature: Double?,
                currentDensity: Double? = nil, firstMeasurement: Double? = nil, lastMeasurement: Double? = nil) {
        self.setpoint = setpoint; self.pressure = pressure; self.resistance = resistance
        self.resistanceSD = resistanceSD; self.samples = samples; self.temperature = temperature
        self.currentDensity = currentDensity; self.firstMeasurement = firstMeasurement; self.lastMeasurement = lastMeasurement
    }
}

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
        func sse(_ t: [Double]) -> Double { zip(ps, rs).reduce(0) { $0 + pow($1.1 - model(t, $1.0), 2) } }
        func jacobian(_ t: [Double], _ p: Double) -> [Double] {
            let z = exp(t[3] * (log(p) - t[2]))
            let d = 1 + z
            return [1, 1 / d, t[1] * z * t[3] / (d * d), -t[1] * z * (log(p) - t[2]) / (d * d)]
        }
        var lambda = 1e-3
        var cost = sse(th)
        for _ in 0..<200 {
            var jtj = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
            var jtr = [Double](repeating: 0, count: 4)
            for (p, r) in zip(ps, rs) {
                let j = jacobian(th, p), res = r - model(th, p)
                for a in 0..<4 { jtr[a] += j[a] * res; for b in 0..<4 { jtj[a][b] += j[a] * j[b] } }
            }
            var a = jtj
            for k in 0..<4 { a[k][k] *= 1 + lambda }
            guard let step = solve4(a, jtr) else { lambda *= 10; continue }
            var trial = th
            for k in 0..<4 { trial[k] += step[k] }
            trial[3] = min(max(trial[3], 0.5), 60)
            let c = sse(trial)
            if c < cost {
                let done = abs(cost - c) < 1e-12 * max(1, cost)
                th = trial; cost = c; lambda = max(lambda / 10, 1e-12)
                if done { break }
            } else {
                lambda *= 10
                if lambda > 1e12 { break }
            }
        }
        let dof = pts.count - 4
        guard dof >= 1, th.allSatisfy(\.isFinite), th[1] > 0 else { return nil }
        let s2 = cost / Double(dof)
        var jtj = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
        for p in ps { let j = jacobian(th, p); for a in 0..<4 { for b in 0..<4 { jtj[a][b] += j[a] * j[b] } } }
        guard let inv = invert4(jtj) else { return nil }
        let se = (max(0, inv[2][2]) * s2).squareRoot()
        let t = t975[min(dof, t975.count) - 1]
        let pc = exp(th[2])
        guard pc >= ps.min()!, pc <= ps.max()! else { return nil }
        return KneeFit(plateau: th[0], rise: th[1], csp: pc, sharpness: th[3], lnCspStandardError: se,
                       cspLow: pc * exp(-t * se), cspHigh: pc * exp(t * se), p90: pc * pow(9, 1 / th[3]),
                       rmse: (cost / Double(pts.count)).squareRoot())
    }
}

/// Gaussian elimination with partial pivoting for a 4×4 system.
func solve4(_ m: [[Double]], _ v: [Double]) -> [Double]? {
    var a = m, b = v
    let n = 4
    for c in 0..<n {
        var p = c
        for r in c..<n where abs(a[r][c]) > abs(a[p][c]) { p = r }
        guard abs(a[p][c]) > 1e-300 else { return nil }
        a.swapAt(c, p); b.swapAt(c, p)
        for r in (c + 1)..<n {
            let f = a[r][c] / a[c][c]
            for k in c..<n { a[r][k] -= f * a[c][k] }
            b[r] -= f * b[c]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        var s = b[r]
        for k in (r + 1)..<n { s -= a[r][k] * x[k] }
        x[r] = s / a[r][r]
    }
    return x.allSatisfy(\.isFinite) ? x : nil
}

func invert4(_ m: [[Double]]) -> [[Double]]? {
    var cols: [[Double]] = []
    for i in 0..<4 {
        var e = [Double](repeating: 0, count: 4); e[i] = 1
        guard let c = solve4(m, e) else { return nil }
        cols.append(c)
    }
    return (0..<4).map { r in (0..<4).map { c in cols[c][r] } }
}

/// How a sweep ended. Persisted (run log) and shown by its raw value.
public enum SweepStatus: String, Sendable, Codable, CaseIterable {
    /// Every level measured (the fit may still have failed: see the note).
    case done
    /// Cancelled, pre-empted, or a level could not be reached.
    case aborted
}

/// The outcome of a sweep.
public struct SweepResult: Sendable, Equatable, Codable {
    public var settings: SweepSettings
    public var points: [SweepPoint]
    public var fit: KneeFit?
    public var status: SweepStatus
    /// Why it aborted, or why there is no fit.
    public var note: String?
    /// Loop time at start and end, s.
    public var started: Double
    public var finished: Double

    public init(settings: SweepSettings, points: [SweepPoint], fit: KneeFit?, status: SweepStatus, note: String?, started: Double, finished: Double) {
        self.settings = settings; self.points = points; self.fit = fit; self.status = status; self.note = note
        self.started = started; self.finished = finished
    }
}

extension SweepResult {
    /// One line for the journal and the run log.
    public var summary: String {
        guard let f = fit else { return (note ?? "no fit") + "; \(points.count) levels" }
        return "critical stack pressure \(fmt3(f.csp)) MPa (95 % \(fmt3(f.cspLow))–\(fmt3(f.cspHigh))), 90 % recovery at \(fmt3(f.p90)) MPa, "
            + "plateau \(fmt3(f.plateau)) Ω·cm²; \(points.count) levels" + (note.map { "; " + $0 } ?? "")
    }
}

/// The sweep as a pure state machine: fed each tick, it says which setpoint it wants.
public struct CSPSweep: Sendable, Equatable, Codable {
    public let settings: SweepSettings
    public private(set) var index = 0
    /// When the present level was reached (in band), and since when it has been sought.
    public private(set) var reachedAt: Double?
    public private(set) var soughtSince: Double?
    public private(set) var points: [SweepPoint] = []
    public private(set) var started: Double?
    public private(set) var result: SweepResult?
    /// Over the present level's measurement window: pressure per tick; resistance per
    /// distinct measurement; temperature and current density per fresh sample.
    private var sumP = 0.0, nP = 0
    private var rN = 0, rMean = 0.0, rM2 = 0.0, rFirst: Double?, rLast: Double?
    private var sumT = 0.0, nT = 0, sumJ = 0.0, nJ = 0
    /// Acquisition time of the newest resistance measurement seen (each is used once).
    private var newestSeen = -Double.infinity
    private var lowestR = Double.infinity

    public init(settings: SweepSettings) { self.settings = settings }

    public var levels: [Double] { settings.levels }
    /// The setpoint the sweep wants now.
    public var setpoint: Double { levels[min(index, levels.count - 1)] }
    public var finished: Bool { result != nil }
    /// Distinct measurements taken at the present level so far.
    public var measurementsAtLevel: Int { rN }

    private mutating func finish(now: Double, status: SweepStatus, note: String?) {
        var fit = KneeFit.fit(points)
        var note = note
        if fit == nil && note == nil {
            note = points.count < 6 ? "only \(points.count) levels measured; the knee fit needs 6" : "no knee inside the swept range \(settings.to)…\(settings.from) MPa (resistance flat, or still falling at the lowest level)"
        }
        if let f = fit, !(f.cspHigh.isFinite && f.cspLow > 0) { fit = nil; note = "the knee fit did not converge" }
        result = SweepResult(settings: settings, points: points, fit: fit, status: status, note: note, started: started ?? now, finished: now)
    }

    /// One tick. `inBand`: the channel is regulating within its band of the sweep's
    /// setpoint. Measurements are used by their acquisition time, each once: a
    /// resistance acquired before the level's measurement window (an analyser's result
    /// from the previous level) or already counted is not a new measurement.
    public mutating func update(now: Double, pressure: Double?, inBand: Bool, resistance: Sample?, temperature: Sample?,
                                currentDensity: Sample? = nil) {
        guard result == nil else { return }
        if started == nil { started = now }
        if soughtSince == nil { soughtSince = now }
        let fresh = resistance.flatMap { r in r.value.isFinite && r.time > newestSeen && r.time <= now + 1e-9 ? r : nil }
        if let r = fresh {
            newestSeen = r.time
            if r.time >= started!, r.value > settings.runawayFactor * lowestR && lowestR.isFinite {
                return finish(now: now, status: .aborted,
                              note: "impedance runaway at \(fmt3(pressure ?? setpoint)) MPa: \(fmt3(r.value)) Ω·cm² > \(settings.runawayFactor) × the lowest \(fmt3(lowestR))")
            }
        }
        guard let reached = reachedAt else {
            if inBand { reachedAt = now; sumP = 0; nP = 0; resetResistance(); sumT = 0; nT = 0; sumJ = 0; nJ = 0 }
            else if now - soughtSince! > settings.settleTimeout {
                finish(now: now, status: .aborted, note: "level \(fmt3(setpoint)) MPa not reached within \(Int(settings.settleTimeout)) s")
            }
            return
        }
        let t = now - reached
        let windowStart = reached + settings.dwell * (1 - settings.measureFraction)
        if now >= windowStart {
            if let p = pressure { sumP += p; nP += 1 }
            if let r = fresh, r.time >= windowStart {
                // Welford: mean and spread of the distinct measurements.
                rN += 1
                let d = r.value - rMean
                rMean += d / Double(rN)
                rM2 += d * (r.value - rMean)
                if rFirst == nil { rFirst = r.time }
                rLast = r.time
            }
            if let T = temperature, T.time >= windowStart, T.value.isFinite { sumT += T.value; nT += 1 }
            if let j = currentDensity, j.time >= windowStart, j.value.isFinite { sumJ += abs(j.value); nJ += 1 }
        }
        guard t >= settings.dwell else { return }
        if rN < settings.minMeasurements {
            guard t >= settings.dwell + settings.measurementTimeout else { return }
            return finish(now: now, status: .aborted,
                          note: "level \(fmt3(setpoint)) MPa: \(rN) of \(settings.minMeasurements) resistance measurements acquired after it settled, "
                              + "within \(Int(settings.dwell + settings.measurementTimeout)) s (is the analyser running?)")
        }
        let mean = rMean
        let sd = rN > 1 ? (rM2 / Double(rN - 1)).squareRoot() : 0
        points.append(SweepPoint(setpoint: setpoint, pressure: nP > 0 ? sumP / Double(nP) : setpoint, resistance: mean, resistanceSD: sd,
                                 samples: rN, temperature: nT > 0 ? sumT / Double(nT) : nil,
                                 currentDensity: nJ > 0 ? sumJ / Double(nJ) : nil,
                                 firstMeasurement: rFirst, lastMeasurement: rLast))
        lowestR = min(lowestR, mean)
        index += 1
        reachedAt = nil
        soughtSince = now
        resetResistance()
        if index >= levels.count { finish(now: now, status: .done, note: nil) }
    }

    private mutating func resetResistance() { rN = 0; rMean = 0; rM2 = 0; rFirst = nil; rLast = nil }

    /// Ends the sweep early with what it has.
    public mutating func abort(now: Double, reason: String) {
        guard result == nil else { return }
        finish(now: now, status: .aborted, note: reason)
    }
}
