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
}

/// Tuning of the online identification; the defaults suit every rig in the benchmark.
public struct AdaptationSettings: Sendable, Equatable, Codable {
    /// Identification window, s: pressure, output and disturbances are averaged over
    /// it and the model relates the changes between consecutive windows.
    public var interval: Double = 1
    /// RLS forgetting factor per window (memory ≈ interval/(1−λ) s).
    public var forgetting: Double = 0.995
    /// Gain-schedule bins over the channel's setpoint range.
    public var scheduleBins: Int = 6
    /// Bounds of the gain scale relative to the tuned gains. By default the schedule
    /// only lowers gains (a stiffer plant than tuned keeps its stability margin) and
    /// never raises them above the autotuned values: a softer plant is regulated more
    /// slowly but never less stably. Raise `max_scale` to let it speed up soft plants.
    public var minScale: Double = 0.1
    public var maxScale: Double = 1
    /// Fastest relative gain change, per second.
    public var gainRate: Double = 0.05
    /// Smallest window-to-window input movement that counts as excitation, in MPa of
    /// predicted pressure (at the tuned gain).
    public var excitation: Double = 0.005
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
        if !(maxScale >= 1 && maxScale <= 100) { e.append(("max_scale", "must be 1…100")) }
        if !(gainRate > 0) { e.append(("gain_rate", "must be > 0")) }
        if !(excitation > 0) { e.append(("excitation_mpa", "must be > 0")) }
        if !(confidenceLow >= 0 && confidenceLow < confidenceHigh && confidenceHigh <= 1) {
            e.append(("confidence_low", "must satisfy 0 ≤ confidence_low < confidence_high ≤ 1"))
        }
        return e
    }
}

/// Everything the adaptive and learned controllers have learned about a channel. It is
/// persisted with the channel state so a restart does not start from scratch.
///
/// Two models, both identified by recursive least squares on one-second window means
/// (window means make the measurement noise small against real moves, so closed-loop
/// data give unbiased estimates):
///
/// - the **plant model**, for the gain schedule of the adaptive PID:
///
///       Δp̄ = g·Δũ + c·Δt + q·ΔQ + h·ΔT
///
///   with ũ = baseGain·u (g ≈ 1 on the plant the gains were tuned for), Q the charge
///   moved through the cell (mAh, integrated from the measured current: Li plating and
///   stripping change the thickness in proportion to it), T the cell temperature
///   (thermal growth) and c the unexplained drift rate (creep). The measured
///   disturbances keep the PID's own compensation of breathing and thermal growth from
///   being mistaken for a lower plant gain;
///
/// - the **disturbance model** of the learned controller, learned from what feedback
///   had to do while the pressure was held ("feedback-error learning"):
///
///       ū·baseGain = u₀ + a·Q + b·(T − T₀) + s·setpoint
///
///   so a·ΔQ + b·ΔT is the output change the measured disturbances require. Applied as
///   feedforward the moment the charge or temperature moves, it acts before the
///   disturbance shows in the pressure instead of after.
public struct ControllerMemory: Sendable, Equatable, Codable {
    /// Static gain (MPa per output unit) the base gains were tuned for.
    public var baseGain: Double
    /// Plant model, θ = [g, c, q, h].
    public var plant: RecursiveLeastSquares
    /// Disturbance model, θ = [u₀, a, b, s], and the same without a and b (θ = [u₀, s]).
    public var disturbance: RecursiveLeastSquares
    public var disturbanceBaseline: RecursiveLeastSquares
    /// Scheduled static gain per pressure bin, MPa per output unit (nil: not yet seen).
    public var schedule: [Double?]
    /// Present gain scale applied to the tuned kp, ki and feedforward gain.
    public var scale: Double = 1
    public var lastGoodScale: Double = 1
    public var lastGoodPlant: [Double]
    /// Times the plant estimate diverged and the last good gains were restored.
    public var fallbacks: Int = 0
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
        let prior: [Double] = [1, 0, 0, 0]
        // Prior variances weak against the information the regressors carry over the
        // forgetting memory (~200 windows): input moves of ~0.01 MPa, one-second
        // windows, a few µAh of charge and hundredths of a kelvin per window.
        let variances: [Double] = [1e5, 10, 1e6, 1e4]
        plant = RecursiveLeastSquares(count: 4, initial: prior, forgetting: forgetting, initialVariances: variances,
                                      maxCovarianceTrace: 10 * variances.reduce(0, +))
        disturbance = RecursiveLeastSquares(count: 4, initial: [0, 0, 0, 1], forgetting: forgetting,
                                            initialVariances: [1e3, 1e2, 1e2, 1], maxCovarianceTrace: 1e4)
        disturbanceBaseline = RecursiveLeastSquares(count: 2, initial: [0, 1], forgetting: forgetting,
                                                    initialVariances: [1e3, 1], maxCovarianceTrace: 1e4)
        pressureError = RecursiveLeastSquares(count: 3, initial: nil, forgetting: forgetting,
                                              initialVariances: [1e4, 1e2, 1], maxCovarianceTrace: 1e5)
        schedule = Array(repeating: nil, count: bins)
        lastGoodPlant = prior
    }

    /// The plant model's static gain estimate, MPa per output unit, when it is physical
    /// (positive, within 1/16…16× the tuned plant) and well determined (30 updates, a
    /// standard error under 30 % of the value).
    public var estimatedGain: Double? {
        if case .credible(let k) = estimateState { return k }
        return nil
    }

    /// What the plant estimate says now. Only an estimate outside the plausible range
    /// is a divergence; one that is merely uncertain (too few updates, too much noise
    /// for its standard error) says nothing either way and changes nothing.
    public enum EstimateState: Sendable, Equatable {
        /// The static gain, MPa per output unit.
        case credible(Double)
        case uncertain
        case diverged
    }

    public var estimateState: EstimateState {
        let g = plant.theta[0]
        guard plant.updates >= 30 else { return .uncertain }
        guard g.isFinite else { return .diverged }
        // The data must say so: an estimate whose own standard error is large is
        // uncertain wherever it has wandered (closed-loop noise without excitation
        // pulls it towards zero).
        guard plant.standardError(0) < 0.3 * abs(g) else { return .uncertain }
        guard g > 1.0 / 16, g < 16 else { return .diverged }
        return .credible(baseGain * g)
    }

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

/// What one identification window changed.
/// The new gain scale is in ``ControllerMemory/scale``.
public struct AdaptationUpdate: Sendable, Equatable {
    /// The learned model's feedforward was switched off; fold this (its last output) into
    /// the PID integrator so the output does not move.
    public var handedOver: Double?
    public var events: [String]
}

/// The online identification and gain schedule behind the `adaptive` and `learned`
/// strategies. Fed once per tick from the channel controller; identifies once per window.
public struct PlantAdapter: Sendable {
    public let settings: AdaptationSettings
    public private(set) var memory: ControllerMemory
    public let strategy: ControlStrategy

    private struct Window { var p, u, q, t, target, time: Double }
    private var start: Double?
    private var sumP = 0.0, sumU = 0.0, sumT = 0.0, n = 0.0
    private var windowTarget: Double?
    private var last: Window?
    private var goodRun = 0
    private var badRun = 0
    /// A divergence was reported and no credible estimate has been seen since: further
    /// fallbacks are counted, not logged again.
    private var divergenceReported = false
    private var confidentSince: Double?
    private var activeWindows = 0
    private var activeSquares = 0.0

    public init(strategy: ControlStrategy, settings: AdaptationSettings, memory: ControllerMemory) {
        self.strategy = strategy; self.settings = settings; self.memory = memory
    }

    /// Forgets the window in progress (after a mode change or a gap in measurements).
    public mutating func interrupt() {
        start = nil; n = 0; sumP = 0; sumU = 0; sumT = 0; windowTarget = nil
        last = nil
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
    /// ``memory``) and, at the end of a window, identifies and returns what changed.
    /// `saturated` freezes the feedforward.
    public mutating func observe(now: Double, dt: Double, pressure: Double, output: Double, target: Double, readings: ChannelReadings,
                                 limits: PressureLimits, saturated: Bool) -> AdaptationUpdate? {
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

        if start == nil { start = now }
        if windowTarget != nil && windowTarget != target { windowTarget = .nan }
        windowTarget = windowTarget ?? target
        sumP += pressure; sumU += output; sumT += relT; n += 1
        guard now - start! >= settings.interval - 1e-9 else { return nil }
        let w = Window(p: sumP / n, u: sumU / n * memory.baseGain, q: memory.charge, t: sumT / n,
                       target: windowTarget ?? .nan, time: now)
        start = now; n = 0; sumP = 0; sumU = 0; sumT = 0; windowTarget = nil
        guard let prev = last else { last = w; return nil }
        last = w
        var events: [String] = []

        // Plant model, only on windows that carry information: the input or a measured
        // disturbance moved. A disturbance whose signal has not varied cannot be told
        // from the drift term: its regressor stays out.
        let du = w.u - prev.u, dp = w.p - prev.p, dtw = w.time - prev.time
        let phi = [du, dtw, learnCharge ? w.q - prev.q : 0, learnTemperature ? w.t - prev.t : 0]
        if abs(du) >= settings.excitation || abs(phi[2]) > 1e-3 || abs(phi[3]) > 0.05 {
            memory.plant.update(y: dp, phi: phi)
        }

        // Gain schedule; fallback to the last good gains when the estimate diverges.
        // Messages on state changes only: the first fallback of a divergence, and the
        // return to a credible estimate.
        switch memory.estimateState {
        case .credible(let k):
            badRun = 0
            goodRun += 1
            let j = bin(w.p, limits)
            if abs(du) >= settings.excitation { memory.schedule[j] = memory.schedule[j].map { $0 + 0.1 * (k - $0) } ?? k }
            if goodRun >= 10 {
                memory.lastGoodScale = memory.scale; memory.lastGoodPlant = memory.plant.theta
                if divergenceReported {
                    divergenceReported = false
                    events.append("plant estimate credible again (gain \(fmt3(memory.plant.theta[0])) × tuned) after \(memory.fallbacks) fallback(s)")
                }
            }
        case .uncertain:
            goodRun = 0
        case .diverged:
            goodRun = 0
            badRun += 1
            if badRun == 10 {
                let g = memory.plant.theta[0]
                memory.fallbacks += 1
                memory.scale = memory.lastGoodScale
                memory.plant.reset(theta: memory.lastGoodPlant)
                badRun = 0
                if !divergenceReported {
                    divergenceReported = true
                    events.append("plant estimate diverged (gain \(fmt3(g)) × tuned, plausible 1/16…16); restored the last good gains (scale \(fmt3(memory.scale)))")
                }
            }
        }
        let desired = min(max(memory.baseGain / scheduledGain(at: target, limits: limits), settings.minScale), settings.maxScale)
        let maxStep = settings.gainRate * dtw
        memory.scale *= min(max(desired / memory.scale, 1 / (1 + maxStep)), 1 + maxStep)

        // Disturbance model: learned from windows where the pressure was held at a steady
        // setpoint (the output then is what the plant and the disturbances required).
        var handed: Double?
        guard strategy == .learned else { return AdaptationUpdate(handedOver: nil, events: events) }
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
}
