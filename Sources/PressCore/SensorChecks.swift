#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FaultCode {
    /// The force reading is outside the sensor's plausible range, or not a number.
    public static let sensorRange = FaultCode("sensor_range")
    /// No fresh force sample within the staleness timeout.
    public static let sensorStale = FaultCode("sensor_stale")
    /// Fresh samples keep arriving but their value has not changed at all for longer than
    /// a live, loaded sensor's noise allows: the transmitter's register image is frozen,
    /// and the loop would regulate on a constant.
    public static let sensorFrozen = FaultCode("sensor_frozen")
    /// Stack pressure above the channel's trip level.
    public static let overPressure = FaultCode("over_pressure")
}

/// The force reading: fresh (its age within `stale_after`) and plausible (within the
/// sensor's range). Decides the tick's pressure.
struct SensorCheck: FaultCheck {
    static let kinds = [FaultKind(code: .sensorStale, recoverable: true, sensor: true),
                        FaultKind(code: .sensorRange, sensor: true)]
    init(_ p: ChannelParameters) {}

    func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        let s = c.parameters.sensor
        let action = s.faultAction == .ramp ? SafeAction.hold : s.faultAction
        if let f = c.readings.force {
            let age = c.now - f.time
            if age > s.staleAfter {
                c.stale = true
                present[.sensorStale] = FaultCondition(.sensorStale, action: action) {
                    "force sample is \(Int((age * 1000).rounded())) ms old (limit \(Int((s.staleAfter * 1000).rounded())) ms)"
                }
            }
            if !f.value.isFinite || f.value < s.minForce || f.value > s.maxForce {
                present[.sensorRange] = FaultCondition(.sensorRange, action: action) {
                    "force \(fmt3(f.value)) N outside plausible range \(fmt3(s.minForce))…\(fmt3(s.maxForce)) N"
                }
            } else if !c.stale {
                c.pressure = c.parameters.pressure(fromForce: f.value)
            }
        } else if c.now > s.staleAfter {
            c.stale = true
            present[.sensorStale] = FaultCondition(.sensorStale, action: action) { "no force sample received" }
        }
    }
}

/// `sensor_frozen` when fresh samples (their time moves) have carried exactly the same
/// value for `frozen_after_s` while the sensor is loaded (above 1 % of its range, where
/// a live transmitter's last digit always moves). The pressure is then not used.
struct FrozenTransmitterCheck: FaultCheck {
    static let kinds = [FaultKind(code: .sensorFrozen, recoverable: true, sensor: true)]
    /// The present run of identical samples: its value, when it began, the last sample
    /// time seen and how many fresh samples it has had.
    private var run: (value: Double, since: Double, lastTime: Double, count: Int)?

    init?(_ p: ChannelParameters) {}

    mutating func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        let sensor = c.parameters.sensor
        let limit = sensor.frozenAfter
        guard limit > 0, let f = c.readings.force, f.value.isFinite, c.now - f.time <= sensor.staleAfter,
              abs(f.value) > 0.01 * sensor.maxForce else { run = nil; return }
        guard var r = run, r.value == f.value else {
            run = (f.value, f.time, f.time, 1)
            return
        }
        if f.time > r.lastTime { r.lastTime = f.time; r.count += 1 }
        run = r
        guard r.lastTime - r.since >= limit, r.count >= 5 else { return }
        let action = sensor.faultAction == .ramp ? SafeAction.hold : sensor.faultAction
        let (seconds, count) = (Int(r.lastTime - r.since), r.count)
        present[.sensorFrozen] = FaultCondition(.sensorFrozen, action: action) {
            "force reading stuck at exactly \(fmt3(f.value)) N for \(seconds) s over \(count) fresh samples"
        }
        c.pressure = nil
    }
}

/// Over-pressure: judged on every valid sample, in every mode. A reading beyond the
/// sensor's upper range cannot rule out over-pressure (a saturated load cell means "at
/// least this much"), so it is judged too: fail safe.
struct OverPressureCheck: FaultCheck {
    static let kinds = [FaultKind(code: .overPressure, defaultAction: .release)]
    init(_ p: ChannelParameters) {}

    func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        let s = c.parameters.sensor, l = c.parameters.limits
        var judged = c.pressure
        if judged == nil, let f = c.readings.force?.value, f.isFinite, f > s.maxForce { judged = c.parameters.pressure(fromForce: f) }
        if let p = judged, p > l.trip {
            present[.overPressure] = FaultCondition(.overPressure, action: l.tripAction) {
                "stack pressure \(fmt3(p)) MPa above trip level \(fmt3(l.trip)) MPa"
            }
        }
    }
}

/// The fast frozen-transmitter check: it learns how often a live transmitter's reading
/// repeats exactly from one fresh sample to the next (`p`: a few percent for a load cell
/// whose last digits move with its noise), and flags `sensor_frozen` once a run of exact
/// repeats is so long that chance would give it less than once in `fastFrozenChance`
/// (pⁿ ≤ that): at 100 samples a second and p ≈ 0.07, eight repeats, 80 ms. It judges
/// only after it has seen the reading vary (a transmitter that repeats half the time, or
/// one it has not learnt yet, is left to ``FrozenTransmitterCheck``), while the sensor
/// is loaded, and never sooner than `fastFrozenMinimum` s. On an independent Modbus rig a
/// transmitter image frozen for 5 s went unseen by the slow check while the loop drove
/// the pneumatic cell to +15 %.
struct FastFrozenCheck: FaultCheck {
    static let kinds = [FaultKind(code: .sensorFrozen, recoverable: true, sensor: true)]
    /// Repeat probability, learnt (an average over about the last 500 fresh samples), and
    /// how many fresh samples it has seen.
    private(set) var repeatRate = 0.5
    private(set) var learnt = 0
    /// The last fresh sample, and the present run of exact repeats.
    private var last: Sample?
    private var run: (since: Double, count: Int)?

    init?(_ p: ChannelParameters) { guard p.sensor.fastFrozenChance > 0 else { return nil } }

    /// Repeats needed before chance is ruled out, at the learnt rate.
    func repeatsNeeded(chance: Double) -> Int { Int((log(chance) / log(max(repeatRate, 1e-6))).rounded(.up)) }

    mutating func judge(_ c: inout CheckInput, into present: inout [FaultCode: FaultCondition]) {
        let s = c.parameters.sensor
        guard let f = c.readings.force, f.value.isFinite, c.now - f.time <= s.staleAfter, abs(f.value) > 0.01 * s.maxForce else {
            run = nil; return
        }
        guard let l = last, f.time > l.time else {
            if last == nil { last = f }
            return
        }
        last = f
        let repeated = f.value == l.value
        if repeated { run = (run?.since ?? l.time, (run?.count ?? 0) + 1) } else { run = nil }
        // Learnt from samples outside long runs, so a freeze does not teach it that
        // freezing is normal.
        if (run?.count ?? 0) <= 2 {
            repeatRate += ((repeated ? 1 : 0) - repeatRate) / Double(min(learnt + 2, 500))
            learnt += 1
        }
        guard let r = run, learnt >= 200, repeatRate < 0.5 else { return }
        let needed = repeatsNeeded(chance: s.fastFrozenChance)
        guard r.count >= needed, f.time - r.since >= s.fastFrozenMinimum else { return }
        let action = s.faultAction == .ramp ? SafeAction.hold : s.faultAction
        let rate = repeatRate
        present[.sensorFrozen] = FaultCondition(.sensorFrozen, action: action) {
            "force reading repeated exactly \(r.count) times (\(fmt3(f.value)) N for \(fmt3(f.time - r.since)) s); this transmitter repeats a reading \(fmt3(rate * 100)) % of the time, so \(needed) repeats in a row happen by chance less than once in \(fmt0(1 / s.fastFrozenChance)) runs"
        }
        c.pressure = nil
    }

    mutating func acknowledged(_ cleared: [FaultCode]) { if cleared.contains(.sensorFrozen) { run = nil } }
}
