import PressNumerics
/// Watches whether the pressure still answers the output, and caps the output while it
/// does not.
///
/// When the air supply falls below what the setpoint needs, or a screw stalls, the PID
/// keeps pushing: the output climbs to its limit (or a stepper's commanded position runs
/// away from the real one). When authority returns — the air comes back, the screw frees
/// — everything that was pushed arrives at once and the pressure shoots past the band.
///
/// Authority counts as lost, below the band, when for ``evidenceTime`` either
/// - the output has been held at its upper limit (also on the way to a new setpoint), or
/// - once the pressure had settled at the present target, the output has risen by what
///   the plant model says should have raised the pressure by twice the band (and at
///   least by the actuator's play), and the pressure rose by less than a quarter of
///   that. At a low setpoint twice the band is a few newtons, less than a cylinder's
///   stiction, which the output must first climb through: that is play, not lost
///   authority.
///
/// While it is lost, the output is capped at what the setpoint needs — the mean output
/// that last held the band at this setpoint, or else the static feedforward model —
/// plus half the band's worth of margin. While the shortfall is within the actuator's
/// play (the pressure stuck just below the band, as a cylinder's stiction leaves it),
/// the margin is the play instead: a cap below it could never break the piston free,
/// and friction takes the excess back when it moves. A supply that is gone leaves a
/// shortfall far beyond the play, and the small margin. A returning supply then brings the pressure
/// back to the setpoint, not past it. Authority is back when the pressure is in the band
/// again (or the target changes).
public struct AuthorityMonitor: Sendable {
    /// Seconds of evidence before authority counts as lost: an output held at its limit,
    /// or an output that moved by twice the band's worth without effect (longer than
    /// the actuators' dead time and lag, a few tenths of a second).
    public static let evidenceTime = 0.5
    public static let noEffectTime = 0.3
    /// Time constant of the "output that holds the setpoint" average, s.
    static let holdingTimeConstant = 2.0

    /// The mean output while in band at `target`.
    public private(set) var holding: (target: Double, output: Double)?
    /// Where the present excursion below the band started: output and pressure.
    private var reference: (output: Double, pressure: Double)?
    private var evidenceSince: Double?
    /// The cap in force while authority is lost, nil otherwise.
    public private(set) var ceiling: Double?
    /// Why authority was judged lost (for the event).
    public private(set) var reason: String?
    /// What the setpoint needs, when the cap was set.
    private var capBase: Double?

    public init() {}

    public var isLost: Bool { ceiling != nil }

    /// What changed this tick.
    public enum Change: Equatable { case lost(ceiling: Double, reason: String), regained }

    /// One regulating tick.
    /// - Parameters:
    ///   - output: the output applied last tick; `atUpperLimit`: it was held by its limit.
    ///   - modelGain: output units per MPa from the static model (nil: unknown).
    ///   - modelOutput: the model's output for `target` (nil: unknown).
    public mutating func update(now: Double, dt: Double, target: Double, pressure: Double, band: Double,
                                output: Double, atUpperLimit: Bool, modelGain: Double?, modelOutput: Double?,
                                outputMax: Double, play: Double = 0, settled: Bool = true) -> Change? {
        if let h = holding, h.target != target { holding = nil }
        let low = pressure < target * (1 - band)
        let inBand = Band.contains(pressure, target: target, band: band)
        if inBand {
            let a = dt > 0 ? min(1, dt / Self.holdingTimeConstant) : 0
            holding = (target, holding.map { $0.output + a * (output - $0.output) } ?? output)
        }
        guard low else {
            reference = nil; evidenceSince = nil
            if ceiling != nil, pressure >= target * (1 - band) {
                ceiling = nil; reason = nil
                return .regained
            }
            return nil
        }
        if ceiling != nil {
            if let needed = capBase, let g = modelGain {
                ceiling = min(needed + (target - pressure <= play ? max(0.5 * band * target, 2 * play) : 0.5 * band * target) * g, outputMax)
            }
            return nil
        }
        let ref = reference ?? (output, pressure)
        reference = ref
        var evidence: String?
        var needs = Self.evidenceTime
        if atUpperLimit && output >= outputMax - 1e-9 * max(1, abs(outputMax)) {
            // Also on the way to a new setpoint (no air when the run starts).
            evidence = "output at its limit (\(fmt3(output)))"
        } else if settled, let g = modelGain, g > 0 {
            // Only after the pressure has settled at this target: on the way there a
            // screw closing its gap to the stack moves without effect, rightly.
            let expected = (output - ref.output) / g
            if expected > max(2 * band * target, play) && pressure - ref.pressure < 0.25 * expected {
                evidence = "output moved \(fmt3(output - ref.output)) (≈ \(fmt3(expected)) MPa by the model), the pressure \(fmt3(pressure - ref.pressure)) MPa"
                needs = Self.noEffectTime
            }
        }
        guard let evidence else { evidenceSince = nil; return nil }
        let since = evidenceSince ?? now
        evidenceSince = since
        guard now - since >= needs else { return nil }
        let needed = holding?.output ?? modelOutput
        guard let needed else { return nil }
        let gain = modelGain ?? 0
        let cap = min(needed + (target - pressure <= play ? max(0.5 * band * target, 2 * play) : 0.5 * band * target) * gain, outputMax)
        capBase = needed
        ceiling = cap
        reason = evidence
        return .lost(ceiling: cap, reason: evidence)
    }

    /// Forget everything (a new target, leaving regulation).
    public mutating func reset() { reference = nil; evidenceSince = nil; ceiling = nil; reason = nil; capBase = nil }
}

/// One time the regulated pressure left its band: when, how far, and the likely cause.
public struct ExcursionRecord: Sendable, Equatable, Codable {
    /// Monotonic start and end, s (`end` nil while it lasts).
    public var start: Double
    public var end: Double?
    /// The setpoint it was judged against, MPa.
    public var setpoint: Double
    /// Pressure − setpoint at the worst moment, MPa (negative: below).
    public var worstError: Double
    /// The likely cause.
    public var kind: ExcursionCause
    /// `kind`'s wire spelling: `fault`, `saturation`, `setpoint_change`, `disturbance` or `injected`.
    public var cause: String { kind.rawValue }

    public var duration: Double? { end.map { $0 - start } }

    public init(start: Double, end: Double?, setpoint: Double, worstError: Double, kind: ExcursionCause) {
        self.start = start; self.end = end; self.setpoint = setpoint; self.worstError = worstError; self.kind = kind
    }

    /// The persisted form keeps the key `cause`.
    private enum CodingKeys: String, CodingKey { case start, end, setpoint, worstError, kind = "cause" }
}

/// The likely cause of an excursion out of the band. The raw values are the wire and
/// run-log spelling.
public enum ExcursionCause: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// A fault fired during it.
    case fault
    /// The actuator ran out of authority.
    case saturation
    /// The setpoint moved during it.
    case setpointChange = "setpoint_change"
    /// None of these: breathing, creep, temperature.
    case disturbance
    /// The reading was deliberately altered (a simulated sensor bias or gain): the
    /// excursion is the injection's, not the cell's; statistics leave it out.
    case injected

    public var description: String { rawValue }
}

/// Counts excursions of one channel since the daemon started: every one, also those too
/// brief and shallow to be recorded as events.
public struct ExcursionStats: Sendable, Equatable, Codable {
    public var count = 0
    /// Of `count`, those too brief and shallow to be an event (not recorded one by one).
    public var brief = 0
    /// Seconds out of band in finished excursions.
    public var timeOutOfBand = 0.0
    public var longest = 0.0
    /// The largest |pressure − setpoint| seen, MPa.
    public var worstAbsError = 0.0
    public init() {}

    mutating func add(_ r: ExcursionRecord, recorded: Bool = true) {
        count += 1
        if !recorded { brief += 1 }
        let d = r.duration ?? 0
        timeOutOfBand += d
        longest = max(longest, d)
        worstAbsError = max(worstAbsError, abs(r.worstError))
    }

    /// `brief` was added later: records persisted before it decode with 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        brief = try c.decodeIfPresent(Int.self, forKey: .brief) ?? 0
        timeOutOfBand = try c.decode(Double.self, forKey: .timeOutOfBand)
        longest = try c.decode(Double.self, forKey: .longest)
        worstAbsError = try c.decode(Double.self, forKey: .worstAbsError)
    }
}
