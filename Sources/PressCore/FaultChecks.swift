/// A fault code: a stable string in the socket protocol, the logs and the run log. Each
/// code is declared by the check that raises it (``FaultChecks/kinds`` lists them all).
public struct FaultCode: RawRepresentable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    init(_ raw: String) { rawValue = raw }

    public var description: String { rawValue }
    public static func < (a: FaultCode, b: FaultCode) -> Bool { a.rawValue < b.rawValue }

    /// Every code a check can raise, and the daemon's own (``restoredStateStale``).
    public static var allCases: [FaultCode] { FaultChecks.kinds.map(\.code) }
    /// What the code is (nil: not one of ours, e.g. a record from a newer version).
    public var kind: FaultKind? { FaultChecks.kinds.first { $0.code == self } }
    /// Alarms latch and are reported but take no safe action.
    public var isAlarmOnly: Bool { kind?.alarmOnly ?? false }
    /// Faults whose cause clears on its own (a bus hiccup, a transmitter that answers
    /// again): once the signal has been good for the sensor's `recoverAfter`, the channel
    /// resumes by itself, within a budget. Everything else stays latched until an
    /// operator acknowledges it.
    public var isRecoverable: Bool { kind?.recoverable ?? false }
    /// The measurement itself is in doubt: a safe action cannot ramp on it.
    public var isSensorFault: Bool { kind?.sensor ?? false }

    /// After a restart, the restored state (setpoint, latched faults) may be older than
    /// what the daemon last did: the state file had stopped being written. The channel
    /// comes up holding; an operator checks and acknowledges.
    public static let restoredStateStale = FaultCode("restored_state_stale")
}

/// What kind of fault a code is.
public struct FaultKind: Sendable, Equatable {
    public let code: FaultCode
    public var alarmOnly = false
    public var recoverable = false
    /// A fault of the force measurement (a safe action then holds: it cannot ramp).
    public var sensor = false
    /// The safe action when the code has no check of its own to say (a restored record).
    public var defaultAction: SafeAction = .hold
}

/// What a check found on this tick: the code, its safe action, and how to say it. The
/// words are built only when the fault fires (never on the control thread every tick).
public struct FaultCondition: Sendable {
    public let code: FaultCode
    public let action: SafeAction
    /// Where a hold should leave the output, when the check knows better than "where it
    /// is" (a channel that cannot reach its setpoint goes back to what last held it).
    public var holdOutput: Double?
    let describe: @Sendable () -> String
    public init(_ code: FaultCode, action: SafeAction, holdOutput: Double? = nil, _ describe: @escaping @Sendable () -> String) {
        self.code = code; self.action = action; self.holdOutput = holdOutput; self.describe = describe
    }
    public var message: String { describe() }
}

/// What every check sees on a tick.
public struct CheckInput: Sendable {
    public let now: Double
    public let readings: ChannelReadings
    public let parameters: ChannelParameters
    public let mode: ChannelMode
    public let target: Double?
    /// The output applied last tick, whether a limit held it, and what the control law's
    /// model says the target needs (nil: no model).
    public let output: Double
    public let outputSaturated: Bool
    public let neededOutput: Double?
    /// The last valid pressure before this tick, MPa.
    public let lastPressure: Double?
    /// The codes latched now.
    public let latched: Set<FaultCode>
    /// This tick's pressure to regulate on: set by the sensor checks (nil: no valid, fresh,
    /// plausible force sample), read by the rest.
    public var pressure: Double?
    /// The force reading is stale (for status).
    public var stale = false
}

/// One fault check: it owns its settings and memory and reports the conditions present on
/// this tick. A new check is a type conforming to this, a row in ``FaultChecks/factory``
/// and its configuration keys.
public protocol FaultCheck: Sendable {
    mutating func judge(_ input: inout CheckInput, into present: inout [FaultCode: FaultCondition])
    /// The configuration changed (reload).
    mutating func reconfigure(_ p: ChannelParameters)
    /// These codes were acknowledged and cleared.
    mutating func acknowledged(_ cleared: [FaultCode])
    /// A fault fired and its safe action was taken.
    mutating func tripped()
}

extension FaultCheck {
    public mutating func reconfigure(_ p: ChannelParameters) {}
    public mutating func acknowledged(_ cleared: [FaultCode]) {}
    public mutating func tripped() {}
}

/// The channel's fault checks, in the order they judge a tick (the sensor first: the
/// others judge the pressure it accepts).
public struct FaultChecks: Sendable {
    private var checks: [any FaultCheck]

    /// Every check type: the codes it raises, and how a channel's parameters make it
    /// (nil: not configured on this channel).
    static let factory: [(kinds: [FaultKind], make: @Sendable (ChannelParameters) -> (any FaultCheck)?)] = [
        (SensorCheck.kinds, { SensorCheck($0) }),
        (FrozenTransmitterCheck.kinds, { FrozenTransmitterCheck($0) }),
        (FastFrozenCheck.kinds, { FastFrozenCheck($0) }),
        (OverPressureCheck.kinds, { OverPressureCheck($0) }),
        (OverTemperatureCheck.kinds, { OverTemperatureCheck($0) }),
        (SoftShortCheck.kinds, { SoftShortCheck($0) }),
        (DigitalInputCheck.kinds, { DigitalInputCheck($0) }),
        (NonUniformLoadCheck.kinds, { NonUniformLoadCheck($0) }),
        (SaturationCheck.kinds, { SaturationCheck($0) }),
    ]

    /// Every code, and what kind of fault it is.
    public static let kinds: [FaultKind] = {
        var seen = Set<FaultCode>(), out: [FaultKind] = []
        for k in factory.flatMap(\.kinds) + [FaultKind(code: .restoredStateStale)] where seen.insert(k.code).inserted { out.append(k) }
        return out
    }()

    public init(_ p: ChannelParameters) { checks = Self.factory.compactMap { $0.make(p) } }

    /// Judges one tick: the conditions present, and the pressure in `input`.
    public mutating func judge(_ input: inout CheckInput) -> [FaultCode: FaultCondition] {
        var present: [FaultCode: FaultCondition] = [:]
        for i in checks.indices { checks[i].judge(&input, into: &present) }
        return present
    }

    /// A reload: checks keep their memory; a check now configured or no longer
    /// configured is added or dropped.
    public mutating func reconfigure(_ p: ChannelParameters) {
        var next: [any FaultCheck] = []
        for row in Self.factory {
            guard let fresh = row.make(p) else { continue }
            if var old = checks.first(where: { type(of: $0) == type(of: fresh) }) {
                old.reconfigure(p)
                next.append(old)
            } else {
                next.append(fresh)
            }
        }
        checks = next
    }

    /// The channel's check of type `T`, if configured (tests and status read its settings).
    func first<T: FaultCheck>(_: T.Type) -> T? { checks.lazy.compactMap { $0 as? T }.first }

    public mutating func acknowledged(_ cleared: [FaultCode]) { for i in checks.indices { checks[i].acknowledged(cleared) } }
    public mutating func tripped() { for i in checks.indices { checks[i].tripped() } }
}
