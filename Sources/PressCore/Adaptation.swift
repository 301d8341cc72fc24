#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a channel computes its output while regulating.
public enum ControlStrategy: String, Sendable, Codable, CaseIterable {
    /// The configured (or autotuned) PID with static feedforward. Nothing changes by itself.
    case pid
    /// PID whose gains follow an online estimate of the plant's gain, scheduled over the
    /// pressure range.
    case adaptive
    /// Adaptive PID plus a learned model of the measured disturbances (cell current,
    /// temperature, impedance) whose predicted effect is cancelled by feedforward before
    /// it shows in the pressure. Falls back to the adaptive PID when the model's
    /// predictions stop matching the plant.
    case learned
    /// Model-predictive control over a short horizon on the identified plant model, with
    /// the program's coming setpoints; the adaptive PID when the model mispredicts.
    case mpc
}

/// Tuning of the online identification; the defaults suit every rig in the benchmark.
public struct AdaptationSettings: Sendable, Equatable, Codable {
    /// Identification window, s: pressure, output and disturbances are averaged over
    /// it; a move is judged between settled windows.
    public var interval: Double = 1
    /// RLS forgetting factor per window of the learned disturbance model (memory ≈
    /// interval/(1−λ) s).
    public var forgetting: Double = 0.995
    /// Gain-schedule bins over the channel's setpoint range.
    public var scheduleBins: Int = 6
    /// Bounds of the gain scale relative to the tuned gains. The scale goes below 1 when
    /// a validated estimate says the plant is stiffer than tuned (or the loop oscillated).
    /// By default it never goes above 1: on the benchmark's softened plants higher gains
    /// made the hold error worse (it is bound by noise and quantisation, the approach by
    /// the ramp), so a softer plant keeps the tuned gains. Raise `max_scale` to let a
    /// validated softer plant get proportionally higher gains.
    public var minScale: Double = 0.1
    public var maxScale: Double = 1
    /// Fastest relative gain change, per second (lowering after an oscillation is at once).
    public var gainRate: Double = 0.05
    /// Smallest settled setpoint move, MPa, that identifies the plant's gain (a move must
    /// also be at least 3× the actuator's play).
    public var excitation: Double = 0.1
    /// Moves a new gain estimate must predict (each within 25 %, and better than the
    /// gain in force) before it is used.
    public var validationMoves: Int = 3
    /// Confidence below which the learned model hands over to the adaptive PID, and
    /// above which it takes over again.
    public var confidenceLow: Double = 0.3
    public var confidenceHigh: Double = 0.7
    public init() {}

    public func validationErrors() -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(interval >= 0.1 && interval <= 10) { e.append(("interval_s", "must be 0.1…10")) }
        if !(forgetting > 0.9 && forgetting <= 1) { e.append(("forgetting", "must be in (0.9, 1]")) }
        if !(scheduleBins >= 1 && scheduleBins <= 50) { e.append(("schedule_bins", "must be 1…50")) }
        if !(minScale > 0 && minScale <= 1) { e.append(("min_scale", "must be in (0, 1]")) }
        if !(maxScale >= 1 && maxScale <= 16) { e.append(("max_scale", "must be 1…16")) }
        if !(gainRate > 0) { e.append(("gain_rate", "must be > 0")) }
        if !(excitation > 0) { e.append(("excitation_mpa", "must be > 0")) }
        if !(validationMoves >= 1 && validationMoves <= GainEstimate.memory) { e.append(("validation_moves", "must be 1…\(GainEstimate.memory)")) }
        if !(confidenceLow >= 0 && confidenceLow < confidenceHigh && confidenceHigh <= 1) {
            e.append(("confidence_low", "must satisfy 0 ≤ confidence_low < confidence_high ≤ 1"))
        }
        return e
    }
}

/// Everything the adaptive and learned controllers have learned about a channel. It is
/// persisted with the channel state so a restart does not start from scratch.
///
/// - The **plant gain**, for the gain schedule of the adaptive PID: identified only from
///   settled setpoint moves (``SettledMoveTracker``), used only once validated on moves
///   it had not seen (``GainEstimate``), bounded, rate-limited, and overruled at once by
///   the ``OscillationDetector``. See docs/tuning.md for what each guard is for.
///
/// - The **disturbance model** of the learned controller, identified by recursive least
///   squares on one-second window means while the pressure was held, from what
///   feedback had to do ("feedback-error learning"):
///
///       ū·baseGain = u₀ + a·Q + b·(T − T₀) + s·setpoint
///
///   with Q the charge moved through the cell (mAh, integrated from the measured current:
///   Li plating and stripping change the thickness in proportion to it) and T the cell
///   temperature, so a·ΔQ + b·ΔT is the output change the measured disturbances require.
///   Applied as feedforward the moment the charge or temperature moves, it acts before
///   the disturbance shows in the pressure instead of after.
public struct ControllerMemory: Sendable, Equatable, Codable {
    /// Static gain (MPa per output unit) the base gains were tuned for.
    public var baseGain: Double
    /// The candidate estimate of the plant's gain (relative to `baseGain`) and its record.
    public var estimate = GainEstimate()
    /// Validated gain per pressure bin, MPa per output unit (nil: not identified there).
    public var schedule: [Double?]
    /// Present gain scale applied to the tuned kp, ki and feedforward gain.
    public var scale: Double = 1
    /// Relative prediction errors of the gain in force on the latest moves.
    public var inForceErrors: [Double] = []
    /// Times the gain in force mispredicted the plant and the tuned gains came back.
    public var fallbacks: Int = 0
    /// Times the loop was seen oscillating and the gains were halved.
    public var oscillations: Int = 0
    /// No gain increase before this (loop) time: the loop oscillated recently.
    public var raiseBlockedUntil: Double?
    /// Disturbance model, θ = [u₀, a, b, s], and the same without a and b (θ = [u₀, s]).
    public var disturbance: RecursiveLeastSquares
    public var disturbanceBaseline: RecursiveLeastSquares
    /// Learned-model confidence 0…1, and whether its feedforward is active.
    public var confidence: Double = 0
    public var learnedActive: Bool = false
    /// Times the learned model handed over to the adaptive PID.
    public var handovers: Int = 0
    /// Disturbance feedforward in force, output units.
    public var disturbanceOutput: Double = 0
    /// Charge moved since learning started, mAh; temperature when learning started.
    public var charge: Double = 0
    public var referenceTemperature: Double?
    /// Charge and temperature when the feedforward was switched on.
    public var activationCharge: Double = 0
    public var activationTemperature: Double = 0
    /// Long- and short-term mean squared error of the disturbance model and the long-term
    /// error of its baseline, in (MPa-equivalent)².
    public var errorLong: Double = 0
    public var errorShort: Double = 0
    public var baselineErrorLong: Double = 0
    /// Pressure error per window against the disturbance changes (θ = [ΔQ, ΔT, 1]) and
    /// the mean squares of the error and of what the regression leaves.
    public var pressureError: RecursiveLeastSquares
    public var pressureErrorTotal: Double = 0
    public var pressureErrorResidual: Double = 0
    /// Ranges the current and the temperature have covered recently (they decay over
    /// about 15 min): a coefficient is only learned when its signal has varied.
    public var currentRange: ClosedRange<Double>?
    public var temperatureRange: ClosedRange<Double>?
    /// Mean |p − setpoint| over recent windows, MPa; its value when the feedforward was
    /// switched on, and since. The feedforward hands over if it made things worse.
    public var regulationError: Double = 0
    public var errorBeforeActivation: Double = 0
    public var activeError: Double = 0
    /// The feedforward stays off until this time after it made the error worse.
    public var blockedUntil: Double?

    public init(baseGain: Double, bins: Int, forgetting: Double) {
        self.baseGain = baseGain
        disturbance = RecursiveLeastSquares(count: 4, initial: [0, 0, 0, 1], forgetting: forgetting,
                                            initialVariances: [1e3, 1e2, 1e2, 1], maxCovarianceTrace: 1e4)
        disturbanceBaseline = RecursiveLeastSquares(count: 2, initial: [0, 1], forgetting: forgetting,
                                                    initialVariances: [1e3, 1], maxCovarianceTrace: 1e4)
        pressureError = RecursiveLeastSquares(count: 3, initial: nil, forgetting: forgetting,
                                              initialVariances: [1e4, 1e2, 1], maxCovarianceTrace: 1e5)
        schedule = Array(repeating: nil, count: bins)
    }

    /// The candidate gain estimate, MPa per output unit, once it has seen two moves.
    public var estimatedGain: Double? { estimate.observations >= 2 ? baseGain * estimate.gain : nil }

    /// Share of the pressure error's variance the measured disturbances explain, 0…1
    /// (how much a perfect feedforward could remove).
    public var disturbanceVisible: Double {
        guard pressureErrorTotal > 0 else { return 0 }
        return max(0, 1 - pressureErrorResidual / pressureErrorTotal)
    }

    /// Share of the baseline's error the disturbance terms explain, 0…1.
    public var disturbanceBenefit: Double {
        guard baselineErrorLong > 0 else { return 0 }
        return max(0, 1 - errorLong / baselineErrorLong)
    }
}

/// What one tick changed in the adaptation, when something did.
/// The new gain scale is in ``ControllerMemory/scale``.
public struct AdaptationUpdate: Sendable, Equatable {
    /// The learned model's feedforward was switched off; fold this (its last output) into
    /// the PID integrator so the output does not move.
    public var handedOver: Double?
    public var events: [String]
}

/// The online identification and gain schedule behind the `adaptive` and `learned`
/// strategies. Fed once per tick from the channel controller; identifies once per window.
///
/// The guards that keep it from ever destabilising a held cell (docs/tuning.md):
/// 1. **Excitation**: the gain is identified only from settled setpoint moves of at least
///    `excitation_mpa` and 3× the actuator's play (``SettledMoveTracker``); a quiet hold,
///    however long, teaches it nothing and changes nothing.
/// 2. **Bounded estimator**: a scalar RLS per move whose variance is held between fixed
///    bounds (no freezing, no wind-up) and whose estimate is projected into 1/16…16 ×
///    tuned after every update (``GainEstimate``).
/// 3. **Validation**: a new estimate is used only after it predicted `validation_moves`
///    moves it had not seen, each within 25 % and on average at most half the error of
///    the gain in force.
/// 4. **Bounds and rate**: the gain scale stays in [`min_scale`, `max_scale`] and moves
///    at most `gain_rate` per second.
/// 5. **Prediction check**: when the gain in force mispredicts two moves in a row by more
///    than 50 %, the tuned gains come back.
/// 6. **Oscillation**: a loop seen oscillating (``OscillationDetector``, about two periods)
///    gets its gains halved at once, and no gain increase for 10 minutes.
/// 7. **Rises watched**: gains rise four times slower than they fall, and a rise that
///    makes the regulation error's RMS grow by half (judged at a settled setpoint, 5 s
///    after it last changed) is stopped and stepped back by 30 %.
public struct PlantAdapter: Sendable {
    public let settings: AdaptationSettings
    public private(set) var memory: ControllerMemory
    public let strategy: ControlStrategy

    private struct Window { var p, u, q, t, target, time: Double }
    private var start: Double?
    private var sumP = 0.0, sumU = 0.0, sumT = 0.0, n = 0.0
    private var windowTarget: Double?
    /// The working setpoint was at the target for the whole window.
    private var windowAtTarget = true
    private var last: Window?
    private var moves = SettledMoveTracker()
    private var detector = OscillationDetector()
    private var lastTarget: Double?
    /// Guard 7: the regulation error's mean square over ~2 s and over ~30 s (the latter
    /// frozen while the gains rise), and when the gains last rose.
    private var shortSquare = 0.0, baselineSquare: Double?
    private var lastRaise: Double?
    private var targetChanged: Double?
    private var confidentSince: Double?
    private var activeWindows = 0
    private var activeSquares = 0.0

    /// Error tolerance of a validated estimate, and the misprediction that sends the gain
    /// in force back to the tuned one.
    static let validTolerance = 0.25
    static let mispredicted = 0.5
    /// A gain in force that predicts the moves within this is kept (no churn).
    static let worthChanging = 0.1
    /// The oscillation detector's hysteresis as a fraction of the band's half-width: an
    /// oscillation is seen while its swings are still within 15 % of the band.
    static let oscillationFraction = 0.15
    /// After an oscillation, no gain increase for this long, s.
    static let raiseHoldoff = 600.0

    public init(strategy: ControlStrategy, settings: AdaptationSettings, memory: ControllerMemory) {
        self.strategy = strategy; self.settings = settings; self.memory = memory
    }

    /// Forgets the window in progress (after a mode change or a gap in measurements).
    public mutating func interrupt() {
        start = nil; n = 0; sumP = 0; sumU = 0; sumT = 0; windowTarget = nil; windowAtTarget = true
        last = nil
        moves.interrupt()
        detector.reset()
    }

    /// Widens `range` to include `x` and shrinks it toward `x` by `shrink` at each end.
    static func track(_ range: ClosedRange<Double>?, _ x: Double, shrink: Double) -> ClosedRange<Double> {
        guard let r = range else { return x...x }
        let lo = min(x, r.lowerBound + shrink), hi = max(x, r.upperBound - shrink)
        return min(lo, hi)...max(lo, hi)
    }

    /// Bin of the gain schedule for pressure `p` within `limits`.
    func bin(_ p: Double, _ limits: PressureLimits) -> Int {
        let x = (p - limits.minSetpoint) / max(1e-9, limits.maxSetpoint - limits.minSetpoint)
        return min(memory.schedule.count - 1, max(0, Int(x * Double(memory.schedule.count))))
    }

    /// The scheduled static gain at `target`, or the base gain before anything is known.
    public func scheduledGain(at target: Double, limits: PressureLimits) -> Double {
        let j = bin(target, limits)
        if let k = memory.schedule[j] { return k }
        for d in 1..<max(2, memory.schedule.count) {
            for i in [j - d, j + d] where i >= 0 && i < memory.schedule.count { if let k = memory.schedule[i] { return k } }
        }
        return memory.baseGain
    }

    private var learnCharge: Bool { (memory.currentRange.map { $0.upperBound - $0.lowerBound } ?? 0) >= 2 }
    private var learnTemperature: Bool { (memory.temperatureRange.map { $0.upperBound - $0.lowerBound } ?? 0) >= 1 }

    /// The disturbance feedforward the learned model asks for now, output units.
    private func feedforward(temperature: Double) -> Double {
        let th = memory.disturbance.theta
        let a = learnCharge ? th[1] : 0, b = learnTemperature ? th[2] : 0
        let v = (a * (memory.charge - memory.activationCharge) + b * (temperature - memory.activationTemperature)) / memory.baseGain
        return v.isFinite ? v : memory.disturbanceOutput
    }

    /// One tick while regulating. Updates the disturbance feedforward (read it from
    /// ``memory``), watches for oscillation and, at the end of a window, identifies;
    /// returns what changed, if anything.
    /// - Parameters:
    ///   - target: the setpoint; `working`: the ramped setpoint the PID chases now.
    ///   - band: the channel's band (0.05 = ±5 %); `play`: the actuator's play, MPa.
    ///   - saturated: the output is held by a limit (freezes the feedforward).
    public mutating func observe(now: Double, dt: Double, pressure: Double, output: Double, target: Double, working: Double? = nil,
                                 readings: ChannelReadings, limits: PressureLimits, band: Double = 0.05, play: Double = 0,
                                 saturated: Bool) -> AdaptationUpdate? {
        let validDt = dt > 0 && dt < 1
        let current = readings.current?.value ?? 0
        if validDt { memory.charge += current * dt / 3600 }
        let temperature = readings.temperature?.value
        if memory.referenceTemperature == nil { memory.referenceTemperature = temperature }
        let relT = (temperature ?? memory.referenceTemperature ?? 0) - (memory.referenceTemperature ?? 0)
        if validDt {
            memory.currentRange = Self.track(memory.currentRange, current, shrink: 40.0 / 900 * dt)
            if let t = temperature { memory.temperatureRange = Self.track(memory.temperatureRange, t, shrink: 2.0 / 900 * dt) }
        }
        if strategy == .learned && memory.learnedActive && !saturated {
            memory.disturbanceOutput = feedforward(temperature: relT)
        }

        // Guard 6, every tick: a loop that oscillates gets its gains halved at once.
        let ws = working ?? target
        var events: [String] = []
        // A new setpoint's approach is not an oscillation: the detector starts again.
        if let t = lastTarget, t != target { detector.reset(); targetChanged = now }
        lastTarget = target
        let halfBand = band * max(target, ws)
        if let o = detector.update(now: now, error: pressure - ws, minimum: Self.oscillationFraction * halfBand, large: 0.6 * halfBand) {
            let before = memory.scale
            memory.scale = max(settings.minScale, 0.5 * before)
            memory.oscillations += 1
            memory.raiseBlockedUntil = now + Self.raiseHoldoff
            // What the schedule holds at this pressure must not pull the gains back up.
            memory.schedule[bin(target, limits)] = memory.baseGain / memory.scale
            memory.estimate.reset()
            detector.reset(until: now + 2)
            events.append(before > settings.minScale
                ? "loop oscillating (period \(fmt3(o.period)) s, ±\(fmt3(o.amplitude)) MPa): gains halved (scale \(fmt3(before)) → \(fmt3(memory.scale))), no increase for \(Int(Self.raiseHoldoff / 60)) min"
                : "loop oscillating (period \(fmt3(o.period)) s, ±\(fmt3(o.amplitude)) MPa) at the lowest gain scale \(fmt3(memory.scale)): check the actuator and the tuning")
        }

        // Guard 7, every tick: gains that rise must not make the loop ring. While they
        // rise, the error's short-term RMS is compared with what it was before; 1.5× that
        // stops the rise, steps the gains back by 30 % and blocks rises for 10 minutes.
        let e2 = (pressure - ws) * (pressure - ws)
        let settledHere = abs(ws - target) < 1e-9 && now - (targetChanged ?? -.infinity) >= 5
        if validDt && settledHere {
            shortSquare += (e2 - shortSquare) * min(1, dt / 2)
            let rising = lastRaise.map { now - $0 < 10 } ?? false
            if !rising { baselineSquare = baselineSquare.map { $0 + (e2 - $0) * min(1, dt / 30) } ?? e2 }
            if rising, let b = baselineSquare, shortSquare > 2.25 * max(b, 1e-12) {
                let before = memory.scale
                memory.scale = max(settings.minScale, min(before, 0.7 * before))
                memory.raiseBlockedUntil = now + Self.raiseHoldoff
                memory.schedule[bin(target, limits)] = memory.baseGain / memory.scale
                lastRaise = nil
                events.append("gains stopped rising: the error's RMS grew from \(fmt3(b.squareRoot() * 1000)) to \(fmt3(shortSquare.squareRoot() * 1000)) kPa as they rose (scale \(fmt3(before)) → \(fmt3(memory.scale))), no increase for \(Int(Self.raiseHoldoff / 60)) min")
            }
        }

        if start == nil { start = now }
        if windowTarget != nil && windowTarget != target { windowTarget = .nan }
        windowTarget = windowTarget ?? target
        if abs(ws - target) > 1e-9 { windowAtTarget = false }
        sumP += pressure; sumU += output; sumT += relT; n += 1
        guard now - start! >= settings.interval - 1e-9 else { return events.isEmpty ? nil : AdaptationUpdate(handedOver: nil, events: events) }
        let win = Window(p: sumP / n, u: sumU / n * memory.baseGain, q: memory.charge, t: sumT / n,
                         target: windowTarget ?? .nan, time: now)
        let atTarget = windowAtTarget
        start = now; n = 0; sumP = 0; sumU = 0; sumT = 0; windowTarget = nil; windowAtTarget = true
        guard let prev = last else { last = win; return events.isEmpty ? nil : AdaptationUpdate(handedOver: nil, events: events) }
        last = win
        let dtw = win.time - prev.time

        // Guards 1–3 and 5, per settled window: a settled move tests the gain in force and
        // the candidate, then teaches the candidate.
        let settled = atTarget && win.target.isFinite && win.target == prev.target
            && abs(win.p - win.target) <= 0.5 * band * win.target && abs(win.p - prev.p) <= 0.2 * band * win.target
        if settled, let m = moves.settled(pressure: win.p, output: win.u, setpoint: win.target, play: play,
                                          minMove: max(settings.excitation, 3 * play)) {
            identify(m, limits: limits, events: &events)
        }

        // Guard 4: the scale follows the schedule within its bounds and rate.
        let desired = min(max(memory.baseGain / scheduledGain(at: target, limits: limits), settings.minScale), settings.maxScale)
        let maxStep = settings.gainRate * dtw
        // Rises are four times slower than cuts: time for guard 7 to see the loop's answer.
        var step = min(max(desired / memory.scale, 1 / (1 + maxStep)), 1 + maxStep / 4)
        if step > 1, let until = memory.raiseBlockedUntil, now < until { step = 1 }
        if step > 1 { lastRaise = now }
        memory.scale *= step

        // Disturbance model: learned from windows where the pressure was held at a steady
        // setpoint (the output then is what the plant and the disturbances required).
        var handed: Double?
        guard strategy == .learned else { return AdaptationUpdate(handedOver: nil, events: events) }
        let w = win
        let held = w.target == prev.target && w.target.isFinite && abs(w.p - w.target) <= 0.02 * w.target
        if held && !saturated {
            // The total output: with the feedforward on, it is still what holding the
            // pressure required.
            let total = w.u
            if let e = memory.disturbance.update(y: total, phi: [1, learnCharge ? w.q : 0, learnTemperature ? w.t : 0, w.target]) {
                memory.errorShort += 0.2 * (e * e - memory.errorShort)
                let k = memory.disturbance.updates < 20 ? 1 / Double(memory.disturbance.updates) : 0.05
                memory.errorLong += k * (e * e - memory.errorLong)
            }
            if let e = memory.disturbanceBaseline.update(y: total, phi: [1, w.target]) {
                let k = memory.disturbanceBaseline.updates < 20 ? 1 / Double(memory.disturbanceBaseline.updates) : 0.05
                memory.baselineErrorLong += k * (e * e - memory.baselineErrorLong)
            }
            // Does the disturbance show in the pressure error? Only then can feedforward
            // help: a fast loop that already cancels it leaves an error of noise and
            // quantisation that no prediction removes. Measured while the feedforward
            // is off (on, it removes the very correlation it feeds on).
            if !memory.learnedActive, learnCharge || learnTemperature {
                let phi = [learnCharge ? w.q - prev.q : 0, learnTemperature ? w.t - prev.t : 0, 1]
                let y = w.p - w.target
                if let e = memory.pressureError.update(y: y, phi: phi) {
                    let k = memory.pressureError.updates < 20 ? 1 / Double(memory.pressureError.updates) : 0.02
                    memory.pressureErrorTotal += k * (y * y - memory.pressureErrorTotal)
                    memory.pressureErrorResidual += k * (e * e - memory.pressureErrorResidual)
                }
            }
        }

        // Confidence: warmed up, something significant to feed forward, markedly better
        // than the baseline, and recent errors in line with the long-run level.
        let th = memory.disturbance.theta
        let warm = min(1, Double(memory.disturbance.updates) / 30)
        let significant = (learnCharge && abs(th[1]) > 4 * memory.disturbance.standardError(1))
            || (learnTemperature && abs(th[2]) > 4 * memory.disturbance.standardError(2))
        let benefit = min(1, max(0, (memory.disturbanceBenefit - 0.2) / 0.2)) * min(1, memory.disturbanceVisible / 0.3)
        let ratio = memory.errorShort / max(memory.errorLong, 1e-18)
        memory.confidence = significant ? warm * benefit * min(1, max(0, (4 - ratio) / 3)) : 0

        // Performance check: the regulation error while the feedforward is on must not
        // exceed what the adaptive PID achieved alone before it; if it does, the model is
        // wrong in a way its own error does not show, and it stands aside for 10 min.
        let absError = abs(w.p - target)
        memory.regulationError += 0.02 * (absError - memory.regulationError)
        var handOver: String?
        if memory.learnedActive {
            // Mean since activation: judged once it has two minutes of data.
            activeWindows += 1
            let delta = absError - memory.activeError
            memory.activeError += delta / Double(activeWindows)
            activeSquares += delta * (absError - memory.activeError)
            if memory.confidence < settings.confidenceLow {
                handOver = "learned model confidence \(fmt3(memory.confidence)); handed over to the adaptive PID"
            } else if activeWindows >= 120,
                      memory.activeError > 1.25 * memory.errorBeforeActivation
                        + 3 * (activeSquares / Double(activeWindows - 1) / Double(activeWindows)).squareRoot() + 1e-6 {
                handOver = "feedforward did not reduce the pressure error (\(fmt3(memory.activeError * 1000)) vs \(fmt3(memory.errorBeforeActivation * 1000)) kPa); handed over to the adaptive PID for 10 min"
                memory.blockedUntil = now + 600
            }
        }
        if let why = handOver {
            memory.learnedActive = false
            memory.handovers += 1
            handed = memory.disturbanceOutput
            memory.disturbanceOutput = 0
            confidentSince = nil
            events.append(why)
        } else if !memory.learnedActive && memory.confidence >= settings.confidenceHigh && now >= (memory.blockedUntil ?? -.infinity) {
            confidentSince = confidentSince ?? now
            if now - confidentSince! >= 20 {
                memory.learnedActive = true
                activeWindows = 0
                activeSquares = 0
                memory.activationCharge = memory.charge
                memory.activationTemperature = relT
                memory.disturbanceOutput = 0
                memory.errorBeforeActivation = memory.regulationError
                memory.activeError = memory.regulationError
                events.append("learned model confidence \(fmt3(memory.confidence)); disturbance feedforward on")
            }
        } else if memory.confidence < settings.confidenceHigh { confidentSince = nil }
        return AdaptationUpdate(handedOver: handed, events: events)
    }

    /// One settled move: judged against the gain in force and the candidate (out of
    /// sample), then learned by the candidate; the candidate replaces the gain in force at
    /// the move's pressure once validated, and the tuned gain comes back when the gain in
    /// force keeps mispredicting.
    private mutating func identify(_ m: SettledMove, limits: PressureLimits, events: inout [String]) {
        let j = bin(m.midpoint, limits)
        let inForce = scheduledGain(at: m.midpoint, limits: limits) / memory.baseGain
        memory.inForceErrors.append(abs(m.pressure - inForce * m.output) / abs(m.pressure))
        if memory.inForceErrors.count > GainEstimate.memory { memory.inForceErrors.removeFirst() }
        memory.estimate.observe(m, forgetting: 0.7)
        let v = settings.validationMoves
        let e = memory.estimate
        let candidateError = e.recentErrors.suffix(v).reduce(0, +) / Double(max(1, min(v, e.recentErrors.count)))
        let inForceError = memory.inForceErrors.suffix(v).reduce(0, +) / Double(max(1, min(v, memory.inForceErrors.count)))
        if e.validated(moves: v, tolerance: Self.validTolerance), memory.inForceErrors.count >= v,
           inForceError > Self.worthChanging, candidateError <= 0.5 * inForceError,
           e.gain > GainEstimate.plausible.lowerBound, e.gain < GainEstimate.plausible.upperBound {
            memory.schedule[j] = e.gain * memory.baseGain
            memory.inForceErrors = []
            events.append("plant gain \(fmt3(e.gain)) × tuned at \(fmt3(m.midpoint)) MPa, validated on \(v) moves (mean error \(fmt3(candidateError * 100)) % vs \(fmt3(inForceError * 100)) % for the gain in force); gain scale → \(fmt3(min(max(1 / e.gain, settings.minScale), settings.maxScale)))")
        } else if memory.inForceErrors.count >= 2, memory.inForceErrors.suffix(2).allSatisfy({ $0 > Self.mispredicted }),
                  memory.schedule.contains(where: { $0 != nil }) {
            let errors = memory.inForceErrors.suffix(2).map { fmt3($0 * 100) }
            memory.schedule = Array(repeating: nil, count: memory.schedule.count)
            memory.fallbacks += 1
            memory.inForceErrors = []
            events.append("the gain in force mispredicted the last 2 moves by \(errors.joined(separator: " % and ")) %: back to the tuned gains")
        }
    }
}
