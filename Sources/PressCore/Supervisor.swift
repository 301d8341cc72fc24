#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// Resistance acquired in the first `settle` s after a change is not used, s.
    public var settle: Double
    /// Distinct resistance measurements (acquired after `settle`) a level needs before
    /// the supervisor decides on it; it waits at the level until it has them.
    public var minMeasurements: Int
    /// How long a level's learned resistance remembers, s: each measurement's weight
    /// decays with its age on this time constant (the interface ages).
    public var memory: Double

    public init(windowMin: Double, windowMax: Double, margin: Double = 0.2, step: Double = 0.25,
                interval: Double = 120, settle: Double = 20, minMeasurements: Int = 3, memory: Double = 1800) {
        self.windowMin = windowMin; self.windowMax = windowMax; self.margin = margin; self.step = step
        self.interval = interval; self.settle = settle; self.minMeasurements = minMeasurements; self.memory = memory
    }

    enum CodingKeys: String, CodingKey { case windowMin, windowMax, margin, step, interval, settle, minMeasurements, memory }

    /// Also reads settings saved before measurements carried their time.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(windowMin: try c.decode(Double.self, forKey: .windowMin), windowMax: try c.decode(Double.self, forKey: .windowMax),
                  margin: try c.decode(Double.self, forKey: .margin), step: try c.decode(Double.self, forKey: .step),
                  interval: try c.decode(Double.self, forKey: .interval), settle: try c.decode(Double.self, forKey: .settle),
                  minMeasurements: try c.decodeIfPresent(Int.self, forKey: .minMeasurements) ?? 3,
                  memory: try c.decodeIfPresent(Double.self, forKey: .memory) ?? 1800)
    }

    public func validationErrors(limits: PressureLimits) -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(windowMin >= limits.minSetpoint) { e.append(("window_min_mpa", "must be ≥ the channel's min_mpa \(limits.minSetpoint)")) }
        if !(windowMax <= limits.maxSetpoint) { e.append(("window_max_mpa", "must be ≤ the channel's max_mpa \(limits.maxSetpoint)")) }
        if !(windowMax > windowMin) { e.append(("window_max_mpa", "must be above window_min_mpa")) }
        if !(margin > 0 && margin < 10) { e.append(("margin", "must be in (0, 10)")) }
        if !(step > 0 && step <= windowMax - windowMin) { e.append(("step_mpa", "must be > 0 and fit in the window")) }
        if !(interval > settle && settle >= 0) { e.append(("interval_s", "must be above settle_s (≥ 0)")) }
        if !(minMeasurements >= 1 && minMeasurements <= 1000) { e.append(("min_measurements", "must be 1…1000")) }
        if !(memory >= interval && memory <= 30 * 86_400) { e.append(("memory_s", "must be ≥ interval_s and ≤ 30 days")) }
        return e
    }

    /// The level of the grid nearest `p`, inside the window.
    public func level(_ p: Double) -> Int { max(0, min(levels - 1, Int(((windowMax - p) / step).rounded()))) }
    public var levels: Int { Int(((windowMax - windowMin) / step + 1e-9).rounded(.down)) + 1 }
    public func pressure(_ k: Int) -> Double { windowMax - Double(k) * step }
}

/// Interfacial resistance learned per pressure level: the regression the supervisor
/// decides on, with its uncertainty. Counts measurements (each with its acquisition
/// time), not control ticks.
public struct ResistanceMap: Sendable, Equatable, Codable {
    public struct Bin: Sendable, Equatable, Codable {
        public var pressure: Double
        /// Time-weighted mean and variance of R, Ω·cm², and the number of measurements.
        public var mean: Double = 0
        public var variance: Double = 0
        public var count: Int = 0
        /// The measurements' total weight after ageing (≈ how many are still
        /// remembered), and the acquisition time of the latest, loop seconds.
        public var weight: Double = 0
        public var updated: Double = 0
        public var standardError: Double { count > 1 && weight > 1 ? (variance / weight).squareRoot() : .infinity }
    }
    public var bins: [Bin]

    public init(settings: SupervisorSettings) {
        bins = (0..<settings.levels).map { Bin(pressure: settings.pressure($0)) }
    }

    /// Adds measurement `r` acquired at `time`; older ones fade with time constant
    /// `memory` s (an exponentially weighted mean in time, not in samples).
    mutating func add(_ r: Double, level k: Int, time: Double, memory: Double) {
        var b = bins[k]
        let decay = b.count == 0 ? 0 : exp(-max(0, time - b.updated) / memory)
        b.weight = b.weight * decay + 1
        b.count += 1
        let w = 1 / b.weight
        let d = r - b.mean
        b.mean += w * d
        b.variance = (1 - w) * (b.variance + w * d * d)
        b.updated = time
        bins[k] = b
    }

    /// Bins with at least `minimum` measurements.
    public func measured(minimum: Int) -> [Bin] { bins.filter { $0.count >= max(1, minimum) } }
    /// The lowest mean resistance among levels with `minimum` measurements, Ω·cm².
    /// Called every tick by the supervisor: no allocation.
    public func minimum(measurements minimum: Int) -> Double? { bins.lazy.filter { $0.count >= max(1, minimum) }.map(\.mean).min() }

    /// The knee fitted to the measured levels, when there are enough of them.
    public func fit(minimum: Int) -> KneeFit? {
        KneeFit.fit(measured(minimum: minimum).map { SweepPoint(setpoint: $0.pressure, pressure: $0.pressure, resistance: $0.mean,
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
/// At each level it waits `settle`, then collects resistance measurements acquired
/// after that (each used once, by its acquisition time) until `interval` has passed
/// and it has `minMeasurements` of them, and decides: R above the margin → one step
/// up, and that level becomes the floor; within it → one step down, unless the level
/// below is the floor. A level shown to be bad is never entered again by a downward
/// step: stripping below the critical pressure opens voids that may not heal, so the
/// supervisor does not go back to look. Never outside the window; at most one step
/// per interval; every change comes with its reason. Locked, it learns but never moves.
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
    /// The highest-pressure level shown to be bad (grid index; larger is lower
    /// pressure): the supervisor never steps down to it or below it again.
    public private(set) var floorLevel: Int?
    /// Measurements taken at the present level since it was entered.
    public private(set) var measurementsAtLevel = 0
    /// Acquisition time of the newest measurement seen (each is used once).
    private var newestSeen: Double?

    public init(settings: SupervisorSettings) {
        self.settings = settings
        self.map = ResistanceMap(settings: settings)
    }

    public mutating func lock(_ reason: String) { locked = true; lockReason = reason }
    public mutating func unlock(now: Double) { locked = false; lockReason = nil; enter(now) }

    /// The resistance limit in force, Ω·cm².
    public var limit: Double? { map.minimum(measurements: settings.minMeasurements).map { $0 * (1 + settings.margin) } }
    /// The pressure below which it will not go again, MPa (the lowest level above the
    /// floor), if a level has been shown bad.
    public var floorPressure: Double? { floorLevel.map { settings.pressure(max(0, $0 - 1)) } }

    private mutating func enter(_ now: Double) { levelSince = now; measurementsAtLevel = 0 }

    /// One tick while regulating at `setpoint` (the supervisor's or anyone's).
    public mutating func update(now: Double, setpoint: Double, pressure: Double?, inBand: Bool, resistance: Sample?) -> SupervisorDecision? {
        let s = settings
        // Outside the window (an operator moved it there, or the window changed): back in.
        if !locked && (setpoint < s.windowMin - 1e-9 || setpoint > s.windowMax + 1e-9) {
            let to = s.pressure(min(s.level(setpoint), floorLevel.map { max(0, $0 - 1) } ?? .max))
            enter(now)
            return decide(to, "setpoint \(fmt3(setpoint)) MPa is outside the supervisor's window \(fmt3(s.windowMin))…\(fmt3(s.windowMax)) MPa")
        }
        let k = s.level(setpoint)
        // Between two levels (an operator's setpoint): onto the nearest one, or it could
        // never measure where it is.
        if !locked && abs(setpoint - s.pressure(k)) > 1e-6 {
            let to = min(k, floorLevel.map { max(0, $0 - 1) } ?? .max)
            enter(now)
            return decide(s.pressure(to), "setpoint \(fmt3(setpoint)) MPa is between the supervisor's levels: moving to the nearest, \(fmt3(s.pressure(to))) MPa")
        }
        // At or below a level shown bad (an operator put it there, then unlocked): up.
        if !locked, let f = floorLevel, k >= f, f > 0 {
            enter(now)
            convergedAt = nil
            return decide(s.pressure(f - 1), "\(fmt3(s.pressure(k))) MPa is at or below \(fmt3(s.pressure(f))) MPa, a level already shown to raise R beyond the margin: "
                                 + "back to \(fmt3(s.pressure(f - 1))) MPa")
        }
        if levelSince == nil { enter(now) }
        let t = now - levelSince!
        if let r = resistance, r.value.isFinite, r.time > (newestSeen ?? -.infinity), r.time <= now + 1e-9 {
            newestSeen = r.time
            if inBand, r.time >= levelSince! + s.settle {
                map.add(r.value, level: k, time: r.time, memory: s.memory)
                measurementsAtLevel += 1
            }
        }
        if now - (kneeFittedAt ?? -.infinity) >= s.interval { knee = map.fit(minimum: s.minMeasurements); kneeFittedAt = now }
        guard !locked, t >= s.interval, measurementsAtLevel >= s.minMeasurements, let limit else { return nil }
        let here = map.bins[k]
        let minimum = map.minimum(measurements: s.minMeasurements)!
        if here.mean > limit && k > 0 {
            convergedAt = nil
            floorLevel = min(floorLevel ?? k, k)
            enter(now)
            return decide(s.pressure(k - 1), "R \(fmt3(here.mean)) Ω·cm² at \(fmt3(s.pressure(k))) MPa is above \(fmt3(1 + s.margin)) × the minimum \(fmt3(minimum)): "
                                             + "raising the pressure to keep contact; it will not go down to \(fmt3(s.pressure(k))) MPa again")
        }
        guard here.mean <= limit else { return nil }
        guard k + 1 < s.levels else {
            if convergedAt == nil { convergedAt = now; lastReason = "holding at the window's lower bound \(fmt3(s.windowMin)) MPa (R within margin)" }
            return nil
        }
        if let f = floorLevel, k + 1 >= f {
            if convergedAt == nil {
                convergedAt = now
                let below = map.bins[k + 1]
                lastReason = "converged: \(fmt3(s.pressure(k))) MPa is the lowest pressure with R within \(fmt3(1 + s.margin)) × the minimum (R \(fmt3(here.mean)), "
                    + "\(fmt3(s.pressure(k + 1))) MPa gave \(fmt3(below.mean)) and is not tried again)"
            }
            return nil
        }
        convergedAt = nil
        enter(now)
        return decide(s.pressure(k + 1), "R \(fmt3(here.mean)) Ω·cm² at \(fmt3(s.pressure(k))) MPa is within \(fmt3(1 + s.margin)) × the minimum \(fmt3(minimum)): trying the lower pressure")
    }

    private mutating func decide(_ p: Double, _ why: String) -> SupervisorDecision {
        let c = min(max(p, settings.windowMin), settings.windowMax)
        lastReason = why
        return SupervisorDecision(setpoint: c, reason: why)
    }
}
