import Foundation

/// A request, decoded and checked: the method and its typed parameters.
public enum Command: Sendable {
    case hello
    case status(OptionalChannelParams)
    case set(SetParams)
    case hold(ChannelParams)
    case release(ChannelParams)
    case ack(OptionalChannelParams)
    case subscribe(SubscribeParams)
    case unsubscribe(UnsubscribeParams)
    case programStart(ProgramStartParams)
    case programPause(ChannelParams)
    case programResume(ChannelParams)
    case programStop(ChannelParams)
    case programStatus(OptionalChannelParams)
    case logExport(LogExportParams)
    case logEvents(LogExportParams)
    case runSet(RunSetParams)
    case runGet(ChannelParams)
    case reload
    case calibrate(CalibrateParams)
    case tune(TuneParams)
    case sweep(SweepParams)
    case supervisor(SupervisorParams)
    case sweeps(LogExportParams)
    case pushSignals(PushSignalsParams)
    case simInject(SimInjectParams)

    /// The channel a command names, if any (for the audit trail).
    public var channel: String? {
        switch self {
        case .status(let p), .ack(let p), .programStatus(let p): return p.channel
        case .set(let p): return p.channel
        case .hold(let p), .release(let p), .programPause(let p), .programResume(let p), .programStop(let p), .runGet(let p): return p.channel
        case .programStart(let p): return p.channel
        case .logExport(let p), .logEvents(let p): return p.channel
        case .runSet(let p): return p.channel
        case .simInject(let p): return p.channel
        case .calibrate(let p): return p.channel
        case .tune(let p): return p.channel
        case .sweep(let p): return p.channel
        case .supervisor(let p): return p.channel
        case .sweeps(let p): return p.channel
        case .pushSignals(let p): return p.channel
        case .hello, .subscribe, .unsubscribe, .reload: return nil
        }
    }
}

/// Who may call a method. Each role includes the ones below it.
public enum Role: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    /// Read and subscribe.
    case observer = 0
    /// Setpoints, programs, acknowledgements, run metadata.
    case `operator` = 1
    /// Reload, simulator injection, autotune and calibration.
    case admin = 2

    public static func < (a: Role, b: Role) -> Bool { a.rawValue < b.rawValue }
    public var description: String { ["observer", "operator", "admin"][rawValue] }
}

/// Decodes one request line into a ``Command``, refusing anything not documented in
/// `docs/protocol.md`: not JSON, not an object, unknown top-level keys, unknown
/// methods, missing, mistyped or unknown parameters. Pure and total: every input gives
/// a command or a structured error, never a crash (fuzzed in the test suite).
public struct RequestDecoder: Sendable {
    public init() {}

    /// Parameter keys each method accepts (snake_case, as on the wire).
    public static let parameterKeys: [String: Set<String>] = [
        "hello": [], "reload": [],
        "status": ["channel"], "ack": ["channel"], "program_status": ["channel"],
        "set": ["channel", "value", "unit", "ramp_mpa_per_s"],
        "hold": ["channel"], "release": ["channel"], "program_pause": ["channel"], "program_resume": ["channel"],
        "program_stop": ["channel"], "run_get": ["channel"],
        "subscribe": ["channels", "rate_hz"], "unsubscribe": ["subscription"],
        "program_start": ["channel", "program", "source"],
        "log_export": ["since", "until", "channel"], "log_events": ["since", "until", "channel"],
        "run_set": ["channel", "metadata"],
        "calibrate": ["channel", "action", "value", "unit", "cell"],
        "tune": ["channel", "action", "rule", "excursion_mpa", "cycles", "timeout_s"],
        "sweep": ["channel", "action", "from_mpa", "to_mpa", "steps", "dwell_s", "return_mpa"],
        "supervisor": ["channel", "action"],
        "sweeps": ["since", "until", "channel"],
        "push_signals": ["channel", "interfacial_resistance_ohm_cm2", "temperature_c", "current_ma"],
        "sim_inject": ["channel", "force_bias_n", "force_gain", "sensor_disconnected", "ambient_c", "supply_mpa", "current_ma",
                       "cycle_period_s", "thickness_step_um", "stall_s", "emergency_stop", "charging"],
    ]
    static let metadataKeys: Set<String> = ["cell_id", "chemistry", "operator_note", "preparation_pressure_mpa"]

    /// The role each method needs.
    public static func role(for method: String) -> Role {
        switch method {
        case "hello", "status", "subscribe", "unsubscribe", "program_status", "log_export", "log_events", "run_get", "sweeps": return .observer
        case "reload", "sim_inject", "calibrate", "tune", "sweep": return .admin
        default: return .operator
        }
    }

    /// The id of a request, when one can be found, and its command or the error.
    public func decode(_ bytes: Data) -> (id: RequestID?, method: String?, result: Result<Command, ErrorBody>) {
        guard let any = try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed]) else {
            return (nil, nil, .failure(ErrorBody(.parseError, "not valid JSON")))
        }
        guard let obj = any as? [String: Any] else {
            return (nil, nil, .failure(ErrorBody(.invalidRequest, "a request is a JSON object with \"method\" and optional \"id\" and \"params\"")))
        }
        var id: RequestID?
        if let raw = obj["id"], !(raw is NSNull) {
            guard let probe = try? ControlProtocol.decoder().decode(IDProbe.self, from: bytes), let found = probe.id else {
                return (nil, nil, .failure(ErrorBody(.invalidRequest, "\"id\" must be an integer or a string")))
            }
            id = found
        }
        if let extra = obj.keys.sorted().first(where: { !["id", "method", "params"].contains($0) }) {
            return (id, nil, .failure(ErrorBody(.invalidRequest, "unknown field '\(extra)' (a request has id, method, params)")))
        }
        guard let method = obj["method"] as? String else {
            return (id, nil, .failure(ErrorBody(.invalidRequest, "missing \"method\" (a string)")))
        }
        guard let allowed = Self.parameterKeys[method] else {
            return (id, method, .failure(ErrorBody(.unknownMethod, "unknown method '\(method.prefix(64))' (methods: \(ControlProtocol.methods.joined(separator: ", ")))")))
        }
        var params: [String: Any] = [:]
        if let p = obj["params"], !(p is NSNull) {
            guard let d = p as? [String: Any] else {
                return (id, method, .failure(ErrorBody(.invalidParams, "\(method): \"params\" must be an object")))
            }
            params = d
        }
        if let bad = params.keys.sorted().first(where: { !allowed.contains($0) }) {
            let list = allowed.isEmpty ? "none" : allowed.sorted().joined(separator: ", ")
            return (id, method, .failure(ErrorBody(.invalidParams, "\(method): unknown parameter '\(bad.prefix(64))' (accepted: \(list))")))
        }
        if method == "run_set", let m = params["metadata"] as? [String: Any],
           let bad = m.keys.sorted().first(where: { !Self.metadataKeys.contains($0) }) {
            return (id, method, .failure(ErrorBody(.invalidParams, "run_set: unknown metadata field '\(bad.prefix(64))' (accepted: \(Self.metadataKeys.sorted().joined(separator: ", ")))")))
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["params": params])) ?? Data("{\"params\":{}}".utf8)
        do {
            return (id, method, .success(try command(method, data)))
        } catch {
            return (id, method, .failure(ErrorBody(.invalidParams, "\(method): \(describeDecodingError(error))")))
        }
    }

    private func command(_ method: String, _ data: Data) throws -> Command {
        let d = ControlProtocol.decoder()
        func p<P: Decodable>(_: P.Type) throws -> P { try d.decode(ParamsOnly<P>.self, from: data).params }
        switch method {
        case "hello": return .hello
        case "reload": return .reload
        case "status": return .status(try p(OptionalChannelParams.self))
        case "set": return .set(try p(SetParams.self))
        case "hold": return .hold(try p(ChannelParams.self))
        case "release": return .release(try p(ChannelParams.self))
        case "ack": return .ack(try p(OptionalChannelParams.self))
        case "subscribe": return .subscribe(try p(SubscribeParams.self))
        case "unsubscribe": return .unsubscribe(try p(UnsubscribeParams.self))
        case "program_start": return .programStart(try p(ProgramStartParams.self))
        case "program_pause": return .programPause(try p(ChannelParams.self))
        case "program_resume": return .programResume(try p(ChannelParams.self))
        case "program_stop": return .programStop(try p(ChannelParams.self))
        case "program_status": return .programStatus(try p(OptionalChannelParams.self))
        case "log_export": return .logExport(try p(LogExportParams.self))
        case "log_events": return .logEvents(try p(LogExportParams.self))
        case "run_set": return .runSet(try p(RunSetParams.self))
        case "run_get": return .runGet(try p(ChannelParams.self))
        case "sim_inject": return .simInject(try p(SimInjectParams.self))
        case "calibrate": return .calibrate(try p(CalibrateParams.self))
        case "tune": return .tune(try p(TuneParams.self))
        case "sweep": return .sweep(try p(SweepParams.self))
        case "supervisor": return .supervisor(try p(SupervisorParams.self))
        case "sweeps": return .sweeps(try p(LogExportParams.self))
        case "push_signals": return .pushSignals(try p(PushSignalsParams.self))
        default: throw ErrorBody(.unknownMethod, method)
        }
    }
}

/// A short, human description of a decoding error naming the key.
public func describeDecodingError(_ error: Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ c: [CodingKey]) -> String {
        let p = c.filter { $0.stringValue != "params" }.map { $0.intValue.map { "[\($0)]" } ?? snakeCase($0.stringValue) }
        return p.isEmpty ? "params" : p.joined(separator: ".")
    }
    func jsonType(_ t: Any.Type) -> String {
        switch t {
        case is Double.Type, is Int.Type, is Float.Type: return "number"
        case is String.Type: return "string"
        case is Bool.Type: return "boolean"
        default: return "\(t)"
        }
    }
    switch e {
    case .keyNotFound(let k, let ctx): return "missing key '\(path(ctx.codingPath + [k]))'"
    case .typeMismatch(let t, let ctx): return "'\(path(ctx.codingPath))' must be of type \(jsonType(t))"
    case .valueNotFound(let t, let ctx): return "'\(path(ctx.codingPath))' must be of type \(jsonType(t)), found null"
    case .dataCorrupted(let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
    @unknown default: return "\(e)"
    }
}

func snakeCase(_ s: String) -> String {
    var out = ""
    for ch in s { if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) } }
    return out
}

/// Only the id of a request.
struct IDProbe: Decodable { var id: RequestID? }
