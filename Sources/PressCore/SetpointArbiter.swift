/// Who decides a channel's setpoint.
///
/// The raw values are the names the event stream and the run log use.
public enum SetpointOwner: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// The operator's `set` (also: nobody has asked for anything yet).
    case `operator`
    /// The impedance-aware supervisor, when enabled and unlocked. It moves the setpoint
    /// only while nothing else owns it.
    case supervisor
    /// Regulation resuming at the target saved before a restart, on the first valid
    /// measurement.
    case resume
    /// A running or paused pressure program.
    case program
    /// A critical-stack-pressure sweep.
    case sweep
    /// A relay autotune experiment.
    case autotune
    /// A fault's `ramp` safe action, taking the pressure to the safe pressure.
    case safety

    public var description: String { rawValue }

    /// The owners that run a task of their own and end by themselves (at most one at a
    /// time); the others are the fallback (operator, supervisor) and the safety override.
    /// A new task owner needs only this and a row and column in
    /// ``SetpointArbiter/rule(for:over:)``.
    public var isTask: Bool {
        switch self {
        case .resume, .program, .sweep, .autotune: return true
        case .operator, .supervisor, .safety: return false
        }
    }
}

/// Why a request for the setpoint was refused.
public enum SetpointRefusal: Error, Sendable, Equatable {
    /// The channel is tripped and a safe action owns the setpoint.
    case safetyActive
    /// The requester is already running (a second autotune, a second sweep).
    case alreadyRunning(SetpointOwner)
    /// Another task owns the setpoint; it must end or be stopped first.
    case heldBy(SetpointOwner)

    /// The text a refused command reports (the channel turns `safetyActive` into
    /// `CommandRejection.faultLatched` with the latched codes instead).
    public var message: String {
        switch self {
        case .safetyActive: return "a safe action owns the setpoint; acknowledge the faults first"
        case .alreadyRunning(.autotune): return "an autotune is already running; cancel it first to start another"
        case .alreadyRunning(.sweep): return "a sweep is already running; cancel it first to start another"
        case .alreadyRunning(let o): return "a \(o) is already running"
        case .heldBy(.program): return "a program is loaded; stop it first"
        case .heldBy(.autotune): return "an autotune is running; cancel it first"
        case .heldBy(.sweep): return "a sweep is running; cancel it first"
        case .heldBy(.resume): return "the channel is resuming after a restart; wait for the first measurement"
        case .heldBy(let o): return "the \(o) owns the setpoint"
        }
    }
}

/// What a request for the setpoint gets.
public enum SetpointRule: Sendable, Equatable {
    /// The requester takes the setpoint now.
    case take
    /// The requester becomes the fallback owner: it takes over when the present owner
    /// ends (the supervisor unlocked while a program runs).
    case wait
    case refuse(SetpointRefusal)
}

/// One change of setpoint owner: who took over from whom.
public struct SetpointHandover: Sendable, Equatable {
    public var from: SetpointOwner
    public var to: SetpointOwner
    public init(from: SetpointOwner, to: SetpointOwner) { self.from = from; self.to = to }
}

/// What a granted request did: the handover (nil when the owner stays the same) and
/// the owners whose work the requester ended. The channel stops their work (stops the
/// program, cancels the sweep or autotune, locks the supervisor, drops the resume).
public struct SetpointGrant: Sendable, Equatable {
    public var handover: SetpointHandover?
    public var ended: [SetpointOwner]
}

/// Decides who owns a channel's setpoint.
///
/// Three layers: a fallback (the operator, or the supervisor while it is unlocked), at
/// most one task on top of it (resume, program, sweep, autotune) and the safety override
/// of a `ramp` safe action. The owner is the top-most present layer. Every rule of who may
/// pre-empt whom is in ``rule(for:over:)``; a pure value, no clock.
public struct SetpointArbiter: Sendable, Equatable {
    /// The operator, or the supervisor while it is enabled and unlocked.
    public private(set) var fallback: SetpointOwner
    /// The task that owns the setpoint over the fallback, if any.
    public private(set) var task: SetpointOwner?
    /// True while a `ramp` safe action owns the setpoint.
    public private(set) var safety = false

    /// - Parameter supervisor: the supervisor is enabled and unlocked.
    public init(supervisor: Bool = false) { fallback = supervisor ? .supervisor : .operator }

    /// Who owns the setpoint now.
    public var owner: SetpointOwner { safety ? .safety : task ?? fallback }

    /// The pre-emption table: what `requester` gets while `current` owns the setpoint.
    public static func rule(for requester: SetpointOwner, over current: SetpointOwner) -> SetpointRule {
        switch (current, requester) {
        // A trip's ramp beats everything; nothing but the operator's release or
        // acknowledgement (which end it) moves it. Unlocking the supervisor only makes
        // it the fallback.
        case (_, .safety): return .take
        case (.safety, .supervisor): return .wait
        case (.safety, _): return .refuse(.safetyActive)
        // The operator's set ends whatever runs.
        case (_, .operator): return .take
        // The supervisor moves the setpoint only when nothing else owns it.
        case (.operator, .supervisor), (.supervisor, .supervisor): return .take
        case (_, .supervisor): return .wait
        // A program (an operator's command) replaces a program and ends a sweep,
        // an autotune or a pending resume.
        case (_, .program): return .take
        // Experiments need the setpoint to themselves.
        case (.autotune, .autotune), (.sweep, .sweep): return .refuse(.alreadyRunning(requester))
        case (.operator, .autotune), (.supervisor, .autotune), (.operator, .sweep), (.supervisor, .sweep): return .take
        case (.resume, .autotune), (.resume, .sweep), (.program, .autotune), (.program, .sweep),
             (.autotune, .sweep), (.sweep, .autotune): return .refuse(.heldBy(current))
        // Resuming after a restart starts from the fallback only.
        case (.operator, .resume), (.supervisor, .resume), (.resume, .resume): return .take
        case (_, .resume): return .refuse(.heldBy(current))
        }
    }

    /// What `requester` would get now.
    public func rule(for requester: SetpointOwner) -> SetpointRule { Self.rule(for: requester, over: owner) }

    /// Gives the setpoint to `requester` by the rules, or says why not.
    public mutating func request(_ requester: SetpointOwner) -> Result<SetpointGrant, SetpointRefusal> {
        let before = owner
        switch rule(for: requester) {
        case .refuse(let why): return .failure(why)
        case .wait, .take: break
        }
        var ended: [SetpointOwner] = []
        if requester.isTask {
            if let t = task, t != requester { ended.append(t) }
            task = requester
        } else if requester == .safety {
            safety = true
        } else if requester == .supervisor {
            fallback = .supervisor
        } else {
            assert(requester == .operator, "a layer the arbiter does not know: \(requester)")
            if let t = task { ended.append(t) }
            if fallback == .supervisor { ended.append(.supervisor) }
            task = nil
            fallback = .operator
        }
        return .success(SetpointGrant(handover: handover(from: before), ended: ended))
    }

    /// Puts `owner` back as it was saved before a restart (a restored program), over a
    /// pending resume: no rule applies, the saved state is taken as it was.
    public mutating func restore(_ owner: SetpointOwner) -> SetpointHandover? {
        let before = self.owner
        if owner.isTask { task = owner } else if owner == .supervisor || owner == .operator { fallback = owner }
        return handover(from: before)
    }

    /// `owner` has finished, was cancelled, stopped or (the supervisor) locked: the
    /// setpoint goes to the next layer down. Ending an owner that does not hold its
    /// layer changes nothing.
    public mutating func end(_ owner: SetpointOwner) -> SetpointHandover? {
        let before = self.owner
        if owner.isTask { if task == owner { task = nil } }
        else if owner == .safety { safety = false }
        else if owner == .supervisor, fallback == .supervisor { fallback = .operator }
        return handover(from: before)
    }

    private func handover(from before: SetpointOwner) -> SetpointHandover? {
        before == owner ? nil : SetpointHandover(from: before, to: owner)
    }
}
