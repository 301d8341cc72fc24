/// Settings of the impedance-aware supervisor (opt-in per channel).
public struct SupervisorSettings: Sendable, Equatable, Codable {
    /// The window the supervisor may move the setpoint in, MPa (inside the channel's limits).
    public var windowMin: Double
    public var windowMax: Double
    /// Keep interfacial resistance within (1 + margin) × its learned minimum.
    public var margin: Double
    /// Setpoint step, MPa; the supervisor's pressures are the grid windowMax − k·step.
    public var step: Double
    /// Time at a level before deciding (and the shortest time between changes), s: the
    /// rate limit is `step` per `interval`.
    public var interval: Double
    /// Resistance in the first `settle` s after a change is not used, s.
    public var settle: Double
    /// After settling on a level, try one step lower again after this long, s (the
    /// interface changes as the cell ages).
    public var reprobe: Double

    public init(windowMin: Double, windowMax: Double, margin: Double = 0.2, step: Double = 0.25,
                interval: Double = 120, settle: Double = 20, reprobe: Double = 1800) {
        self.windowMin = windowMin; self.windowMax = windowMax; self.margin = margin; self.step = step
        self.interval = interval; self.settle = settle; self.reprobe = reprobe
    }

    public func validationErrors(limits: PressureLimits) -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(windowMin >= limits.minSetpoint) { e.append(("window_min_mpa", "must be ≥ the channel's min_mpa \(limits.minSetpoint)")) }
        if !(windowMax <= limits.maxSetpoint) { e.append(("window_max_mpa", "must be ≤ the channel's max_mpa \(limits.maxSetpoint)")) }
        if !(windowMax > windowMin) { e.append(("window_max_mpa", "must be above window_min_mpa")) }
        if !(margin > 0 && margin < 10) { e.append(("margin", "must be in (0, 10)")) }
        if !(step > 0 && step <= windowMax - windowMin) { e.append(("step_mpa", "must be > 0 and fit in the window")) }
        if !(interval > settle && settle >= 0) { e.append(("interval_s", "must be above settle_s (≥ 0)")) }
        if !(reprobe >= interval) { e.append(("reprobe_s", "must be ≥ interval_s")) }
        return e
    }

    /// The level of the grid nearest `p`, inside the window.
    public func level(_ p: Double) -> Int { max(0, min(levels - 1, Int(((windowMax - p) / step).rounded()))) }
    public var levels: Int { Int(((windowMax - windowMin) / step + 1e-9).rounded(.down)) + 1 }
    public func pressure(_ k: Int) -> Double { windowMax - Double(k) * step }
}

/// Interfacial resistance learned per pressure level: the regression the supervisor
/// decides on, with its uncertainty.
public struct ResistanceMap: Sendable, Equatable, Codable {
    public struct Bin: Sendable, Equatable, Codable {
        public var pressure: Double
        /// Exponentially weighted mean and variance of R, Ω·cm², and the sample count.
        public var mean: Double = 0
        public var variance: Double = 0
        public var count: Int = 0
        /// Loop time of the latest sample, s.
        public var updated: Double = 0
        public var standardError: Double { count > 1 ? (variance / Double(min(count, 500))).squareRoot() : .infinity }
    }
    public var bins: [Bin]

    public init(settings: SupervisorSettings) {
        bins = (0..<settings.levels).map { Bin(pressure: settings.pressure($0)) }
    }

    mutating func add(_ r: Double, level k: Int, now: Double) {
        var b = bins[k]
        b.count += 1
        // Weighted toward the recent (memory ≈ 500 samples): the interface ages.
        let w = 1 / Double(min(b.count, 500))
        let d = r - b.mean
        b.mean += w * d
        b.variance = (1 - w) * (b.variance + w * d * d)
        b.updated = now
        bins[k] = b
    }

    /// Bins with enough data to trust.
    public var measured: [Bin] { bins.filter { $0.count >= 20 } }
    /// The lowest mean resistance measured, Ω·cm².
    public var minimum: Double? { measured.map(\.mean).min() }

    /// The knee fitted to the measured levels, when there are enough of them.
    public var fit: KneeFit? {
        KneeFit.fit(measured.map { SweepPoint(setpoint: $0.pressure, pressure: $0.pressure, resistance: $0.mean,
                                              resistanceSD: $0.variance.squareRoot(), samples: $0.count, temperature: nil) })
    }
}

/// A change the supervisor asks for.
public struct SupervisorDecision: Sendable, Equatable {
    public var setpoint: Double
    public var reason: String
}

/// The impedance-aware supervisor: moves the setpoint within its window to keep the
/// interfacial resistance within a margin of its learned minimum, at the lowest
/// pressure that achieves it (less pressure, less creep and cracking risk).
///
/// At each level it waits `settle`, then averages R until `interval` has passed, and
/// decides: R above the margin → one step up; within it → one step down, unless the
/// level below is known (recently) to be above the margin, in which case it stays — the
/// lowest level within the margin — and tries one step lower again after `reprobe`.
/// Never outside the window; at most one step per interval; every change comes with
/// its reason. Locked, it learns but never moves.
public struct ImpedanceSupervisor: Sendable, Equatable, Codable {
    public var settings: SupervisorSettings
    public private(set) var map: ResistanceMap
    public private(set) var locked: Bool = false
    /// Why it is locked (operator, an operator setpoint).
    public private(set) var lockReason: String?
    /// When the present level was entered; the latest decision and its reason.
    public private(set) var levelSince: Double?
    public private(set) var lastReason: String?
    /// Since when it has been holding the lowest level within the margin.
    public private(set) var convergedAt: Double?
    /// The knee fitted to the learned levels, refreshed at each decision (nil until
    /// the levels span a knee). Kept here so that status never runs the fit.
    public private(set) var knee: KneeFit?
    private var kneeFittedAt: Double?

    public init(settings: SupervisorSettings) {
        self.settings = settings
        self.map = ResistanceMap(settings: settings)
    }

    public mutating func lock(_ reason: String) { locked = true; lockReason = reason }
    public mutating func unlock(now: Double) { locked = false; lockReason = nil; levelSince = now }

    /// The resistance limit in force, Ω·cm².
    public var limit: Double? { map.minimum.map { $0 * (1 + settings.margin) } }

    /// One tick while regulating at `setpoint` (the supervisor's or anyone's).
    public mutating func update(now: Double, setpoint: Double, pressure: Double?, inBand: Bool, resistance: Double?) -> SupervisorDecision? {
        let s = settings
        // Outside the window (an operator moved it there, or the window changed): back in.
        if !locked && (setpoint < s.windowMin - 1e-9 || setpoint > s.windowMax + 1e-9) {
            let to = s.pressure(s.level(setpoint))
            levelSince = now
            return decide(to, "setpoint \(fmt3(setpoint)) MPa is outside the supervisor's window \(fmt3(s.windowMin))…\(fmt3(s.windowMax)) MPa")
        }
        let k = s.level(setpoint)
        // Between two levels (an operator's setpoint): onto the nearest one, or it could
        // never measure where it is.
        if !locked && abs(setpoint - s.pressure(k)) > 1e-6 {
            levelSince = now
            return decide(s.pressure(k), "setpoint \(fmt3(setpoint)) MPa is between the supervisor's levels: moving to the nearest, \(fmt3(s.pressure(k))) MPa")
        }
        if levelSince == nil { levelSince = now }
        let t = now - levelSince!
        if let r = resistance, r.isFinite, inBand, t >= s.settle, abs(setpoint - s.pressure(k)) < 1e-6 {
            map.add(r, level: k, now: now)
        }
        if now - (kneeFittedAt ?? -.infinity) >= s.interval { knee = map.fit; kneeFittedAt = now }
        guard !locked, t >= s.interval, let limit, map.bins[k].count >= 20 else { return nil }
        let here = map.bins[k]
        if here.mean > limit && k > 0 {
            convergedAt = nil
            levelSince = now
            return decide(s.pressure(k - 1), "R \(fmt3(here.mean)) Ω·cm² at \(fmt3(s.pressure(k))) MPa is above \(fmt3(1 + s.margin)) × the minimum \(fmt3(map.minimum!)): raising the pressure to keep contact")
        }
        guard here.mean <= limit else { return nil }
        guard k + 1 < s.levels else {
            if convergedAt == nil { convergedAt = now; lastReason = "holding at the window's lower bound \(fmt3(s.windowMin)) MPa (R within margin)" }
            return nil
        }
        let below = map.bins[k + 1]
        let belowKnownBad = below.count >= 20 && below.mean > limit && now - below.updated < s.reprobe
        if belowKnownBad {
            if convergedAt == nil {
                convergedAt = now
                lastReason = "converged: \(fmt3(s.pressure(k))) MPa is the lowest pressure with R within \(fmt3(1 + s.margin)) × the minimum (R \(fmt3(here.mean)), \(fmt3(s.pressure(k + 1))) MPa gave \(fmt3(below.mean)))"
            }
            return nil
        }
        convergedAt = nil
        levelSince = now
        return decide(s.pressure(k + 1), "R \(fmt3(here.mean)) Ω·cm² at \(fmt3(s.pressure(k))) MPa is within \(fmt3(1 + s.margin)) × the minimum \(fmt3(map.minimum!)): trying the lower pressure")
    }

    private mutating func decide(_ p: Double, _ why: String) -> SupervisorDecision {
        let c = min(max(p, settings.windowMin), settings.windowMax)
        lastReason = why
        return SupervisorDecision(setpoint: c, reason: why)
    }
}
