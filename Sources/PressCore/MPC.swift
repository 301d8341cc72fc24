#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PressNumerics

/// The setpoints a channel's owner will ask for: the targets at `now + step·i`,
/// i = 1…`count`, MPa (a program's coming segments; an operator's target stays). The
/// setpoint ramp is applied by the law.
public typealias SetpointPreview = @Sendable (_ step: Double, _ count: Int) -> [Double]

/// Settings of the `mpc` law; the defaults suit both fixtures of the benchmark.
public struct MPCSettings: Sendable, Equatable, Codable {
    /// Lag and dead time of the plant model when no autotune has measured them, s (the
    /// nominal E/P regulator's; a stepper screw is faster, which only makes the model
    /// cautious).
    public var nominalLag: Double = 0.2
    public var nominalDeadTime: Double = 0.05
    /// The weight of a move, MPa² per MPa² of tracking error summed over the horizon.
    public var moveWeight: Double = 0.05
    public init() {}
}

/// A first-order-plus-dead-time model in pressure units: the pressure-equivalent command
/// v (MPa) reaches the model's pressure after `deadTime` through a lag `timeConstant`.
/// Stepped with the measured tick; keeps the commands still in the dead time.
struct LagDelayModel: Sendable {
    let timeConstant: Double
    let deadTime: Double
    private(set) var output: Double
    /// Commands with their times, oldest first, back to `deadTime` + a prediction step.
    private var times: [Double] = []
    private var values: [Double] = []

    init(timeConstant: Double, deadTime: Double, at value: Double, now: Double) {
        self.timeConstant = timeConstant; self.deadTime = deadTime
        output = value
        times = [now]; values = [value]
    }

    /// The command in force at time `t` (the latest at or before it; the oldest kept
    /// before that).
    func command(at t: Double) -> Double {
        var v = values[0]
        for i in times.indices where times[i] <= t + 1e-9 { v = values[i] }
        return v
    }

    var lastCommand: Double { values[values.count - 1] }

    /// Advances the model by `dt` to `now`: over the interval the command that was in
    /// force a dead time before its start drives the lag.
    mutating func advance(now: Double, dt: Double) {
        guard dt > 0, dt.isFinite else { return }
        let input = command(at: now - dt - deadTime)
        output += (timeConstant > 1e-6 ? 1 - exp(-dt / timeConstant) : 1) * (input - output)
    }

    /// Multiplies the state and the commands in the dead time by `factor` (the gain that
    /// turns outputs into pressures changed).
    mutating func scale(by factor: Double) {
        output *= factor
        for i in values.indices { values[i] *= factor }
    }

    /// Records the command applied from `now` on; forgets what can no longer matter.
    mutating func apply(_ v: Double, now: Double, keep: Double) {
        times.append(now); values.append(v)
        var drop = 0
        while drop + 1 < times.count && times[drop + 1] <= now - deadTime - keep { drop += 1 }
        if drop > 0 { times.removeFirst(drop); values.removeFirst(drop) }
    }
}

/// The unconstrained solution of the predictive controller, computed once per model:
/// the first row of (GᵀG + λI)⁻¹Gᵀ, G the step responses of N moves on N prediction steps.
struct PredictiveGain: Sendable, Equatable {
    let step: Double
    let count: Int
    /// Prediction steps before a move shows (the dead time), and the lag's decay per step.
    let delaySteps: Int
    let decay: Double
    let row: [Double]
    /// The most prediction steps (the per-tick cost is linear in them).
    static let maxSteps = 200
    var deadTime: Double { Double(delaySteps) * step }
    var horizon: Double { Double(count) * step }

    /// - Parameters:
    ///   - step: the prediction step, s: the loop's period, so that the plan is the one
    ///     the next tick revises (the dead time is rounded to whole steps).
    ///   - horizon: the horizon, s.
    init?(timeConstant: Double, deadTime: Double, step: Double, horizon: Double, moveWeight: Double) {
        guard step > 0, horizon >= 2 * step, timeConstant >= 0, deadTime >= 0 else { return nil }
        self.step = step
        count = min(PredictiveGain.maxSteps, Int((horizon / step).rounded()))
        delaySteps = Int((deadTime / step).rounded())
        decay = timeConstant > 1e-6 ? exp(-step / timeConstant) : 0
        let moves = count - delaySteps
        guard moves >= 1 else { return nil }
        // G[i][j]: prediction step i+1, move j (at step j): 1 − a^(i+1−j−d) once shown.
        var g = Matrix(rows: count, cols: moves)
        for i in 0..<count {
            for j in 0..<moves where i + 1 - j - delaySteps >= 1 {
                g[i, j] = 1 - pow(decay, Double(i + 1 - j - delaySteps))
            }
        }
        var h = g.gram()
        for j in 0..<moves { h[j, j] += moveWeight }
        guard let l = LinearAlgebra.cholesky(h) else { return nil }
        var e0 = [Double](repeating: 0, count: moves); e0[0] = 1
        let z = LinearAlgebra.choleskySolve(l, e0)
        var r = [Double](repeating: 0, count: count)
        for i in 0..<count { for j in 0..<moves { r[i] += z[j] * g[i, j] } }
        row = r
    }

    /// The first move, MPa, given the reference `ref` and the model's state.
    func move(reference ref: [Double], model: LagDelayModel, now: Double) -> Double {
        var y = model.output
        let held = model.lastCommand
        var m = 0.0
        for i in 0..<count {
            let input = i < delaySteps ? model.command(at: now + Double(i) * step - model.deadTime) : held
            y = decay * y + (1 - decay) * input
            m += row[i] * (ref[i] - y)
        }
        return m
    }
}

/// How well the plant model predicts the plant, from the output actually applied, and
/// the correction of its gain.
///
/// A parallel model (the same lag and dead time) is driven by the applied output times the
/// identified gain; the prediction is `ratio` × its pressure plus a slow bias (offsets,
/// slow disturbances: 5 s). The test: the RMS of the prediction error over about 5 s
/// against the larger of half the pressure's own movement (RMS about its 5 s mean), half
/// the band's half-width and the actuator's play. Above it for 2 s: the model misses.
/// The gain correction is the regression of the pressure's movement on the parallel
/// model's over about 20 s, adopted only while the model has handed over and only while
/// the pressure moved (RMS ≥ the band's half-width): a setpoint move, from outside the
/// loop, is what identifies a gain.
struct PredictionCheck: Sendable {
    var model: LagDelayModel
    var bias: Double = 0
    var meanP: Double
    var movement = 0.0
    var squareError = 0.0
    /// Gain correction in force, and the regression behind its estimate.
    var ratio = 1.0
    var meanZ: Double
    var meanY: Double
    var szz = 0.0, syz = 0.0
    /// Time the model has missed, and time it has predicted a real move well, s.
    var missing = 0.0
    var predicting = 0.0

    static let window = 5.0
    static let biasTime = 5.0
    static let gainWindow = 20.0
    /// Misses for this long → hand over; predicts moves for this long → come back, s.
    static let missTime = 2.0
    static let backTime = 5.0

    init(model: LagDelayModel, pressure: Double) {
        self.model = model
        meanP = pressure; meanY = pressure; meanZ = model.output
        bias = pressure - model.output
    }

    var error: Double { squareError.squareRoot() }
    var spread: Double { movement.squareRoot() }
    /// The gain correction the regression says (nil: not excited enough).
    func estimate(halfBand: Double) -> Double? {
        guard szz.squareRoot() >= halfBand, szz > 0 else { return nil }
        let g = syz / szz
        return g.isFinite ? min(max(g, GainEstimate.plausible.lowerBound), GainEstimate.plausible.upperBound) : nil
    }

    /// The error the model is allowed.
    func threshold(halfBand: Double, play: Double) -> Double { max(0.5 * spread, 0.5 * halfBand, play) }

    func confidence(halfBand: Double, play: Double) -> Double {
        max(0, min(1, 1 - error / (2 * threshold(halfBand: halfBand, play: play))))
    }

    /// - Parameters:
    ///   - applied: the applied output times the identified gain, MPa.
    ///   - adapt: the gain correction may change (the model has handed over).
    /// The identified gain changed by 1/`factor`: the parallel model's pressures follow
    /// it (no jump in the prediction) and the correction takes the change back.
    mutating func rebase(by factor: Double) {
        guard factor.isFinite, factor > 0 else { return }
        model.scale(by: 1 / factor)
        meanZ /= factor; szz /= factor * factor; syz /= factor
        ratio = min(max(ratio * factor, GainEstimate.plausible.lowerBound), GainEstimate.plausible.upperBound)
    }

    mutating func update(now: Double, dt: Double, pressure: Double, applied: Double, halfBand: Double, play: Double, adapt: Bool) {
        guard dt > 0, dt < 1 else { return }
        model.advance(now: now, dt: dt)
        let z = model.output
        let e = pressure - ratio * z - bias
        let a = min(1, dt / Self.window), b = min(1, dt / Self.gainWindow)
        bias += min(1, dt / Self.biasTime) * e
        meanP += a * (pressure - meanP)
        movement += a * ((pressure - meanP) * (pressure - meanP) - movement)
        squareError += a * (e * e - squareError)
        meanZ += b * (z - meanZ); meanY += b * (pressure - meanY)
        szz += b * ((z - meanZ) * (z - meanZ) - szz)
        syz += b * ((z - meanZ) * (pressure - meanY) - syz)
        if adapt, let g = estimate(halfBand: halfBand), abs(g / ratio - 1) > 0.1 {
            bias += (ratio - g) * z // the prediction does not jump
            ratio = g
        }
        model.apply(applied, now: now, keep: 0.1)
        let thr = threshold(halfBand: halfBand, play: play)
        missing = error > thr ? missing + dt : 0
        // A move predicted well: the pressure moved by more than the band's half-width
        // and the prediction followed it within half the threshold.
        predicting = (spread >= halfBand && error <= 0.5 * thr) ? predicting + dt : (error > thr ? 0 : predicting)
    }
}

/// What the `mpc` law shows in `status`.
public struct MPCStatus: Sendable, Equatable, Codable {
    /// Plant model: static gain (MPa per output unit), lag and dead time (s), horizon (s).
    public var gain: Double
    public var timeConstant: Double
    public var deadTime: Double
    public var horizon: Double
    /// Where lag and dead time came from: `autotune` or `nominal`.
    public var source: String
    /// RMS prediction error over ~5 s, MPa, and the confidence 0…1 judged from it.
    public var predictionError: Double
    public var confidence: Double
    /// The model computes the output (false: handed over to the adaptive PID).
    public var active: Bool
    public var handovers: Int
}

/// `mpc`: a model-predictive controller over a short horizon on a first-order-plus-dead-
/// time model, with the setpoint preview of whoever owns the setpoint.
///
/// The model's gain is the adaptive identification's (``PlantAdapter``, the tuned gain
/// until a settled move validates another), its lag and dead time the autotune's (else
/// ``MPCSettings``'s nominal ones). Each tick it plans the pressure-equivalent command v
/// over the horizon (an unconstrained quadratic cost solved once, ``PredictiveGain``;
/// O(N) per tick), clipped to the output's room and rate; the model's pressure for that
/// plan is what the PID chases, with v fed forward. The PID on the model's prediction
/// error keeps the hold offset-free and is the adaptive law's own, so that on a steady
/// hold the law is the adaptive PID. When the model stops predicting (``PredictionCheck``)
/// the adaptive PID takes over bumplessly, and the model comes back once it predicts
/// moves again.
public struct MPCLaw: ControlLaw {
    private(set) var base: AdaptiveLaw
    let settings: MPCSettings
    /// The unconstrained solution, made on the first tick with the loop's period.
    private(set) var gainModel: PredictiveGain?
    let horizon: Double
    let source: String
    /// Lag and dead time of the model, s.
    let lag: Double
    let deadTime: Double
    private var model: LagDelayModel?
    private(set) var check: PredictionCheck?
    /// The law's own ramped setpoint, MPa.
    private var working: Double?
    /// Pressure-equivalent output fed forward beyond the target's, output units.
    private var extra = 0.0
    private(set) var modelInControl = true
    private(set) var handovers = 0
    /// The adaptive identification's gain the correction was judged against.
    private var identifiedInForce: Double?
    /// The pressure has been in band since regulation started: the model is judged.
    private var judging = false

    init?(_ c: ControlLaws.Context) {
        guard let b = AdaptiveLaw(c) else { return nil }
        base = b
        settings = c.parameters.mpc
        let tau = c.lastTune?.timeConstant ?? settings.nominalLag
        let theta = c.lastTune?.deadTime ?? settings.nominalDeadTime
        source = c.lastTune != nil ? "autotune" : "nominal"
        lag = max(0, tau.isFinite ? tau : settings.nominalLag)
        deadTime = max(0, theta.isFinite ? theta : settings.nominalDeadTime)
        horizon = min(2, max(0.3, deadTime + 3 * lag + 0.2))
    }

    public var active: ActiveControl { isModelActive ? .mpc : base.active }
    var isModelActive: Bool { modelInControl }
    public var pid: PIDController {
        get { base.pid }
        set { base.pid = newValue }
    }
    public var wantsPreview: Bool { true }
    /// A planned pressure rate this fast (MPa/s) takes up the whole play.
    static let moving = 0.05
    /// Share of the actuator's play fed forward ahead of a planned move.
    static let playShare = 0.5
    public func pidParameters(ramp: Double?) -> PIDParameters { base.pidParameters(ramp: ramp) }
    public func feedforward(at target: Double) -> Double { base.feedforward(at: target) }
    public var modelGain: Double { base.modelGain }
    public var memory: ControllerMemory? { base.memory }

    /// The model's static gain at `target`, MPa per output unit.
    func plantGain(at target: Double) -> Double { base.adapter.scheduledGain(at: target, limits: base.parameters.limits) }

    /// The model, its prediction error and confidence, for status.
    public var status: MPCStatus {
        let t = working ?? base.parameters.limits.minSetpoint
        return MPCStatus(gain: plantGain(at: t) * (check?.ratio ?? 1), timeConstant: lag, deadTime: gainModel?.deadTime ?? deadTime,
                         horizon: gainModel?.horizon ?? horizon, source: source, predictionError: check?.error ?? 0,
                         confidence: check.map { $0.confidence(halfBand: base.parameters.band * t, play: base.parameters.actuatorPlay) } ?? 0,
                         active: isModelActive, handovers: handovers)
    }

    /// Regulation stopped: the model and its judgement start again on the next entry
    /// (the gain correction with them); a law that had handed over stays handed over
    /// until its model predicts moves again.
    public mutating func interrupt() {
        base.interrupt()
        model = nil; check = nil; working = nil
        judging = false
        extra = 0
    }

    public mutating func update(_ t: ControlTick, events: inout [ChannelEvent]) -> Double? {
        if gainModel == nil, t.dt > 0 {
            gainModel = PredictiveGain(timeConstant: lag, deadTime: deadTime, step: t.dt, horizon: horizon, moveWeight: settings.moveWeight)
        }
        guard let g = gainModel else { return base.update(t, events: &events) }
        let identified = plantGain(at: t.target)
        if let before = identifiedInForce, before != identified, var c = check {
            // The adaptive identification validated a gain: the correction is relative to it.
            c.rebase(by: before / identified)
            check = c
        }
        identifiedInForce = identified
        let k = identified * (check?.ratio ?? 1)
        let perMPa = k > 0 && k.isFinite ? 1 / k : base.modelGain
        let play = base.parameters.actuatorPlay
        let halfBand = base.parameters.band * t.target
        let start = model == nil
        if start {
            model = LagDelayModel(timeConstant: lag, deadTime: g.deadTime, at: t.pressure, now: t.now)
            check = PredictionCheck(model: LagDelayModel(timeConstant: lag, deadTime: g.deadTime, at: pid.output * identified, now: t.now),
                                    pressure: t.pressure)
            working = pid.workingSetpoint ?? t.pressure
        }
        var m = model!
        m.advance(now: t.now, dt: t.dt)

        // The reference over the horizon: the owner's coming targets, ramp-limited.
        let ramp = pid.parameters.setpointRampRate
        var w = working!
        if let r = ramp { w += min(max(t.target - w, -r * t.dt), r * t.dt) } else { w = t.target }
        working = w
        let targets = t.preview?(g.step, g.count) ?? []
        var ref = [Double](repeating: 0, count: g.count)
        var wi = w
        for i in 0..<g.count {
            let goal = i < targets.count ? targets[i] : t.target
            if let r = ramp { wi += min(max(goal - wi, -r * g.step), r * g.step) } else { wi = goal }
            ref[i] = wi
        }

        // The first move, clipped to the output's room and rate (the PID applies the
        // limits, the rate and the authority cap again to what it outputs).
        let last = m.lastCommand
        var v = last + g.move(reference: ref, model: m, now: t.now)
        let p = pid.parameters
        let top = min(p.outputMax, max(t.ceiling ?? .infinity, p.outputMin))
        v = min(max(v, last + (p.outputMin - pid.output) / perMPa), max(last, last + (top - pid.output) / perMPa))
        if let rate = p.outputRateLimit, t.dt > 0 { v = min(max(v, last - rate * t.dt / perMPa), last + rate * t.dt / perMPa) }
        m.apply(v, now: t.now, keep: g.step * Double(g.count))
        model = m
        // The actuator's play (a cylinder's friction, a regulator's hysteresis): half of it
        // ahead of the pressure's planned motion, nothing on a hold.
        let d = min(g.delaySteps, g.count - 2)
        let slope = (ref[d + 1] - ref[d]) / g.step
        let ahead = MPCLaw.playShare * play * max(-1, min(1, slope / Self.moving))
        let newExtra = (v + ahead - t.target) * perMPa

        let u: Double
        if modelInControl {
            // Bumpless: the feedforward's jump on entry (or back from the fallback) goes
            // into the integrator.
            if start { pid.shiftIntegral(by: -newExtra) }
            u = pid.update(setpoint: m.output, measurement: t.pressure, feedforward: t.feedforward + newExtra, dt: t.dt, ceiling: t.ceiling)
            extra = newExtra
            base.adapt(t, output: u, events: &events)
        } else {
            u = base.update(t, events: &events) ?? pid.output
        }

        // Judge the model on what was applied; hand over or come back.
        var c = check!
        // The approach when regulation starts (from a released stack: the contact gap, the
        // cell's soft first microns) is not judged: from the first time in band on.
        if !judging, abs(t.pressure - t.target) <= halfBand { judging = true }
        c.update(now: t.now, dt: t.dt, pressure: t.pressure, applied: u * identified, halfBand: halfBand, play: play, adapt: !modelInControl)
        check = c
        if !judging { c.missing = 0; check = c }
        if modelInControl, c.missing >= PredictionCheck.missTime {
            modelInControl = false
            handovers += 1
            pid.shiftIntegral(by: extra)
            extra = 0
            c.predicting = 0; check = c
            events.append(.adaptation("mpc: the model mispredicts the pressure (RMS error \(fmt3(c.error)) MPa over \(fmt0(PredictionCheck.window)) s, above \(fmt3(c.threshold(halfBand: halfBand, play: play))) MPa for \(fmt0(PredictionCheck.missTime)) s); handed over to the adaptive PID"))
        } else if !modelInControl, c.predicting >= PredictionCheck.backTime {
            modelInControl = true
            extra = newExtra
            pid.shiftIntegral(by: -newExtra)
            c.missing = 0; check = c
            events.append(.adaptation("mpc: the model predicts the pressure again (RMS error \(fmt3(c.error)) MPa while it moved ±\(fmt3(c.spread)) MPa, for \(fmt0(PredictionCheck.backTime)) s); model-predictive control back"))
        }
        return u
    }
}
