/// Settings of the soft-short detector (`[channels.X.short_detection]`).
///
/// A soft short (lithium grown through the electrolyte, a cracked separator) puts a
/// shunt across the cell: the terminal voltage falls and, as the filament makes and
/// breaks contact, turns noisy. The detector watches the cell voltage at steady current
/// for either sign. It needs a voltage and a current signal (register or push); without
/// either, or with either stale, it judges nothing.
public struct ShortDetectionSettings: Sendable, Equatable, Codable {
    public var enabled: Bool = true
    /// Window over which a collapse and the noise are judged, s.
    public var window: Double = 30
    /// A fall of more than this within the window, at steady current, is a collapse, V.
    public var collapseVolts: Double = 0.05
    /// A voltage below this at steady current is a collapse too (nil: no floor), V.
    public var floorVolts: Double?
    /// Consecutive distinct measurements that must show the collapse (one low glitch is
    /// not a short).
    public var confirmMeasurements: Int = 2
    /// Rising noise: a step between successive measurements larger than this many times
    /// the baseline noise (× √2, the noise of a difference) is a jump; the voltage is
    /// noisy when at least `noiseFraction` of the window's steps are jumps (so one step
    /// or one glitch is not noise).
    public var noiseFactor: Double = 5
    public var noiseFraction: Double = 0.25
    /// The noise baseline is never taken lower than this (a quantised or very clean
    /// signal does not make its first millivolt of noise a short), V.
    public var noiseFloorVolts: Double = 0.002
    /// Distinct measurements in the window needed to judge the noise.
    public var noiseMeasurements: Int = 10
    /// After the current changes (a cycler switching between charge and discharge, a
    /// rest), the voltage is not judged for this long: it steps by ΔI·R and relaxes, s.
    public var holdoff: Double = 10
    /// The current is steady while it stays within this of its value when it settled:
    /// the larger of an absolute mA and a fraction of the current.
    public var currentToleranceMA: Double = 0.05
    public var currentToleranceFraction: Double = 0.02
    /// The stack pressure is steady while it stays within this of its value when the
    /// window began: the larger of an absolute MPa and a fraction. Pressure moves the
    /// interfacial resistance and so the voltage (by I·ΔR): a change starts the window
    /// again, as a change of current does.
    public var pressureToleranceMPa: Double = 0.1
    public var pressureToleranceFraction: Double = 0.05
    /// A voltage or current sample older than this is not used, and a gap this long in
    /// the voltage starts the window again, s.
    public var staleAfter: Double = 10
    /// Judge a collapse (fall, floor) while discharging too. Off by default: a full cell's
    /// voltage falls by itself on discharge, steeply near its end. The noise is judged
    /// in either direction.
    public var whileDischarging = false
    /// Where `cell_short_suspected` takes the pressure, MPa (nil: the channel's
    /// `safe_mpa`). Never above the pressure at detection.
    public var safePressure: Double?

    public init() {}

    public func validationErrors(limits: PressureLimits) -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(window > 0) { e.append(("window_s", "must be > 0")) }
        if !(collapseVolts > 0) { e.append(("collapse_v", "must be > 0")) }
        if let f = floorVolts, !f.isFinite { e.append(("floor_v", "must be a number")) }
        if confirmMeasurements < 1 { e.append(("confirm_measurements", "must be ≥ 1")) }
        if !(noiseFactor > 1) { e.append(("noise_factor", "must be > 1")) }
        if !(noiseFraction > 0 && noiseFraction <= 1) { e.append(("noise_fraction", "must be in (0, 1]")) }
        if !(noiseFloorVolts > 0) { e.append(("noise_floor_v", "must be > 0")) }
        if noiseMeasurements < 3 { e.append(("noise_measurements", "must be ≥ 3")) }
        if !(holdoff >= 0) { e.append(("holdoff_s", "must be ≥ 0")) }
        if !(currentToleranceMA >= 0) { e.append(("current_tolerance_ma", "must be ≥ 0")) }
        if !(currentToleranceFraction >= 0) { e.append(("current_tolerance_fraction", "must be ≥ 0")) }
        if !(pressureToleranceMPa >= 0) { e.append(("pressure_tolerance_mpa", "must be ≥ 0")) }
        if !(pressureToleranceFraction >= 0) { e.append(("pressure_tolerance_fraction", "must be ≥ 0")) }
        if !(staleAfter > 0) { e.append(("stale_after_s", "must be > 0")) }
        if let p = safePressure, !(p >= 0 && p < limits.trip) { e.append(("short_safe_mpa", "must be ≥ 0 and below trip_mpa (\(limits.trip))")) }
        return e
    }
}

/// What made the detector suspect a short.
public struct ShortEvidence: Sendable, Equatable {
    public enum Kind: String, Sendable { case collapse, floor, noise }
    public var kind: Kind
    /// Highest voltage in the window and the voltage now, V.
    public var voltageBefore: Double
    public var voltageAfter: Double
    /// Time from the window's highest voltage (collapse) or its first measurement (noise) to now, s.
    public var window: Double
    /// Distinct measurements in the window.
    public var measurements: Int
    /// The steady current, mA.
    public var current: Double
    /// Stack pressure at detection, MPa (nil without a valid reading).
    public var pressure: Double?
    /// The window's voltage noise and its baseline, V.
    public var noise: Double?
    public var noiseBaseline: Double?

    public var message: String {
        let p = pressure.map { "\(fmt3($0)) MPa" } ?? "unknown"
        let head: String
        switch kind {
        case .collapse: head = "cell voltage fell \(fmt3(voltageBefore)) → \(fmt3(voltageAfter)) V within \(fmt3(window)) s"
        case .floor: head = "cell voltage \(fmt3(voltageAfter)) V below the floor (highest in window \(fmt3(voltageBefore)) V, \(fmt3(window)) s)"
        case .noise:
            head = "cell voltage noise \(fmt3((noise ?? 0) * 1000)) mV over \(fmt3(window)) s, baseline \(fmt3((noiseBaseline ?? 0) * 1000)) mV (now \(fmt3(voltageAfter)) V)"
        }
        return "\(head), \(measurements) measurements, at steady current \(fmt3(current)) mA, stack pressure \(p)"
    }
}

/// Soft-short detection on a channel's cell voltage. Pure: it is fed the readings and
/// the loop time. It counts distinct measurements (a sample whose time has not moved is
/// the same measurement again, however many ticks see it), so a voltage that arrives
/// once a second works as well as one that arrives every tick, and a stale voltage
/// (older than `staleAfter`) is never judged.
///
/// - Collapse: at steady current, after the hold-off, the voltage falls more than
///   `collapseVolts` below the highest value in the window (or below `floorVolts`),
///   confirmed by `confirmMeasurements` measurements in a row.
/// - Noise: the voltage noise in the window (from successive differences, so a slow
///   drift of charge does not count) above `noiseFactor` times its baseline.
///
/// A change of current (beyond the tolerance) starts the window again and holds
/// judgement off for `holdoff`: the voltage step a cycler's switching causes (ΔI·R) and
/// the relaxation after it are never compared with the voltage before. So does a change
/// of stack pressure, which moves the interfacial resistance (I·ΔR).
public struct ShortDetector: Sendable, Equatable {
    public let settings: ShortDetectionSettings
    private var window = VoltageWindow()
    private var lastVoltageTime: Double?
    /// The current the window was taken at, mA, and when it settled there.
    private var steadyCurrent: Double?
    private var steadySince: Double = 0
    /// The stack pressure the window was taken at, MPa.
    private var steadyPressure: Double?
    private var confirming = 0
    /// The window's voltages have I·R_interfacial/area taken off.
    private var explained = false
    /// The interfacial resistance the last judged voltage was compensated with.
    private var lastResistance: Double?
    /// Baseline of the voltage noise, V.
    public var noiseBaseline: Double? { window.baseline }

    public init(settings: ShortDetectionSettings) { self.settings = settings }

    /// Forgets the window and the baseline (after an acknowledgement).
    public mutating func reset() {
        window.clear(); window.forgetBaseline(); steadyCurrent = nil; steadyPressure = nil; confirming = 0
    }

    private func tolerance(_ i: Double) -> Double {
        max(settings.currentToleranceMA, settings.currentToleranceFraction * abs(i))
    }

    private mutating func restart() { window.clear(); confirming = 0 }

    /// Judges this tick's readings; returns the evidence when a short is suspected.
    /// - Parameters:
    ///   - resistance: the interfacial-resistance signal, Ω·cm², when there is one. While
    ///     it is fresh (younger than `staleAfter`), the voltage is judged after taking
    ///     off I·R_interfacial/area: a change of interfacial resistance (the stack
    ///     pressure moved, also while the force reading lies) explains its own voltage
    ///     change. A shunt across the cell is not in it.
    ///   - area: the cell area, cm².
    public mutating func update(now: Double, voltage: Sample?, current: Sample?, pressure: Double?,
                                resistance: Sample? = nil, area: Double = 1) -> ShortEvidence? {
        let s = settings
        guard s.enabled, let v = voltage, v.value.isFinite, now - v.time <= s.staleAfter else { return nil }
        // A distinct measurement only.
        if let last = lastVoltageTime, v.time <= last { return nil }
        // A gap in the voltage: the window starts again.
        if let last = lastVoltageTime, v.time - last > s.staleAfter { restart() }
        lastVoltageTime = v.time
        guard let i = current, i.value.isFinite, now - i.time <= s.staleAfter else {
            restart(); steadyCurrent = nil
            return nil
        }
        let pressureMoved = pressure.map { p in
            steadyPressure.map { abs(p - $0) > max(s.pressureToleranceMPa, s.pressureToleranceFraction * abs($0)) } ?? true
        } ?? false
        guard let ref = steadyCurrent, abs(i.value - ref) <= tolerance(ref), !pressureMoved else {
            // The current or the pressure changed: the voltage before is not comparable
            // (ΔI·R, I·ΔR(P), relaxation).
            steadyCurrent = i.value
            steadyPressure = pressure ?? steadyPressure
            steadySince = max(v.time, i.time)
            restart()
            return nil
        }
        guard v.time - steadySince >= s.holdoff else { return nil }
        // The voltage judged: less I·R_interfacial/area while that signal is fresh. A
        // change of whether it is starts the window again.
        let r = resistance.flatMap { $0.value.isFinite && now - $0.time <= s.staleAfter && area > 0 ? $0.value : nil }
        if (r != nil) != explained { explained = r != nil; restart() }
        // A step of the compensation itself (a new analyser result, or the resistance
        // moving with the current density) that alone would shift the judged voltage by
        // half the collapse threshold: the voltages before and after are not comparable.
        if let r, let last = lastResistance, abs(i.value / 1000 * (r - last) / area) > 0.5 * s.collapseVolts { restart() }
        lastResistance = r
        let judged = v.value - (r.map { i.value / 1000 * $0 / area } ?? 0)
        window.drop(before: v.time - s.window)
        let top = window.max
        window.append(time: v.time, value: judged, raw: v.value, settings: s)

        // Collapse.
        let discharging = ref < -tolerance(ref)
        if let top, s.whileDischarging || !discharging {
            // A fall is a collapse beyond `collapse_v` and beyond the signal's own noise
            // (noise_factor × its baseline, from the top and from now: × 2): the judged
            // voltage carries I × the resistance signal's noise, which at a fast-charge
            // current is tens of millivolts (issue 22's soak: 8.75 mA on 2 cm² with a 1 %
            // resistance noise flagged "collapses" of 16 mV).
            let fell = top.value - judged > Swift.max(s.collapseVolts, 2 * s.noiseFactor * (window.baseline ?? 0))
            let low = s.floorVolts.map { v.value < $0 } ?? false
            confirming = fell || low ? confirming + 1 : 0
            if confirming >= s.confirmMeasurements {
                let e = ShortEvidence(kind: fell ? .collapse : .floor, voltageBefore: top.raw, voltageAfter: v.value,
                                      window: v.time - top.time, measurements: window.count, current: i.value, pressure: pressure)
                restart()
                return e
            }
        } else {
            confirming = 0
        }

        // Rising noise: enough jumps in the window, judged against the baseline.
        let jumps = window.jumps, steps = window.count - 1
        guard steps >= s.noiseMeasurements - 1, let first = window.first else { return nil }
        if window.baseline != nil, jumps >= 3, Double(jumps) >= s.noiseFraction * Double(steps) {
            let e = ShortEvidence(kind: .noise, voltageBefore: first.raw, voltageAfter: v.value,
                                  window: v.time - first.time, measurements: window.count, current: i.value,
                                  pressure: pressure, noise: window.noise, noiseBaseline: window.baseline)
            restart()
            return e
        }
        return nil
    }
}

/// The voltage measurements of a window, with their running maximum (a monotonic
/// queue), the sum of squared successive differences and the count of jumps, so that
/// each measurement costs O(1) however many the window holds. The noise baseline
/// (σ of one measurement) is learnt from the steps that are not jumps and outlives the
/// window.
struct VoltageWindow: Sendable, Equatable {
    /// Each point with whether the step to it from the one before was a jump.
    private var points: [(time: Double, value: Double, raw: Double, jump: Bool)] = []
    private var head = 0
    /// Indices into `points` of decreasing values: the window's maximum first.
    private var maxQueue: [Int] = []
    private var maxHead = 0
    private var sumSquares = 0.0
    private(set) var jumps = 0
    /// Noise of one measurement, V (nil until `noiseMeasurements` steps were seen).
    private(set) var baseline: Double?
    private var learning: (sum: Double, count: Int) = (0, 0)

    static func == (a: VoltageWindow, b: VoltageWindow) -> Bool {
        a.count == b.count && a.first?.time == b.first?.time && a.sumSquares == b.sumSquares && a.baseline == b.baseline
    }

    var count: Int { points.count - head }
    var first: (time: Double, value: Double, raw: Double)? { head < points.count ? (points[head].time, points[head].value, points[head].raw) : nil }
    var max: (time: Double, value: Double, raw: Double)? {
        guard maxHead < maxQueue.count else { return nil }
        let p = points[maxQueue[maxHead]]
        return (p.time, p.value, p.raw)
    }

    /// Noise from successive differences: √(Σ Δ² / 2(n − 1)), V.
    var noise: Double { count > 1 ? (Swift.max(0, sumSquares) / Double(2 * (count - 1))).squareRoot() : 0 }

    mutating func clear() {
        points.removeAll(keepingCapacity: true); head = 0
        maxQueue.removeAll(keepingCapacity: true); maxHead = 0
        sumSquares = 0; jumps = 0
    }

    mutating func forgetBaseline() { baseline = nil; learning = (0, 0) }

    mutating func append(time: Double, value: Double, raw: Double, settings s: ShortDetectionSettings) {
        var jump = false
        if head < points.count, let last = points.last {
            let d = value - last.value
            sumSquares += d * d
            // σ of one measurement from a step: E|Δ| = 2σ/√π.
            let sigma = abs(d) * 0.886_226_925
            if let b = baseline {
                jump = abs(d) > s.noiseFactor * Swift.max(b, s.noiseFloorVolts) * 2.0.squareRoot()
                if !jump { baseline = b + (sigma - b) / Double(10 * Swift.max(1, s.noiseMeasurements)) }
            } else {
                learning.sum += sigma; learning.count += 1
                if learning.count >= s.noiseMeasurements { baseline = learning.sum / Double(learning.count) }
            }
            if jump { jumps += 1 }
        }
        points.append((time, value, raw, jump))
        let index = points.count - 1
        while maxQueue.count > maxHead, points[maxQueue[maxQueue.count - 1]].value <= value { maxQueue.removeLast() }
        maxQueue.append(index)
    }

    /// Drops the measurements older than `time`.
    mutating func drop(before time: Double) {
        while head < points.count, points[head].time < time {
            if head + 1 < points.count {
                let d = points[head + 1].value - points[head].value
                sumSquares -= d * d
                if points[head + 1].jump { jumps -= 1 }
            }
            head += 1
        }
        while maxHead < maxQueue.count, maxQueue[maxHead] < head { maxHead += 1 }
        if head == points.count { clear() }
        if head > 4096 && head * 2 > points.count {
            points.removeFirst(head)
            maxQueue = maxQueue[maxHead...].map { $0 - head }
            maxHead = 0; head = 0
        }
    }
}
