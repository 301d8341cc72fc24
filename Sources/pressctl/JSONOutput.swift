import Foundation
import PressProtocol

/// What `pressctl --json` prints: one envelope for every command, `{"ok": ANSWER}` or
/// `{"error": {"code", "message"}}` (see docs/pressctl.md#json-output), with numbers
/// rounded to the resolution of what they measure (`JSONOutput.decimals(forKey:)`).
enum JSONOutput {
    /// The envelope around an answer, pretty-printed with sorted keys.
    static func ok<T: Encodable>(_ answer: T, pretty: Bool = true) -> String {
        render(.object(["ok": value(of: answer)]), pretty: pretty)
    }

    /// The envelope around an error.
    static func error(code: String, message: String) -> String {
        render(.object(["error": .object(["code": .string(code), "message": .string(message)])]), pretty: false)
    }

    /// `answer` as a JSON value, numbers rounded by their key.
    static func value<T: Encodable>(of answer: T) -> JSONValue {
        let data = (try? ControlProtocol.encoder().encode(answer)) ?? Data("null".utf8)
        let v = (try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .null
        return v.rounded(key: nil)
    }

    static func render(_ v: JSONValue, pretty: Bool) -> String {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(v)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// Decimals kept for a number under `key`: the resolution of what it measures, so
    /// that 0.0019999999999997797 MPa prints 0.002 and a force 1234.5678 N prints
    /// 1234.57. Nil: six significant digits (gains, ratios, counts with fractions).
    static func decimals(forKey key: String?) -> Int? {
        guard let key else { return nil }
        let suffixes: [(String, Int)] = [
            ("_mpa", 4), ("_mpa_per_s", 5), ("_per_h", 4), ("_n", 2), ("_um", 2), ("_mm", 4),
            ("_s", 3), ("_unix", 3), ("_c", 2), ("_ohm_cm2", 3), ("_ohm", 4), ("_hz", 3), ("_us", 1), ("_v", 4), ("_ma", 3),
            ("_cm2", 4), ("_ma_per_cm2", 4),
        ]
        // The longest matching suffix decides (`_mpa_per_s` before `_s`).
        return suffixes.filter { key.hasSuffix($0.0) }.max { $0.0.count < $1.0.count }?.1
    }
}

/// A JSON document, for reshaping and rounding answers before they are printed.
enum JSONValue: Codable, Equatable {
    case null, bool(Bool), int(Int), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Numbers rounded by the key they sit under (an array's elements by the array's).
    func rounded(key: String?) -> JSONValue {
        switch self {
        case .number(let d): return .number(JSONValue.round(d, decimals: JSONOutput.decimals(forKey: key)))
        case .array(let a): return .array(a.map { $0.rounded(key: key) })
        case .object(let o): return .object(Dictionary(uniqueKeysWithValues: o.map { ($0.key, $0.value.rounded(key: $0.key)) }))
        default: return self
        }
    }

    /// `d` to `decimals` places, or to six significant digits.
    static func round(_ d: Double, decimals: Int?) -> Double {
        guard d.isFinite, d != 0 else { return d }
        let places = decimals ?? max(0, 5 - Int(floor(log10(abs(d)))))
        guard places < 15 else { return d }
        let scale = pow(10, Double(places))
        let r = (d * scale).rounded() / scale
        return r.isFinite ? r : d
    }
}

/// `text` safe to print on a terminal: control characters (ESC, BEL, CR, …, C1) and the
/// bidirectional overrides and isolates that reorder a line are shown as `\u{1B}`-style
/// escapes. Text that came from other people — audited requests, program names, cell
/// ids — is printed through this, so that it cannot clear a screen or fake a line.
func safe(_ text: String) -> String { TextSafety.escaped(text) }
