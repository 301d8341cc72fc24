import Foundation

/// One socket method, as the protocol defines it: everything the request decoder, the
/// authorisation, the audit trail, `hello`'s method list and the documentation check
/// know about it, in one row of ``MethodTable``.
///
/// Adding a method: its parameter type (Messages.swift), a ``Command`` case, one row
/// here, one handler in the daemon, one section in `docs/protocol.md` (a test checks
/// that every row is documented).
public struct MethodSpec: Sendable {
    /// The wire name, e.g. `program_start`.
    public let name: String
    /// The least role that may call it.
    public let role: Role
    /// State-changing: every call (and every refusal) goes to the run log's audit trail
    /// with the peer's uid and pid.
    public let audited: Bool
    /// Parameter keys accepted, snake_case as on the wire; any other key is refused.
    public let parameters: Set<String>
    /// Builds the typed command from the request's `{"params": …}` object.
    let build: @Sendable (Data) throws -> Command

    /// A method with typed parameters `P`.
    static func row<P: Decodable>(_ name: String, _ role: Role, audited: Bool = false, _ parameters: Set<String>,
                                  _ make: @escaping @Sendable (P) -> Command) -> MethodSpec {
        MethodSpec(name: name, role: role, audited: audited, parameters: parameters) { data in
            make(try ControlProtocol.decoder().decode(ParamsOnly<P>.self, from: data).params)
        }
    }

    /// A method without parameters.
    static func row(_ name: String, _ role: Role, audited: Bool = false, _ command: Command) -> MethodSpec {
        MethodSpec(name: name, role: role, audited: audited, parameters: []) { _ in command }
    }
}

/// Every method of protocol version 1, in the order `hello` lists them.
public enum MethodTable {
    static let channel: Set<String> = ["channel"]
    static let span: Set<String> = ["since", "until", "channel"]

    public static let all: [MethodSpec] = [
        .row("hello", .observer, .hello),
        .row("status", .observer, channel, Command.status),
        .row("set", .operator, audited: true, ["channel", "value", "unit", "ramp_mpa_per_s"], Command.set),
        .row("hold", .operator, audited: true, channel, Command.hold),
        .row("release", .operator, audited: true, channel, Command.release),
        .row("gap", .operator, audited: true, ["channel", "thickness_um"], Command.gap),
        .row("ack", .operator, audited: true, channel, Command.ack),
        .row("subscribe", .observer, ["channels", "rate_hz"], Command.subscribe),
        .row("unsubscribe", .observer, ["subscription"], Command.unsubscribe),
        .row("program_start", .operator, audited: true, ["channel", "program", "source"], Command.programStart),
        .row("program_pause", .operator, audited: true, channel, Command.programPause),
        .row("program_resume", .operator, audited: true, channel, Command.programResume),
        .row("program_stop", .operator, audited: true, channel, Command.programStop),
        .row("program_status", .observer, channel, Command.programStatus),
        .row("log_export", .observer, span, Command.logExport),
        .row("log_events", .observer, span, Command.logEvents),
        .row("run_set", .operator, audited: true, ["channel", "metadata", "clear"], Command.runSet),
        .row("run_get", .observer, channel, Command.runGet),
        .row("calibrate", .admin, audited: true, ["channel", "action", "value", "unit", "cell"], Command.calibrate),
        .row("tune", .admin, audited: true, ["channel", "action", "rule", "excursion_mpa", "cycles", "timeout_s"], Command.tune),
        .row("sweep", .admin, audited: true, ["channel", "action", "from_mpa", "to_mpa", "steps", "dwell_s", "return_mpa", "min_measurements", "measurement_timeout_s",
                                                   "direction", "protocol", "margin", "growth_threshold_per_h"], Command.sweep),
        .row("supervisor", .operator, audited: true, ["channel", "action"], Command.supervisor),
        .row("sweeps", .observer, span, Command.sweeps),
        .row("push_signals", .operator, ["channel", "interfacial_resistance_ohm_cm2", "temperature_c", "current_ma", "voltage_v", "acquired_at", "signals"], Command.pushSignals),
        .row("reload", .admin, audited: true, .reload),
        .row("sim_inject", .admin, audited: true, ["channel", "force_bias_n", "force_gain", "sensor_disconnected", "ambient_c", "supply_mpa",
                                                  "current_ma", "cycle_period_s", "thickness_step_um", "stall_s", "emergency_stop", "charging", "short_ohm"],
             Command.simInject),
    ]

    /// The rows by wire name.
    public static let byName: [String: MethodSpec] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
