import Foundation

/// A request, decoded and checked: the method and its typed parameters.
public enum Command: Sendable {
    case hello
    case status(OptionalChannelParams)
    case set(SetParams)
    case hold(ChannelParams)
    case release(ChannelParams)
    /// Constant-gap mode: hold the stack thickness.
    case gap(GapParams)
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
        case .gap(let p): return p.channel
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
    /// Reload, simulator injection, calibration, autotune and sweeps.
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

    /// Parameter keys each method accepts (snake_case, as on the wire); from ``MethodTable``.
    public static let parameterKeys: [String: Set<String>] = MethodTable.byName.mapValues(\.parameters)
    static let metadataKeys = Set(RunMetadataInfo.fieldNames)

    /// The role a method needs; from ``MethodTable`` (unknown methods: operator, never reached).
    public static func role(for method: String) -> Role { MethodTable.byName[method]?.role ?? .operator }

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
        guard let spec = MethodTable.byName[method] else {
            return (id, method, .failure(ErrorBody(.unknownMethod, "unknown method '\(method.prefix(64))' (methods: \(ControlProtocol.methods.joined(separator: ", ")))")))
        }
        var params: [String: Any] = [:]
        if let p = obj["params"], !(p is NSNull) {
            guard let d = p as? [String: Any] else {
                return (id, method, .failure(ErrorBody(.invalidParams, "\(method): \"params\" must be an object")))
            }
            params = d
        }
        if let bad = params.keys.sorted().first(where: { !spec.parameters.contains($0) }) {
            let list = spec.parameters.isEmpty ? "none" : spec.parameters.sorted().joined(separator: ", ")
            return (id, method, .failure(ErrorBody(.invalidParams, "\(method): unknown parameter '\(bad.prefix(64))' (accepted: \(list))")))
        }
        if method == "run_set", let m = params["metadata"] as? [String: Any],
           let bad = m.keys.sorted().first(where: { !Self.metadataKeys.contains($0) }) {
            return (id, method, .failure(ErrorBody(.invalidParams, "run_set: unknown metadata field '\(bad.prefix(64))' (accepted: \(Self.metadataKeys.sorted().joined(separator: ", ")))")))
        }
        if method == "run_set", let e = Self.runSetClearError(params) { return (id, method, .failure(e)) }
        let data = (try? JSONSerialization.data(withJSONObject: ["params": params])) ?? Data("{\"params\":{}}".utf8)
        do {
            return (id, method, .success(try spec.build(data)))
        } catch {
            return (id, method, .failure(ErrorBody(.invalidParams, "\(method): \(describeDecodingError(error))")))
        }
    }
}

extension RequestDecoder {
    /// `run_set`'s `clear`: known field names, none also given in `metadata`, and
    /// something to change at all.
    static func runSetClearError(_ params: [String: Any]) -> ErrorBody? {
        let given = Set((params["metadata"] as? [String: Any])?.keys.map { $0 } ?? [])
        guard let raw = params["clear"] else {
            return given.isEmpty ? ErrorBody(.invalidParams, "run_set: nothing to change: give metadata fields to set or 'clear' with fields to clear") : nil
        }
        guard let names = raw as? [String] else { return ErrorBody(.invalidParams, "run_set: 'clear' must be a list of field names") }
        let accepted = RunMetadataInfo.fieldNames.joined(separator: ", ")
        if let bad = names.first(where: { !metadataKeys.contains($0) }) {
            return ErrorBody(.invalidParams, "run_set: clear: unknown field '\(bad.prefix(64))' (accepted: \(accepted))")
        }
        if let both = names.first(where: given.contains) {
            return ErrorBody(.invalidParams, "run_set: '\(both)' is both given in metadata and named in clear")
        }
        if names.isEmpty && given.isEmpty { return ErrorBody(.invalidParams, "run_set: nothing to change: give metadata fields to set or 'clear' with fields to clear") }
        return nil
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
