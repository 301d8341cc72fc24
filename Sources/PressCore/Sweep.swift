#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which way a sweep steps through its window.
public enum SweepDirection: String, Sendable, Codable, CaseIterable {
    /// From `from` down to `to` (from > to): contact is lost, and interfacial resistance
    /// rises, as pressure falls through the CSP.
    case down
    /// From `from` up to `to` (from < to): contact recovering.
    case up
    /// From `from` down to `to` and back up to `from` (from > to); the turning level is
    /// measured once and belongs to both legs.
    case downUp = "down_up"
}

/// What a sweep measures at each level.
public enum SweepProtocol: String, Sendable, Codable, CaseIterable {
    /// The level's mean interfacial resistance (the knee and margin criteria).
    case `static`
    /// Also the growth rate of interfacial resistance while the cycler strips lithium:
    /// the dynamic CSP is the lowest level, scanning down, at which it does not grow.
    case dynamic
}

/// The leg a sweep point belongs to.
public enum SweepLeg: String, Sendable, Codable, CaseIterable {
    case down, up
}

/// What a critical-stack-pressure sweep does.
public struct SweepSettings: Sendable, Equatable, Codable {
    /// First and last pressure of the first leg, MPa (see `direction`).
    public var from: Double
    public var to: Double
    /// Pressure levels of one leg, including both ends.
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
    /// Down (default), up, or down then up.
    public var direction: SweepDirection
    /// Static (default) or dynamic (growth rate while stripping).
    public var sweepProtocol: SweepProtocol
    /// The margin criterion: the margin pressure is where the resistance exceeds the
    /// high-pressure reference by this fraction (0.2 = 20 %).
    public var margin: Double
    /// Dynamic protocol: a level grows when its resistance rises faster than this
    /// fraction of itself per hour (0.05 = 5 %/h), significantly.
    public var growthThresholdPerHour: Double

    /// Shortest dwell, s, and fewest measurements per level of a dynamic sweep (a growth
    /// rate is a slope: it needs time and at least three points).
    public static let dynamicMinDwell = 120.0
    public static let dynamicMinMeasurements = 3

    public init(from: Double, to: Double, steps: Int = 12, dwell: Double = 60, measureFraction: Double = 0.5,
                minMeasurements: Int = 3, measurementTimeout: Double = 900,
                settleTimeout: Double = 120, runawayFactor: Double = 20, returnTo: Double? = nil,
                direction: SweepDirection = .down, sweepProtocol: SweepProtocol = .static, margin: Double = 0.2,
                growthThresholdPerHour: Double = 0.05) {
        self.from = from; self.to = to; self.steps = steps; self.dwell = dwell; self.measureFraction = measureFraction
        self.minMeasurements = minMeasurements; self.measurementTimeout = measurementTimeout
        self.settleTimeout = settleTimeout; self.runawayFactor = runawayFactor; self.returnTo = returnTo
        self.direction = direction; self.sweepProtocol = sweepProtocol; self.margin = margin
        self.growthThresholdPerHour = growthThresholdPerHour
    }

    enum CodingKeys: String, CodingKey {
        case from, to, steps, dwell, measureFraction, minMeasurements, measurementTimeout, settleTimeout, runawayFactor, returnTo
        case direction, sweepProtocol = "protocol", margin, growthThresholdPerHour
    }

    /// Also reads settings recorded before measurements carried their time (no
    /// `minMeasurements`, `measurementTimeout`) and before directions, protocols and the
    /// margin criterion (a static downward sweep, margin 0.2, threshold 0.05/h).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(from: try c.decode(Double.self, forKey: .from), to: try c.decode(Double.self, forKey: .to),
                  steps: try c.decode(Int.self, forKey: .steps), dwell: try c.decode(Double.self, forKey: .dwell),
                  measureFraction: try c.decode(Double.self, forKey: .measureFraction),
                  minMeasurements: try c.decodeIfPresent(Int.self, forKey: .minMeasurements) ?? 1,
                  measurementTimeout: try c.decodeIfPresent(Double.self, forKey: .measurementTimeout) ?? 900,
                  settleTimeout: try c.decode(Double.self, forKey: .settleTimeout),
                  runawayFactor: try c.decode(Double.self, forKey: .runawayFactor),
                  returnTo: try c.decodeIfPresent(Double.self, forKey: .returnTo),
                  direction: try c.decodeIfPresent(SweepDirection.self, forKey: .direction) ?? .down,
                  sweepProtocol: try c.decodeIfPresent(SweepProtocol.self, forKey: .sweepProtocol) ?? .static,
                  margin: try c.decodeIfPresent(Double.self, forKey: .margin) ?? 0.2,
                  growthThresholdPerHour: try c.decodeIfPresent(Double.self, forKey: .growthThresholdPerHour) ?? 0.05)
    }

    /// The levels of the first leg, `from` to `to`.
    var legLevels: [Double] {
        (0..<steps).map { from + (to - from) * Double($0) / Double(max(1, steps - 1)) }
    }

    /// Every level in the order the sweep visits it, with its leg. Down-then-up goes back
    /// from the turning level (measured once, on the down leg) to `from`.
    public var plan: [(setpoint: Double, leg: SweepLeg)] {
        let l = legLevels
        switch direction {
        case .down: return l.map { ($0, .down) }
        case .up: return l.map { ($0, .up) }
        case .downUp: return l.map { ($0, .down) } + l.reversed().dropFirst().map { ($0, .up) }
        }
    }

    /// The pressure levels in the order visited.
    public var levels: [Double] { plan.map(\.setpoint) }

    /// Problems that make the settings unusable on a channel with `limits`.
    public func validationErrors(limits: PressureLimits) -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        switch direction {
        case .down: if !(from > to) { e.append(("from_mpa", "must be above to_mpa (the sweep steps down; direction up steps up)")) }
        case .downUp: if !(from > to) { e.append(("from_mpa", "must be above to_mpa (direction down_up steps down to to_mpa and back)")) }
        case .up: if !(from < to) { e.append(("from_mpa", "must be below to_mpa (direction up steps up)")) }
        }
        let lowKey = from > to ? "to_mpa" : "from_mpa", highKey = from > to ? "from_mpa" : "to_mpa"
        if !(min(from, to) >= limits.minSetpoint) { e.append((lowKey, "\(fmt3(min(from, to))) MPa must be ≥ the channel's min_mpa \(fmt3(limits.minSetpoint)) MPa")) }
        if !(max(from, to) <= limits.maxSetpoint) { e.append((highKey, "\(fmt3(max(from, to))) MPa must be ≤ the channel's max_mpa \(fmt3(limits.maxSetpoint)) MPa")) }
        if !(steps >= 6 && steps <= 100) { e.append(("steps", "must be 6…100 (the knee fit needs at least 6 levels)")) }
        if !(dwell > 0 && dwell <= 7 * 86_400) { e.append(("dwell_s", "must be > 0 and ≤ 604800 (a week)")) }
        if !(measureFraction > 0 && measureFraction <= 1) { e.append(("measure_fraction", "must be in (0, 1]")) }
        if !(minMeasurements >= 1 && minMeasurements <= 1000) { e.append(("min_measurements", "must be 1…1000")) }
        if !(measurementTimeout >= 0 && measurementTimeout <= 86_400) { e.append(("measurement_timeout_s", "must be 0…86400")) }
        if !(settleTimeout > 0 && settleTimeout <= 86_400) { e.append(("settle_timeout_s", "must be > 0 and ≤ 86400")) }
        if !(runawayFactor > 1) { e.append(("runaway_factor", "must be > 1")) }
        if let r = returnTo, !(r >= limits.minSetpoint && r <= limits.maxSetpoint) {
            e.append(("return_mpa", "\(fmt3(r)) MPa must be within the channel's limits \(fmt3(limits.minSetpoint))…\(fmt3(limits.maxSetpoint)) MPa"))
        }
        if !(margin > 0 && margin <= 10) { e.append(("margin", "must be in (0, 10] (a fraction: 0.2 = 20 %)")) }
        if !(growthThresholdPerHour > 0 && growthThresholdPerHour <= 100) { e.append(("growth_threshold_per_h", "must be in (0, 100] (a fraction per hour: 0.05 = 5 %/h)")) }
        if sweepProtocol == .dynamic {
            if !(dwell >= Self.dynamicMinDwell) {
                e.append(("dwell_s", "must be ≥ \(fmt0(Self.dynamicMinDwell)) for a dynamic sweep (a growth rate needs time; minutes to hours in practice)"))
            }
            if !(minMeasurements >= Self.dynamicMinMeasurements) {
                e.append(("min_measurements", "must be ≥ \(Self.dynamicMinMeasurements) for a dynamic sweep (a growth rate is a slope)"))
            }
        }
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
    /// The leg the level belongs to (nil in records from before directions: down).
    public var leg: SweepLeg?
    /// Least-squares slope of the level's measurements against acquisition time, and its
    /// standard error, Ω·cm²/h (nil with fewer than 3 measurements or all at one time).
    public var slope: Double?
    public var slopeSE: Double?
    /// Dynamic protocol: the resistance grew (slope significantly positive and above the
    /// threshold). Nil for static sweeps.
    public var grows: Bool?
    public init(setpoint: Double, pressure: Double, resistance: Double, resistanceSD: Double, samples: Int, temperature: Double?,
                currentDensity: Double? = nil, firstMeasurement: Double? = nil, lastMeasurement: Double? = nil,
                leg: SweepLeg? = nil, slope: Double? = nil, slopeSE: Double? = nil, grows: Bool? = nil) {
        self.setpoint = setpoint; self.pressure = pressure; self.resistance = resistance
        self.resistanceSD = resistanceSD; self.samples = samples; self.temperature = temperature
        self.currentDensity = currentDensity; self.firstMeasurement = firstMeasurement; self.lastMeasurement = lastMeasurement
        self.leg = leg; self.slope = slope; self.slopeSE = slopeSE; self.grows = grows
    }

    /// Standard error of the level's mean resistance, Ω·cm².
    public var resistanceSE: Double { samples > 1 ? resistanceSD / Double(samples).squareRoot() : 0 }
    /// The growth rate relative to the level's resistance, fraction per hour.
    public var relativeSlope: Double? { slope.flatMap { resistance > 0 ? $0 / resistance : nil } }
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
    /// The knee of the first leg (the down leg of a down-then-up sweep).
    public var fit: KneeFit?
    public var status: SweepStatus
    /// Why it aborted, or why there is no fit.
    public var note: String?
    /// Loop time at start and end, s.
    public var started: Double
    public var finished: Double
    /// Each leg's criteria, the first leg first (nil in records from before them).
    public var legs: [SweepLegAnalysis]?
    /// Down-then-up sweeps: how the up leg differs from the down leg.
    public var hysteresis: SweepHysteresis?
    /// Mean absolute current density, mA/cm², and mean temperature, °C, over the measured
    /// levels: the conditions the CSP holds at (nil without the signal).
    public var currentDensity: Double?
    public var temperature: Double?

    public init(settings: SweepSettings, points: [SweepPoint], fit: KneeFit?, status: SweepStatus, note: String?, started: Double, finished: Double,
                legs: [SweepLegAnalysis]? = nil, hysteresis: SweepHysteresis? = nil, currentDensity: Double? = nil, temperature: Double? = nil) {
        self.settings = settings; self.points = points; self.fit = fit; self.status = status; self.note = note
        self.started = started; self.finished = finished
        self.legs = legs; self.hysteresis = hysteresis; self.currentDensity = currentDensity; self.temperature = temperature
    }

    /// The first leg's margin pressure and dynamic CSP.
    public var margin: MarginPressure? { legs?.first?.margin }
    public var dynamic: DynamicCSP? { legs?.first?.dynamic }
}

extension SweepResult {
    /// One line for the journal and the run log.
    public var summary: String {
        var parts: [String] = []
        if let f = fit {
            var k = "critical stack pressure \(fmt3(f.csp)) MPa (95 % \(fmt3(f.cspLow))–\(fmt3(f.cspHigh))), 90 % recovery at \(fmt3(f.p90)) MPa"
            if let lo = f.p90Low, let hi = f.p90High { k += " (95 % \(fmt3(lo))–\(fmt3(hi)))" }
            parts.append(k + ", plateau \(fmt3(f.plateau)) Ω·cm²")
        }
        if let m = margin { parts.append(m.summary) }
        if let d = dynamic { parts.append(d.summary) }
        if currentDensity != nil || temperature != nil {
            parts.append("held at " + [currentDensity.map { "|J| \(fmt3($0)) mA/cm²" }, temperature.map { "\(fmt3($0)) °C" }].compactMap { $0 }.joined(separator: ", "))
        }
        if let h = hysteresis { parts.append(h.summary) }
        parts.append("\(points.count) levels")
        if let n = note { parts.append(n) }
        if fit == nil && note == nil { parts.insert("no fit", at: 0) }
        return parts.joined(separator: "; ")
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
    /// Sums for the least-squares slope of resistance against acquisition time (hours
    /// since the level's first measurement; resistance less the first one).
    private var r0 = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0, syy = 0.0
    private var sumT = 0.0, nT = 0, sumJ = 0.0, nJ = 0
    /// Acquisition time of the newest resistance measurement seen (each is used once).
    private var newestSeen = -Double.infinity
    private var lowestR = Double.infinity

    public init(settings: SweepSettings) { self.settings = settings }

    public var levels: [Double] { settings.levels }
    /// The setpoint the sweep wants now.
    public var setpoint: Double { levels[min(index, levels.count - 1)] }
    /// The leg of the present level.
    public var leg: SweepLeg { settings.plan[min(index, levels.count - 1)].leg }
    public var finished: Bool { result != nil }
    /// Distinct measurements taken at the present level so far.
    public var measurementsAtLevel: Int { rN }

    /// The points of each leg (the turning level of a down-then-up sweep is in both).
    static func legPoints(_ points: [SweepPoint], direction: SweepDirection) -> [(SweepLeg, [SweepPoint])] {
        switch direction {
        case .down: return [(.down, points)]
        case .up: return [(.up, points)]
        case .downUp:
            let down = points.filter { ($0.leg ?? .down) == .down }
            let up = points.filter { $0.leg == .up }
            guard !up.isEmpty else { return [(.down, down)] }
            return [(.down, down), (.up, (down.last.map { [$0] } ?? []) + up)]
        }
    }

    static func analyse(_ pts: [SweepPoint], leg: SweepLeg, settings: SweepSettings) -> SweepLegAnalysis {
        var fit = KneeFit.fit(pts)
        if let f = fit, !(f.cspHigh.isFinite && f.cspLow > 0) { fit = nil }
        return SweepLegAnalysis(leg: leg, levels: pts.count, fit: fit, margin: MarginPressure.find(pts, margin: settings.margin),
                                dynamic: settings.sweepProtocol == .dynamic ? DynamicCSP.find(pts, threshold: settings.growthThresholdPerHour) : nil)
    }

    private mutating func finish(now: Double, status: SweepStatus, note: String?) {
        let split = Self.legPoints(points, direction: settings.direction)
        let legs = split.map { Self.analyse($0.1, leg: $0.0, settings: settings) }
        var fit = KneeFit.fit(split.first?.1 ?? [])
        var note = note
        if fit == nil && note == nil {
            let n = split.first?.1.count ?? 0
            note = n < 6 ? "only \(n) levels measured; the knee fit needs 6" : "no knee inside the swept range \(min(settings.to, settings.from))…\(max(settings.to, settings.from)) MPa (resistance flat, or still falling at the lowest level)"
            if legs.first?.margin?.pressure != nil { note! += "; the margin pressure is the stated criterion" }
        }
        if let f = fit, !(f.cspHigh.isFinite && f.cspLow > 0) { fit = nil; note = "the knee fit did not converge" }
        if settings.sweepProtocol == .dynamic, !points.isEmpty, !points.contains(where: { ($0.currentDensity ?? 0) > 1e-6 }) {
            let w = "no cell current was recorded: the dynamic protocol needs the cycler stripping lithium during the sweep"
            note = note.map { $0 + "; " + w } ?? w
        }
        var hyst: SweepHysteresis?
        if legs.count == 2 { hyst = SweepHysteresis.between(down: legs[0], up: legs[1], downPoints: split[0].1, upPoints: split[1].1.filter { $0.leg == .up }) }
        let js = points.compactMap(\.currentDensity), ts = points.compactMap(\.temperature)
        result = SweepResult(settings: settings, points: points, fit: fit, status: status, note: note, started: started ?? now, finished: now,
                             legs: legs, hysteresis: hyst,
                             currentDensity: js.isEmpty ? nil : js.reduce(0, +) / Double(js.count),
                             temperature: ts.isEmpty ? nil : ts.reduce(0, +) / Double(ts.count))
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
                finish(now: now, status: .aborted, note: "level \(fmt3(setpoint)) MPa not reached within \(fmt0(settings.settleTimeout)) s")
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
                if rFirst == nil { rFirst = r.time; r0 = r.value }
                rLast = r.time
                let x = (r.time - rFirst!) / 3600, y = r.value - r0
                sx += x; sy += y; sxx += x * x; sxy += x * y; syy += y * y
            }
            if let T = temperature, T.time >= windowStart, T.value.isFinite { sumT += T.value; nT += 1 }
            if let j = currentDensity, j.time >= windowStart, j.value.isFinite { sumJ += abs(j.value); nJ += 1 }
        }
        guard t >= settings.dwell else { return }
        if rN < settings.minMeasurements {
            guard t >= settings.dwell + settings.measurementTimeout else { return }
            return finish(now: now, status: .aborted,
                          note: "level \(fmt3(setpoint)) MPa: \(rN) of \(settings.minMeasurements) resistance measurements acquired after it settled, "
                              + "within \(fmt0(settings.dwell + settings.measurementTimeout)) s (is the analyser running?)")
        }
        let mean = rMean
        let sd = rN > 1 ? (rM2 / Double(rN - 1)).squareRoot() : 0
        let (slope, slopeSE) = levelSlope()
        var grows: Bool?
        if settings.sweepProtocol == .dynamic {
            // Significantly positive (95 %, two-sided t) and above the threshold.
            grows = slope.map { b in b > settings.growthThresholdPerHour * mean && b - KneeFit.t975(dof: rN - 2) * (slopeSE ?? .infinity) > 0 } ?? false
        }
        points.append(SweepPoint(setpoint: setpoint, pressure: nP > 0 ? sumP / Double(nP) : setpoint, resistance: mean, resistanceSD: sd,
                                 samples: rN, temperature: nT > 0 ? sumT / Double(nT) : nil,
                                 currentDensity: nJ > 0 ? sumJ / Double(nJ) : nil,
                                 firstMeasurement: rFirst, lastMeasurement: rLast,
                                 leg: leg, slope: slope, slopeSE: slopeSE, grows: grows))
        lowestR = min(lowestR, mean)
        index += 1
        reachedAt = nil
        soughtSince = now
        resetResistance()
        if index >= levels.count { finish(now: now, status: .done, note: nil) }
    }

    private mutating func resetResistance() {
        rN = 0; rMean = 0; rM2 = 0; rFirst = nil; rLast = nil
        r0 = 0; sx = 0; sy = 0; sxx = 0; sxy = 0; syy = 0
    }

    /// Least-squares slope of the level's measurements against acquisition time, Ω·cm²/h,
    /// and its standard error; nil with fewer than 3 measurements or all at one time.
    private func levelSlope() -> (Double?, Double?) {
        guard rN >= 3 else { return (nil, nil) }
        let n = Double(rN), mx = sx / n, my = sy / n
        let vxx = sxx - n * mx * mx, vxy = sxy - n * mx * my, vyy = syy - n * my * my
        guard vxx > 1e-18 else { return (nil, nil) }
        let b = vxy / vxx
        let sse = max(0, vyy - b * vxy)
        return (b, (sse / (n - 2) / vxx).squareRoot())
    }

    /// Ends the sweep early with what it has.
    public mutating func abort(now: Double, reason: String) {
        guard result == nil else { return }
        finish(now: now, status: .aborted, note: reason)
    }
}
