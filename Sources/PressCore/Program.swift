#if canImport(Glibc)
import Glibc
#endif

/// One step of a pressure program. Pressures in MPa, times in s, rates in MPa/s.
public enum ProgramStep: Sendable, Equatable, Codable {
    /// Set a new setpoint (with an optional ramp) and go on at once.
    case set(mpa: Double, ramp: Double?)
    /// Ramp from the present setpoint to `to` at `rate`; done when it gets there.
    case ramp(to: Double, rate: Double)
    /// Hold `mpa` (or the present setpoint when nil) for `duration`.
    case hold(mpa: Double?, duration: Double)
    /// Pulsed pressure: alternate `high` and `low`, half a period each, for `duration`.
    case square(low: Double, high: Double, period: Double, duration: Double, ramp: Double?)
    /// Oscillating pressure: mean + amplitude·sin(2πt/period), for `duration`.
    case sine(mean: Double, amplitude: Double, period: Double, duration: Double)
    /// Press at `press` for `pressTime`, then release to `release` and settle for
    /// `settleTime`.
    case pressRelease(press: Double, pressTime: Double, release: Double, settleTime: Double, ramp: Double?)
    /// Hold the present setpoint until digital input `input` reads `state`
    /// (e.g. the cycler's `charging` signal); fail after `timeout` if given.
    case waitInput(input: String, state: Bool, timeout: Double?)
    /// Repeat the steps from `toStep` (0-based) up to this one so that they run
    /// `count` times in all, then go on.
    case loop(toStep: Int, count: Int)

    /// Every setpoint the step can ask for.
    public var setpoints: [Double] {
        switch self {
        case .set(let m, _): return [m]
        case .ramp(let to, _): return [to]
        case .hold(let m, _): return m.map { [$0] } ?? []
        case .square(let lo, let hi, _, _, _): return [lo, hi]
        case .sine(let mean, let a, _, _): return [mean - a, mean + a]
        case .pressRelease(let p, _, let r, _, _): return [p, r]
        case .waitInput, .loop: return []
        }
    }

    public var name: String {
        switch self {
        case .set: return "set"
        case .ramp: return "ramp"
        case .hold: return "hold"
        case .square: return "square"
        case .sine: return "sine"
        case .pressRelease: return "press_release"
        case .waitInput: return "wait_input"
        case .loop: return "loop"
        }
    }
}

/// A named sequence of steps.
public struct PressureProgram: Sendable, Equatable, Codable {
    public var name: String
    public var steps: [ProgramStep]
    public init(name: String, steps: [ProgramStep]) { self.name = name; self.steps = steps }

    /// Problems that make the program unusable on a channel with `limits`, each
    /// naming the step (0-based) and what is wrong.
    public func validationErrors(limits: PressureLimits) -> [(step: Int, message: String)] {
        var e: [(Int, String)] = []
        if steps.isEmpty { e.append((0, "a program needs at least one step")) }
        for (i, s) in steps.enumerated() {
            for p in s.setpoints where !(p >= limits.minSetpoint && p <= limits.maxSetpoint) {
                e.append((i, "\(s.name): \(p) MPa is outside the channel's limits \(limits.minSetpoint)…\(limits.maxSetpoint) MPa"))
            }
            for r in s.rampRates where !RampRate.valid(r) {
                e.append((i, "\(s.name): ramp \(r) MPa/s is outside \(RampRate.minimum)…\(RampRate.maximum) MPa/s"))
            }
            switch s {
            case .ramp(_, let r) where !(r > 0): e.append((i, "ramp: rate must be > 0"))
            case .loop(let to, let n) where to >= 0 && to < i && n >= 1 && !steps[to..<i].contains(where: \.takesTime):
                e.append((i, "loop: steps \(to + 1)…\(i) take no time, so the loop would repeat \(n) times within one tick; put a hold, ramp or wait in it"))
            case .loop(_, let n) where n > 1_000_000:
                e.append((i, "loop: count \(n) is more than 1 000 000"))
            case .hold(_, let d) where !(d >= 0), .square(_, _, _, let d, _) where !(d >= 0), .sine(_, _, _, let d) where !(d >= 0):
                e.append((i, "\(s.name): duration must be ≥ 0"))
            case .square(_, _, let p, _, _) where !(p > 0), .sine(_, _, let p, _) where !(p > 0):
                e.append((i, "\(s.name): period must be > 0"))
            case .loop(let to, let n) where !(to >= 0 && to < i) || n < 1:
                e.append((i, "loop: to_step must name an earlier step and count must be ≥ 1"))
            case .pressRelease(_, let a, _, let b, _) where !(a >= 0 && b >= 0):
                e.append((i, "press_release: times must be ≥ 0"))
            default: break
            }
        }
        return e
    }
}

/// What a program started from: the pressure its first ramp begins at, and whether that
/// was the channel's setpoint (it was regulating) or its measured pressure (it was not).
public struct ProgramOrigin: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable { case setpoint, measuredPressure = "measured_pressure" }
    public var pressure: Double
    public var source: Source
    /// The channel's mode when the program started.
    public var mode: ChannelMode
    public init(pressure: Double, source: Source, mode: ChannelMode) { self.pressure = pressure; self.source = source; self.mode = mode }
}

/// Where a running program is. Codable, so a restart resumes at the same step; time
/// spent while pressd was not running does not count toward a step's duration.
public struct ProgramRunner: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable { case running, paused, finished, failed }

    public let program: PressureProgram
    public private(set) var state: State = .running
    public private(set) var index = 0
    /// Seconds spent in the current step while running.
    public private(set) var elapsed: Double = 0
    /// Remaining repeats per loop step.
    private var loopsLeft: [Int: Int] = [:]
    /// The setpoint the program asks for now.
    public private(set) var setpoint: Double?
    public private(set) var ramp: Double?
    /// The setpoint when the current step started.
    private var stepStartSetpoint: Double?
    private var lastTime: Double?
    public private(set) var failure: String?
    /// What it started from (nil in a state file written before it was recorded).
    public private(set) var origin: ProgramOrigin?

    public init(program: PressureProgram, startSetpoint: Double?, origin: ProgramOrigin? = nil) {
        self.program = program
        self.setpoint = startSetpoint
        self.stepStartSetpoint = startSetpoint
        self.origin = origin
    }

    public var currentStep: ProgramStep? { index < program.steps.count ? program.steps[index] : nil }

    public mutating func pause() { if state == .running { state = .paused } }
    public mutating func resume() { if state == .paused { state = .running; lastTime = nil } }
    /// Forgets the wall time of the last update (call after a restart).
    public mutating func rebase() { lastTime = nil }

    /// Advances to `now` (loop time, s). Returns the step indices entered, so the caller
    /// can log them.
    @discardableResult
    public mutating func update(now: Double, inputs: (String) -> Bool?) -> [Int] {
        let dt = lastTime.map { max(0, now - $0) } ?? 0
        lastTime = now
        guard state == .running else { return [] }
        elapsed += dt
        var entered: [Int] = []
        // Several zero-time steps (set, loop) may complete in one update.
        for _ in 0..<(program.steps.count * 2 + 2) {
            guard let step = currentStep else { state = .finished; return entered }
            guard let used = evaluate(step, inputs: inputs) else { return entered }
            advance(carry: max(0, elapsed - used))
            if let _ = currentStep { entered.append(index) }
        }
        return entered
    }

    /// Moves to the next step; `carry` is the time already spent past the end of the
    /// finished step, so long programs do not drift by a tick per step.
    private mutating func advance(carry: Double) {
        elapsed = carry
        stepStartSetpoint = setpoint
        if case .loop(let to, let count)? = currentStep {
            let left = loopsLeft[index] ?? (count - 1)
            if left > 0 {
                loopsLeft[index] = left - 1
                // Reset the counters of loops nested inside this one.
                for k in to..<index { loopsLeft[k] = nil }
                index = to
                return
            }
            loopsLeft[index] = nil
        }
        index += 1
    }

    /// Sets the step's setpoint for the present elapsed time. Returns nil while the step
    /// runs, or the time the step took when it is done.
    private mutating func evaluate(_ step: ProgramStep, inputs: (String) -> Bool?) -> Double? {
        let t = elapsed
        func done(after d: Double) -> Double? { t >= d ? d : nil }
        switch step {
        case .set(let m, let r):
            setpoint = m; ramp = r
            return 0
        case .ramp(let to, let rate):
            let from = stepStartSetpoint ?? to
            setpoint = to; ramp = rate
            return done(after: abs(to - from) / rate)
        case .hold(let m, let d):
            if let m { setpoint = m }
            return done(after: d)
        case .square(let lo, let hi, let period, let d, let r):
            let phase = t.truncatingRemainder(dividingBy: period) / period
            setpoint = phase < 0.5 ? hi : lo; ramp = r
            return done(after: d)
        case .sine(let mean, let a, let period, let d):
            setpoint = mean + a * sin(2 * .pi * t / period); ramp = nil
            return done(after: d)
        case .pressRelease(let p, let pt, let r, let st, let rr):
            setpoint = t < pt ? p : r; ramp = rr
            return done(after: pt + st)
        case .waitInput(let name, let want, let timeout):
            if inputs(name) == want { return t }
            if let timeout, t >= timeout {
                state = .failed
                failure = "wait_input: '\(name)' did not become \(want) within \(timeout) s"
            }
            return nil
        case .loop:
            return 0
        }
    }
}

extension ProgramStep {
    /// Whether the step can take time (a loop of steps that cannot would spin).
    var takesTime: Bool {
        switch self {
        case .set, .loop: return false
        case .ramp: return true
        case .hold(_, let d), .square(_, _, _, let d, _), .sine(_, _, _, let d): return d > 0
        case .pressRelease(_, let a, _, let b, _): return a + b > 0
        case .waitInput: return true
        }
    }

    /// The ramp rates the step sets, MPa/s.
    var rampRates: [Double] {
        switch self {
        case .set(_, let r?), .square(_, _, _, _, let r?), .pressRelease(_, _, _, _, let r?): return [r]
        case .ramp(_, let r): return r > 0 ? [r] : []
        default: return []
        }
    }
}

/// The setpoint ramp rates pressd accepts, MPa/s: a slower ramp would never arrive
/// (1e-300 froze a channel far from its setpoint with no fault), a faster one is a step.
public enum RampRate {
    public static let minimum = 1e-4
    public static let maximum = 1000.0
    public static func valid(_ r: Double) -> Bool { r.isFinite && r >= minimum && r <= maximum }
}
