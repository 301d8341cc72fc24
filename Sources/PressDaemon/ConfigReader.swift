import Foundation
import PressDrivers
import TOMLKit

/// A configuration error that names the file, the line and the key.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// Dotted key path, e.g. `channels.A.pid.kp`.
    public var key: String?
    public var message: String

    public init(file: String, line: Int?, key: String?, message: String) {
        self.file = file; self.line = line; self.key = key; self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let key { s += ": \(key)" }
        return s + ": " + message
    }
}

/// Maps dotted key paths to the line they are written on, by reading the TOML text
/// the way a person does: `[table]` headers and `key = value` lines. Good enough for
/// the flat layout pressd documents; anything it cannot place gets the line of its
/// table header, or no line.
struct KeyLocator {
    private(set) var lines: [String: Int] = [:]

    init(source: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        for (i, raw) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[[") {
                // Array of tables: the n-th [[name]] is the table name[n].
                let inner = line.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: "#").first ?? ""
                let name = Self.normalise(String(inner))
                let n = arrayCounts[name, default: 0]
                arrayCounts[name] = n + 1
                table = "\(name)[\(n)]"
                lines[table] = i + 1
                continue
            }
            if line.hasPrefix("[") {
                let inner = line.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: "#").first ?? ""
                table = Self.normalise(String(inner))
                if lines[table] == nil { lines[table] = i + 1 }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = Self.normalise(String(line[..<eq]))
            let path = table.isEmpty ? key : table + "." + key
            if lines[path] == nil { lines[path] = i + 1 }
        }
    }

    static func normalise(_ s: String) -> String {
        s.split(separator: ".").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
            .joined(separator: ".")
    }

    func line(of path: String) -> Int? {
        var p = path
        while true {
            if let l = lines[p] { return l }
            guard let dot = p.lastIndex(of: ".") else { return nil }
            p = String(p[..<dot])
        }
    }
}

/// Reads one TOML table with typed accessors, remembering which keys were used so that
/// unknown (misspelt) keys are reported instead of silently ignored.
final class TableReader {
    let table: TOMLTable
    let path: String
    let context: ReaderContext
    private var used: Set<String> = []

    init(table: TOMLTable, path: String, context: ReaderContext) {
        self.table = table; self.path = path; self.context = context
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func error(_ key: String?, _ message: String) -> ConfigError {
        let kp = key.map(keyPath) ?? (path.isEmpty ? nil : path)
        return ConfigError(file: context.file, line: kp.flatMap(context.locator.line(of:)), key: kp, message: message)
    }

    var keys: [String] { table.keys }

    func has(_ key: String) -> Bool { table[key] != nil }

    private func value(_ key: String) -> TOMLValueConvertible? {
        used.insert(key)
        return table[key]
    }

    func double(_ key: String) throws(ConfigError) -> Double? {
        guard let v = value(key) else { return nil }
        if let d = v.double { guard d.isFinite else { throw error(key, "must be a finite number") }; return d }
        if let i = v.int { return Double(i) }
        throw error(key, "must be a number, found \(v.type)")
    }

    func double(_ key: String, default d: Double) throws(ConfigError) -> Double { try double(key) ?? d }

    func requiredDouble(_ key: String) throws(ConfigError) -> Double {
        guard let d = try double(key) else { throw error(key, "is required") }
        return d
    }

    func requiredPositive(_ key: String) throws(ConfigError) -> Double {
        let v = try requiredDouble(key)
        guard v > 0 else { throw error(key, "must be > 0, found \(v)") }
        return v
    }

    func requiredNonNegative(_ key: String) throws(ConfigError) -> Double {
        let v = try requiredDouble(key)
        guard v >= 0 else { throw error(key, "must be ≥ 0, found \(v)") }
        return v
    }

    /// A number that must be > 0.
    func positive(_ key: String, default d: Double) throws(ConfigError) -> Double {
        let v = try double(key, default: d)
        guard v > 0 else { throw error(key, "must be > 0, found \(v)") }
        return v
    }

    func nonNegative(_ key: String, default d: Double) throws(ConfigError) -> Double {
        let v = try double(key, default: d)
        guard v >= 0 else { throw error(key, "must be ≥ 0, found \(v)") }
        return v
    }

    func int(_ key: String) throws(ConfigError) -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = v.int else { throw error(key, "must be an integer, found \(v.type)") }
        return i
    }

    func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.bool else { throw error(key, "must be true or false, found \(v.type)") }
        return b
    }

    func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else { throw error(key, "must be a string, found \(v.type)") }
        return s
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default d: T) throws(ConfigError) -> T where T.RawValue == String {
        guard let s = try string(key) else { return d }
        guard let v = T(rawValue: s) else {
            throw error(key, "'\(s)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    /// A GPIO line: an offset (integer) or a line name (string).
    func lineSpec(_ key: String, activeLow: Bool) throws(ConfigError) -> LineSpec? {
        guard let v = value(key) else { return nil }
        if let i = v.int { guard i >= 0 else { throw error(key, "a line offset must be ≥ 0") }; return LineSpec(offset: i, activeLow: activeLow) }
        if let n = v.string { return LineSpec(name: n, activeLow: activeLow) }
        throw error(key, "must be a line offset (integer) or a line name (string)")
    }

    func stringList(_ key: String) throws(ConfigError) -> [String]? {
        guard let v = value(key) else { return nil }
        guard let a = v.array else { throw error(key, "must be an array of strings") }
        var out: [String] = []
        for e in a {
            guard let s = e.string else { throw error(key, "must be an array of strings") }
            out.append(s)
        }
        return out
    }

    func pair(_ key: String, default d: (Double, Double)) throws(ConfigError) -> (Double, Double) {
        guard let v = value(key) else { return d }
        guard let a = v.array, a.count == 2 else { throw error(key, "must be an array of two numbers [low, high]") }
        var out: [Double] = []
        for e in a {
            if let x = e.double { out.append(x) } else if let x = e.int { out.append(Double(x)) }
            else { throw error(key, "must be an array of two numbers [low, high]") }
        }
        return (out[0], out[1])
    }

    func subtable(_ key: String) throws(ConfigError) -> TableReader? {
        guard let v = value(key) else { return nil }
        guard let t = v.table else { throw error(key, "must be a table ([\(keyPath(key))])") }
        return TableReader(table: t, path: keyPath(key), context: context)
    }

    /// An array of tables (`[[key]]`), each read with the path `key[i]`.
    func tables(_ key: String) throws(ConfigError) -> [TableReader] {
        guard let v = value(key) else { return [] }
        guard let a = v.array else { throw error(key, "must be an array of tables ([[\(keyPath(key))]])") }
        var out: [TableReader] = []
        for (i, e) in a.enumerated() {
            guard let t = e.table else { throw error(key, "element \(i) must be a table") }
            out.append(TableReader(table: t, path: "\(keyPath(key))[\(i)]", context: context))
        }
        return out
    }

    /// Reports the first key that no accessor asked for.
    func rejectUnknownKeys() throws(ConfigError) {
        for k in table.keys.sorted() where !used.contains(k) {
            throw error(k, "unknown key (misspelt?)")
        }
    }
}

/// Every key of a configuration file as a dotted path with its value written canonically:
/// what a reload compares to find the keys that changed.
struct ConfigKeys: Sendable {
    /// `channels.A.pid.kp` → `100.0`, `channels.A.load_cells[0].device` → `"plc"`. Numbers are
    /// written as decimals, so `12` and `12.0` are the same value.
    var values: [String: String] = [:]
    /// The lines the keys are written on.
    var locator = KeyLocator(source: "")

    init() {}

    init(_ table: TOMLTable, locator: KeyLocator) {
        self.locator = locator
        Self.flatten(table, prefix: "", into: &values)
    }

    private static func flatten(_ table: TOMLTable, prefix: String, into out: inout [String: String]) {
        for key in table.keys {
            guard let v = table[key] else { continue }
            let path = prefix.isEmpty ? key : prefix + "." + key
            if let t = v.table {
                flatten(t, prefix: path, into: &out)
            } else if let a = v.array, !a.isEmpty, a.allSatisfy({ $0.table != nil }) {
                for (i, e) in a.enumerated() { if let t = e.table { flatten(t, prefix: "\(path)[\(i)]", into: &out) } }
            } else {
                out[path] = canonical(v)
            }
        }
    }

    private static func canonical(_ v: TOMLValueConvertible) -> String {
        if let d = v.double { return "\(d)" }
        if let i = v.int { return "\(Double(i))" }
        if let b = v.bool { return "\(b)" }
        if let s = v.string { return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        if let a = v.array { return "[" + a.map(canonical).joined(separator: ", ") + "]" }
        return v.debugDescription
    }
}

/// Shared by all readers of one file.
struct ReaderContext {
    let file: String
    let locator: KeyLocator
}

/// Parses TOML text, turning toml++'s syntax errors into ``ConfigError``s with line.
func parseTOML(_ text: String, file: String) throws(ConfigError) -> TableReader {
    let table: TOMLTable
    do { table = try TOMLTable(string: text) }
    catch let e as TOMLParseError {
        throw ConfigError(file: file, line: e.source.begin.line, key: nil, message: "TOML syntax: \(e.description)")
    } catch {
        throw ConfigError(file: file, line: nil, key: nil, message: "TOML syntax: \(error)")
    }
    return TableReader(table: table, path: "", context: ReaderContext(file: file, locator: KeyLocator(source: text)))
}
