/// A setpoint move the loop has finished: from one settled window to the next at a
/// different setpoint. Its pressure and output changes identify the plant's static gain.
public struct SettledMove: Sendable, Equatable {
    /// Pressure change between the two settled windows, MPa.
    public var pressure: Double
    /// Output change, as MPa-equivalents at the tuned gain (output × tuned gain),
    /// corrected for the actuator's play when the move reversed direction.
    public var output: Double
    /// Mean pressure over the move, MPa (the gain-schedule bin it informs).
    public var midpoint: Double
    /// The gain this move alone says, relative to the tuned gain.
    public var gain: Double { pressure / output }
}

/// Finds settled setpoint moves in the stream of identification windows.
///
/// **Why moves, and only moves.** In closed loop the output moves for three reasons: the
/// setpoint changed, a disturbance had to be compensated, or the controller answered
/// the sensor's noise. Only the first carries information about the plant's gain that
/// no other signal explains: a disturbance's compensation leaves the pressure where it
/// was (gain unidentifiable, or biased to zero), and the noise's answer correlates with
/// the noise (biased toward zero: the classic closed-loop identification bias). Over a
/// long quiet hold the old per-window regression drifted to 0.06× and below on both
/// fixtures for exactly these reasons. A move from one settled state to another, driven
/// by the setpoint (a signal from outside the loop), has neither problem, and friction,
/// backlash and hysteresis only shift where the output settles: corrected by the
/// configured play when the move reverses direction, as the autotune's two-hold step does.
public struct SettledMoveTracker: Sendable, Equatable, Codable {
    /// The last settled window: mean pressure, mean output (MPa-equivalent), its
    /// setpoint and the direction of the move that led there (+1 up, −1 down, 0 unknown).
    public struct Anchor: Sendable, Equatable, Codable {
        public var pressure: Double
        public var output: Double
        public var setpoint: Double
        public var direction: Int
    }
    public private(set) var anchor: Anchor?

    public init() {}

    /// Forgets the anchor (regulation interrupted: the next settled window starts anew).
    public mutating func interrupt() { anchor = nil }

    /// Feeds one settled window (at its setpoint, ramp finished, pressure steady in the
    /// band). Returns the move when the setpoint differs from the anchor's and the move
    /// is large enough to identify the gain (`minMove`, MPa).
    /// - Parameter play: the actuator's play as a stack pressure, MPa; a move that reverses
    ///   direction spends about that much output before the pressure answers.
    public mutating func settled(pressure p: Double, output u: Double, setpoint: Double, play: Double, minMove: Double) -> SettledMove? {
        guard let a = anchor, abs(setpoint - a.setpoint) > 1e-9 else {
            anchor = Anchor(pressure: p, output: u, setpoint: setpoint, direction: anchor?.direction ?? 0)
            return nil
        }
        let direction = setpoint > a.setpoint ? 1 : -1
        anchor = Anchor(pressure: p, output: u, setpoint: setpoint, direction: direction)
        let dp = p - a.pressure
        var du = u - a.output
        if a.direction != 0 && a.direction != direction { du -= Double(direction) * play }
        guard abs(dp) >= minMove, du * dp > 0, Double(direction) * dp > 0 else { return nil }
        return SettledMove(pressure: dp, output: du, midpoint: (p + a.pressure) / 2)
    }
}

/// The candidate estimate of the plant's gain and how well it has predicted the moves it
/// had not yet seen.
///
/// A scalar recursive least squares through the origin on settled moves (pressure change
/// = gain × output change), with a short memory (`forgetting` per move) so that a plant
/// that changed is followed within a few moves, its variance bounded both ways so that it
/// can neither freeze nor wind up, and the estimate projected into the plausible set
/// (1/16…16 × tuned) after every update. Before each update the move is first used to
/// test the estimate (out of sample): an estimate is *validated* only once it has
/// predicted several new moves well.
public struct GainEstimate: Sendable, Equatable, Codable {
    /// Gain relative to the tuned one.
    public private(set) var gain: Double = 1
    /// Scalar covariance (per MPa² of output move).
    public private(set) var variance: Double = GainEstimate.maxVariance
    public private(set) var observations = 0
    /// Out-of-sample relative prediction errors |Δp − ĝ·Δu| / |Δp| of the latest moves,
    /// newest last (at most ``GainEstimate/memory``).
    public private(set) var recentErrors: [Double] = []

    public static let plausible: ClosedRange<Double> = (1.0 / 16)...16
    static let minVariance = 1e-3, maxVariance = 100.0
    static let memory = 8

    public init() {}

    /// Tests the estimate on a move it has not seen, then learns from it.
    public mutating func observe(_ m: SettledMove, forgetting: Double) {
        if observations >= 1 {
            recentErrors.append(abs(m.pressure - gain * m.output) / abs(m.pressure))
            if recentErrors.count > Self.memory { recentErrors.removeFirst() }
        }
        let k = variance * m.output / (forgetting + m.output * m.output * variance)
        let g = gain + k * (m.pressure - gain * m.output)
        variance = min(max((variance - k * m.output * variance) / forgetting, Self.minVariance), Self.maxVariance)
        guard g.isFinite else { return reset() }
        gain = min(max(g, Self.plausible.lowerBound), Self.plausible.upperBound)
        observations += 1
    }

    /// True when the last `moves` out-of-sample errors are all within `tolerance`.
    public func validated(moves: Int, tolerance: Double) -> Bool {
        recentErrors.count >= moves && recentErrors.suffix(moves).allSatisfy { $0 <= tolerance }
    }

    /// Starts over (after an oscillation: what was learned did not hold).
    public mutating func reset() { self = GainEstimate() }
}

/// Sees the loop oscillating, within about two periods, from the regulation error alone.
///
/// The error (pressure − working setpoint) is followed through a hysteresis of ±`h`; an
/// oscillation is five alternating crossings of ±`h` (two full cycles) within
/// ``window`` seconds that are **regular** (each half-period within 0.6…1.6× their mean:
/// a loop driven unstable rings at its own frequency, disturbances and noise cross at
/// random) and **sustained** (the error's RMS over them at least 45 % of the mean peak: a
/// ringing loop stays away from zero, as a sine does at 71 %, while the loop's answers
/// to separate disturbances decay back to it between them), and either **growing** (each
/// half-cycle's peak 10 % above the previous one: the loop is unstable and will leave the
/// band) or **large** (every peak beyond 60 % of the band's half-width). `h` is set by the caller well above the sensor's noise (a fraction
/// of the band, and at least 6× the noise the detector measures itself), so neither noise
/// nor a cylinder's stick-slip hunting inside the band counts, while a loop with too much
/// gain is seen before its swings reach the band's edge.
public struct OscillationDetector: Sendable {
    /// Times of the latest crossings, newest last (at most 5).
    private var crossings: [Double] = []
    private var side = 0
    /// Largest |error| since the last crossing, and per finished half-cycle (at most 4);
    /// likewise Σe² and the tick count.
    private var peak = 0.0
    private var peaks: [Double] = []
    private var squares = 0.0, ticks = 0.0
    private var energies: [(sum: Double, n: Double)] = []
    /// No detection before this time (the gains just changed: let it settle).
    private var quietUntil: Double?
    /// Robust running noise level of the error, MPa (from its tick-to-tick change).
    public private(set) var noise = 0.0
    private var lastError: Double?

    /// Longest time for the five crossings, s.
    public static let window = 4.0

    public init() {}

    public mutating func reset(until: Double? = nil) {
        crossings = []; side = 0; peak = 0; peaks = []; lastError = nil; squares = 0; ticks = 0; energies = []
        quietUntil = until
    }

    /// One tick. Returns the period and amplitude when the loop oscillates.
    /// - Parameters:
    ///   - minimum: the hysteresis floor, MPa (the caller's fraction of the band); the
    ///     detector raises it to 6× its own noise estimate.
    ///   - large: a peak beyond this (MPa) is large.
    public mutating func update(now: Double, error e: Double, minimum: Double, large: Double) -> (period: Double, amplitude: Double)? {
        if let l = lastError {
            // For Gaussian noise mean |Δe| = 1.13 σ. A slow average (about 30 s at 100 Hz),
            // so that an oscillation does not raise its own threshold.
            noise += 0.0003 * (0.89 * abs(e - l) - noise)
        }
        lastError = e
        let h = max(minimum, 6 * noise)
        peak = max(peak, abs(e))
        squares += e * e; ticks += 1
        let s = e > h ? 1 : (e < -h ? -1 : 0)
        guard s != 0, s != side else { return nil }
        if side != 0 {
            peaks.append(peak)
            energies.append((squares, ticks))
            if peaks.count > 4 { peaks.removeFirst(); energies.removeFirst() }
        }
        side = s
        peak = abs(e)
        squares = 0; ticks = 0
        crossings.append(now)
        if crossings.count > 5 { crossings.removeFirst() }
        if let q = quietUntil, now < q { return nil }
        guard crossings.count == 5, peaks.count == 4, now - crossings[0] <= Self.window else { return nil }
        let halves = zip(crossings.dropFirst(), crossings).map { $0 - $1 }
        let mean = halves.reduce(0, +) / 4
        guard halves.allSatisfy({ $0 >= 0.6 * mean && $0 <= 1.6 * mean }) else { return nil }
        let rms = (energies.reduce(0) { $0 + $1.sum } / max(1, energies.reduce(0) { $0 + $1.n })).squareRoot()
        guard rms >= 0.45 * peaks.reduce(0, +) / 4 else { return nil }
        let growing = zip(peaks.dropFirst(), peaks).allSatisfy { $0 > 1.1 * $1 }
        guard growing || peaks.allSatisfy({ $0 >= large }) else { return nil }
        return (2 * mean, peaks.max()!)
    }
}
