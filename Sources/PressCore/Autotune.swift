#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tuning rules that turn a relay experiment into PI gains.
public enum TuningRule: String, Sendable, Codable, CaseIterable {
    /// Ziegler–Nichols PI from ultimate gain and period: fast, little margin.
    case zieglerNichols = "ziegler-nichols"
    /// Tyreus–Luyben PI from ultimate gain and period: more damping than Z–N.
    case tyreusLuyben = "tyreus-luyben"
    /// Skogestad's SIMC PI from the first-order-plus-dead-time model, τc = θ.
    case simc
    /// Åström–Hägglund's AMIGO PI from the first-order-plus-dead-time model.
    case amigo
}

/// What a relay experiment may do. The relay swings the actuator around the output that
/// holds the present setpoint; the pressure never leaves setpoint ± `maxExcursion`
/// (the experiment aborts first) nor the channel's setpoint limits.
public struct AutotuneSettings: Sendable, Equatable, Codable {
    /// Largest allowed pressure deviation from the setpoint, MPa.
    public var maxExcursion: Double
    /// Relay hysteresis, MPa. `nil`: 4× the measured noise, at least 5 % of the excursion.
    public var hysteresis: Double?
    public var rule: TuningRule
    /// Steady oscillation periods to average.
    public var cycles: Int
    /// Gives up (and keeps the old gains) after this long, s.
    public var timeout: Double

    public init(maxExcursion: Double = 0.25, hysteresis: Double? = nil, rule: TuningRule = .amigo, cycles: Int = 8, timeout: Double = 120) {
        self.maxExcursion = maxExcursion; self.hysteresis = hysteresis; self.rule = rule
        self.cycles = cycles; self.timeout = timeout
    }

    public func validationErrors() -> [(field: String, message: String)] {
        var e: [(String, String)] = []
        if !(maxExcursion > 0) { e.append(("max_excursion_mpa", "must be > 0")) }
        if let h = hysteresis, !(h >= 0 && h < maxExcursion) { e.append(("hysteresis_mpa", "must be ≥ 0 and below max_excursion_mpa")) }
        if !(cycles >= 2 && cycles <= 20) { e.append(("cycles", "must be 2…20")) }
        if !(timeout >= 10) { e.append(("timeout_s", "must be ≥ 10")) }
        return e
    }
}

/// The outcome of a successful experiment.
public struct AutotuneResult: Sendable, Equatable, Codable {
    public var rule: TuningRule
    /// Ultimate gain (output units per MPa) and period (s).
    public var ultimateGain: Double
    public var ultimatePeriod: Double
    /// First-order-plus-dead-time model: static gain (MPa per output unit), time constant
    /// and dead time (s).
    public var processGain: Double
    public var timeConstant: Double
    public var deadTime: Double
    /// Relay amplitude used (output units) and the pressure oscillation's half-amplitude (MPa).
    public var relayAmplitude: Double
    public var oscillationAmplitude: Double
    public var kp: Double
    public var ki: Double
    /// Setpoint at which the experiment ran, MPa, and the output that held it.
    public var setpoint: Double
    public var bias: Double
    public var cycles: Int

    /// The static plant inverse the experiment measured: output ≈ gain·p + offset.
    public var feedforward: Feedforward { Feedforward(gain: 1 / processGain, offset: bias - setpoint / processGain) }

    /// PI gains by `rule` from the relay data and the FOPDT model.
    static func gains(rule: TuningRule, ku: Double, pu: Double, k: Double, tau: Double, theta: Double) -> (kp: Double, ki: Double) {
        switch rule {
        case .zieglerNichols:
            let kp = 0.45 * ku
            return (kp, kp / (pu / 1.2))
        case .tyreusLuyben:
            let kp = ku / 3.2
            return (kp, kp / (2.2 * pu))
        case .simc:
            let tc = theta
            let kp = tau / (k * (tc + theta))
            let ki = 1 / (k * (tc + theta)) * (tau >= 4 * (tc + theta) ? tau / (4 * (tc + theta)) : 1)
            return (kp, ki)
        case .amigo:
            let kp = 0.15 / k + (0.35 - theta * tau / ((theta + tau) * (theta + tau))) * tau / (k * theta)
            let ti = 0.35 * theta + 13 * theta * tau * tau / (tau * tau + 12 * theta * tau + 7 * theta * theta)
            return (max(0, kp), max(0, kp) / ti)
        }
    }
}

/// Progress of a relay experiment.
public enum AutotunePhase: Sendable, Equatable, Codable {
    /// Measuring the noise and the output that holds the setpoint.
    case baseline
    /// A small step of the output to measure the static gain and the dead time.
    case step
    /// Relay oscillation; `cycles` periods seen so far.
    case relay(cycles: Int)
    case done(AutotuneResult)
    case failed(String)

    public var name: String {
        switch self {
        case .baseline: "baseline"
        case .step: "step"
        case .relay: "relay"
        case .done: "done"
        case .failed: "failed"
        }
    }
    public var finished: Bool { if case .done = self { return true }; if case .failed = self { return true }; return false }
}

/// The Åström–Hägglund relay experiment, as a pure state machine fed with the
/// measurement, returning the actuator output.
///
/// 1. **baseline** (2 s): the output stays where regulation left it; the mean and
///    noise of the pressure are measured.
/// 2. **step**: the output ramps away from the bias (at a rate that, by the present
///    static-inverse estimate, would move the pressure half the excursion in 2 s) and
///    holds twice, when the pressure has moved a quarter and half of the excursion;
///    the slope between the two settled holds is the static gain K (friction and dead
///    zone, which only delay the start of movement, cancel), the first visible
///    movement gives the dead time. Ramping rather than stepping keeps a plant much
///    stiffer than expected inside the excursion.
/// 3. **relay**: output = bias ± d with hysteresis h around the setpoint, d sized from K
///    for an oscillation of half the excursion. Ultimate gain Ku = 4d / (π√(a²−h²)),
///    period Pu from the switching times; with K this gives the FOPDT model
///    τ = √((K·Ku)²−1)/ω, θ = (π − atan ωτ)/ω.
///
/// It fails, rather than produce gains, when the pressure leaves the allowed excursion,
/// the oscillation does not become regular before the timeout, or the numbers are not
/// physical. The caller returns the output to `bias` on failure.
public struct RelayAutotuner: Sendable, Equatable, Codable {
    public let settings: AutotuneSettings
    public let setpoint: Double
    /// The output that held the setpoint when the experiment started.
    public private(set) var bias: Double
    public let outputMin: Double
    public let outputMax: Double
    /// Highest and lowest pressure the experiment may produce (setpoint ± excursion,
    /// inside the channel's setpoint limits).
    public let ceiling: Double
    public let floor: Double
    public private(set) var phase: AutotunePhase = .baseline
    public private(set) var started: Double?
    /// The output the tuner asks for.
    public private(set) var output: Double

    private var inversePrior: Double
    private var phaseStart = 0.0
    private var sum = 0.0, sumSq = 0.0, n = 0.0
    private var baselineMean = 0.0, noise = 0.0
    private var rampRate = 0.0
    private var rampLimit = 0.0
    private var rampStopped: Double?
    private var firstPoint: Point?
    private var lastSwitch: Double?
    private var initialAmplitude = 0.0
    private struct Point: Sendable, Equatable, Codable { var u: Double; var p: Double }
    /// Time of the latest step.
    public private(set) var lastTime = 0.0
    private var stepDeadTime: Double?
    private var stepSamples: [Double] = []
    private var gain = 0.0
    private var relayHigh = true
    private var hyst = 0.0
    private var amplitude = 0.0
    private var switches: [Double] = []
    private var peakHigh = -Double.infinity, peakLow = Double.infinity
    private var peaks: [Double] = []

    /// - Parameters:
    ///   - bias: the present output, which holds `setpoint`.
    ///   - inverseGain: the present estimate of output units per MPa (the feedforward
    ///     gain), used only to size the first step.
    public init(settings: AutotuneSettings, setpoint: Double, bias: Double, inverseGain: Double,
                outputMin: Double, outputMax: Double, limits: PressureLimits) {
        self.settings = settings; self.setpoint = setpoint; self.bias = bias
        self.outputMin = outputMin; self.outputMax = outputMax
        self.ceiling = min(setpoint + settings.maxExcursion, limits.maxSetpoint)
        self.floor = max(setpoint - settings.maxExcursion, limits.minSetpoint)
        self.inversePrior = inverseGain
        self.output = bias
    }

    private mutating func fail(_ why: String) -> Double {
        phase = .failed(why)
        output = bias
        return bias
    }

    private mutating func enter(_ p: AutotunePhase, now: Double) {
        phase = p; phaseStart = now; sum = 0; sumSq = 0; n = 0
    }

    /// One step with the present pressure. Returns the output to apply.
    public mutating func step(now: Double, pressure: Double) -> Double {
        if phase.finished { return output }
        if started == nil { started = now; phaseStart = now }
        guard now - started! <= settings.timeout else {
            return fail("no regular oscillation within \(fmt0(settings.timeout)) s (phase \(phase.name)); gains unchanged")
        }
        if pressure > ceiling + 0.5 * settings.maxExcursion || pressure < floor - 0.5 * settings.maxExcursion {
            return fail("pressure \(fmt3(pressure)) MPa left the allowed excursion \(fmt3(floor))…\(fmt3(ceiling)) MPa; gains unchanged")
        }
        let t = now - phaseStart
        defer { lastTime = now }
        switch phase {
        case .baseline:
            sum += pressure; sumSq += pressure * pressure; n += 1
            if t >= 2 {
                baselineMean = sum / n
                noise = max(0, sumSq / n - baselineMean * baselineMean).squareRoot()
                guard abs(baselineMean - setpoint) < settings.maxExcursion / 2 else {
                    return fail("pressure \(fmt3(baselineMean)) MPa is not settled at the setpoint \(fmt3(setpoint)) MPa")
                }
                guard noise < settings.maxExcursion / 8 else {
                    return fail("pressure noise \(fmt3(noise)) MPa is too large for an excursion of \(fmt3(settings.maxExcursion)) MPa")
                }
                // Ramp the output so that, by the prior, the pressure would move half the
                // excursion in 2 s; stop as soon as it has. A plant far stiffer than the
                // prior stops early, one far softer (or sticky) takes longer.
                let prior = inversePrior > 0 ? inversePrior : (outputMax - outputMin) / max(setpoint, 1)
                rampRate = prior * settings.maxExcursion / 4
                if bias + prior * settings.maxExcursion > outputMax { rampRate = -rampRate }
                rampLimit = 16 * prior * settings.maxExcursion / 2
                stepSamples.removeAll()
                stepDeadTime = nil
                rampStopped = nil
                firstPoint = nil
                enter(.step, now: now)
            }
        case .step:
            let sign: Double = rampRate > 0 ? 1 : -1
            let moved = (pressure - baselineMean) * sign
            if stepDeadTime == nil && moved > max(4 * noise, settings.maxExcursion / 30) { stepDeadTime = t }
            // Two holds on the way up: at a quarter and at half the excursion. The gain is
            // the slope between them, both on the moving branch, so friction and dead
            // zone (which delay the start of the movement) cancel out.
            let stopAt = firstPoint == nil ? settings.maxExcursion / 4 : settings.maxExcursion / 2
            if rampStopped == nil {
                if moved >= stopAt {
                    rampStopped = t
                    stepSamples.removeAll()
                } else {
                    let next = output + rampRate * max(0, now - lastTime)
                    guard abs(next - bias) <= rampLimit, next >= outputMin, next <= outputMax else {
                        return fail("the pressure did not follow the output ramp to \(fmt3(output)) (ΔP \(fmt3(pressure - baselineMean)) MPa); check the actuator")
                    }
                    output = next
                }
            } else {
                stepSamples.append(pressure)
                let held = t - rampStopped!
                if held >= 1.5 && windowDrift() || held >= 8 {
                    let tail = stepSamples.suffix(max(10, stepSamples.count / 5))
                    let final = tail.reduce(0, +) / Double(tail.count)
                    guard let first = firstPoint else {
                        firstPoint = Point(u: output, p: final)
                        rampStopped = nil
                        return output
                    }
                    gain = (final - first.p) / (output - first.u)
                    guard gain.isFinite, gain > 0 else {
                        return fail("the pressure moved against the output (ΔP \(fmt3(final - first.p)) MPa for Δu \(fmt3(output - first.u))); check the actuator's direction")
                    }
                    output = bias
                    hyst = settings.hysteresis ?? max(4 * noise, 0.1 * settings.maxExcursion)
                    // The relay amplitude from the secant (bias to the second hold), which
                    // includes what friction takes, so that the relay really moves the plant.
                    let secant = (final - baselineMean) / (output - bias)
                    amplitude = 0.5 * settings.maxExcursion / (secant > 0 && secant.isFinite ? min(secant, gain) : gain)
                    amplitude = min(amplitude, bias - outputMin, outputMax - bias)
                    guard amplitude > 0 else { return fail("no room for a relay around output \(fmt3(bias))") }
                    initialAmplitude = amplitude
                    relayHigh = pressure < setpoint
                    switches.removeAll(); peaks.removeAll()
                    peakHigh = -.infinity; peakLow = .infinity
                    enter(.relay(cycles: 0), now: now)
                    output = clamp(bias + (relayHigh ? amplitude : -amplitude))
                }
            }
        case .relay:
            peakHigh = max(peakHigh, pressure); peakLow = min(peakLow, pressure)
            let e = setpoint - pressure
            var switched = false
            if relayHigh && e < -hyst { relayHigh = false; switched = true }
            else if !relayHigh && e > hyst { relayHigh = true; switched = true }
            // Friction, a dead zone or backlash can swallow a small relay: when the
            // pressure has not crossed the band for 5 s, enlarge the relay by half and
            // start counting periods again.
            if !switched && now - (lastSwitch ?? now) > 5 {
                // Never more than 8× the amplitude the measured gain asked for: a relay
                // that needs more is fighting something (a jam, an end stop), not friction.
                let larger = min(amplitude * 1.5, bias - outputMin, outputMax - bias, 8 * initialAmplitude)
                guard larger > amplitude * 1.01 else {
                    return fail("the relay at \(fmt3(amplitude / initialAmplitude))× its planned amplitude does not move the pressure across the band; gains unchanged")
                }
                amplitude = larger
                switches.removeAll(); peaks.removeAll()
                peakHigh = -.infinity; peakLow = .infinity
                lastSwitch = now
                output = clamp(bias + (relayHigh ? amplitude : -amplitude))
                return output
            }
            if lastSwitch == nil { lastSwitch = now }
            if switched {
                lastSwitch = now
                if relayHigh {
                    // A full period ends at each switch to high.
                    switches.append(now)
                    if peakHigh.isFinite && peakLow.isFinite { peaks.append((peakHigh - peakLow) / 2) }
                    peakHigh = -.infinity; peakLow = .infinity
                }
                output = clamp(bias + (relayHigh ? amplitude : -amplitude))
                let cycles = max(0, switches.count - 1)
                phase = .relay(cycles: cycles)
                if cycles >= settings.cycles + 1 { return finish() }
            }
        case .done, .failed:
            break
        }
        return output
    }

    private func clamp(_ u: Double) -> Double { min(max(u, outputMin), outputMax) }

    private func windowDrift() -> Bool {
        let k = stepSamples.count
        guard k >= 100 else { return false }
        let a = stepSamples[(k - 100)..<(k - 50)].reduce(0, +) / 50
        let b = stepSamples[(k - 50)..<k].reduce(0, +) / 50
        return abs(b - a) < max(noise, settings.maxExcursion / 100)
    }

    private mutating func finish() -> Double {
        // Skip the first period (transient); use the rest.
        let periods = zip(switches.dropFirst(), switches).map { $0 - $1 }.dropFirst()
        let amps = Array(peaks.dropFirst(2))
        guard periods.count >= 2, !amps.isEmpty else { return fail("too few periods") }
        let pu = periods.reduce(0, +) / Double(periods.count)
        let a = amps.reduce(0, +) / Double(amps.count)
        let sd = (periods.reduce(0) { $0 + ($1 - pu) * ($1 - pu) } / Double(periods.count)).squareRoot()
        let spread = sd / pu
        guard spread < 0.3 else { return fail("oscillation period irregular (spread \(Int(spread * 100)) %); gains unchanged") }
        guard a > hyst else { return fail("oscillation amplitude \(fmt3(a)) MPa not above the hysteresis; gains unchanged") }
        let ku = 4 * amplitude / (.pi * (a * a - hyst * hyst).squareRoot())
        let w = 2 * Double.pi / pu
        let kk = gain * ku
        let tau = kk > 1 ? (kk * kk - 1).squareRoot() / w : 0
        var theta = (Double.pi - atan(w * tau)) / w
        if let d = stepDeadTime { theta = max(min(theta, 2 * d + 0.5 * pu), 0.25 * theta) }
        var g = AutotuneResult.gains(rule: settings.rule, ku: ku, pu: pu, k: gain, tau: tau, theta: theta)
        g.kp = max(0, g.kp)
        guard g.kp.isFinite, g.ki.isFinite, g.ki > 0 else { return fail("rule \(settings.rule.rawValue) gave unusable gains") }
        let result = AutotuneResult(rule: settings.rule, ultimateGain: ku, ultimatePeriod: pu, processGain: gain,
                                    timeConstant: tau, deadTime: theta, relayAmplitude: amplitude, oscillationAmplitude: a,
                                    kp: g.kp, ki: g.ki, setpoint: setpoint, bias: bias, cycles: periods.count)
        phase = .done(result)
        output = bias
        return bias
    }
}
