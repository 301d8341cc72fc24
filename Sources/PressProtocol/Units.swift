/// Units a setpoint may be given in. Pressures are stack pressures on the cell; forces
/// are converted through the channel's active cell area (1 MPa on 1 cm² is 100 N).
public enum SetpointUnit: String, CaseIterable, Sendable {
    case pa = "Pa", kpa = "kPa", mpa = "MPa", bar, psi
    case newton = "N", kilonewton = "kN"

    /// Exact SI spelling only: `mPa` is a millipascal and `MPa` a megapascal, a factor of
    /// 10⁹ apart, so a unit is never guessed from its letters' case.
    public init?(exactly text: String) {
        guard let u = Self.allCases.first(where: { $0.rawValue == text }) else { return nil }
        self = u
    }

    /// Parses a unit, or says what was meant: `mpa` → "did you mean MPa?", `mPa` →
    /// "mPa is a millipascal; did you mean MPa?".
    public static func parse(_ text: String) throws(QuantityError) -> SetpointUnit {
        if let u = SetpointUnit(exactly: text) { return u }
        if let u = allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) { throw .wrongCase(text, meant: u) }
        throw .unknownUnit(text)
    }

    public var isForce: Bool { self == .newton || self == .kilonewton }

    /// Converts `value` in this unit to MPa of stack pressure on a cell of `area` cm².
    /// Forces use the same 100 N per MPa·cm² as `PressCore.StackUnits` (this target is
    /// the client's and imports Foundation only; `UnitsAgreementTests` checks they agree).
    public func toMPa(_ value: Double, cellArea area: Double) -> Double {
        switch self {
        case .pa: return value / 1e6
        case .kpa: return value / 1e3
        case .mpa: return value
        case .bar: return value / 10
        case .psi: return value * 0.006_894_757_293_168
        case .newton: return value / (area * 100)
        case .kilonewton: return value * 1000 / (area * 100)
        }
    }
}

/// A number with a unit, as typed by a technician: `5MPa`, `5 MPa`, `2.5bar`, `500N`.
public struct Quantity: Equatable, Sendable {
    public var value: Double
    public var unit: SetpointUnit

    public init(value: Double, unit: SetpointUnit) { self.value = value; self.unit = unit }

    /// Parses `text`; the error names what was wrong.
    public init(parsing text: String) throws(QuantityError) {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let split = t.firstIndex(where: { $0.isLetter && $0 != "e" && $0 != "E" }) ?? t.lastIndex(where: { $0.isLetter }) else {
            throw .missingUnit(text)
        }
        let number = t[..<split].trimmingCharacters(in: .whitespaces)
        let unitText = t[split...].trimmingCharacters(in: .whitespaces)
        guard let v = Double(number), v.isFinite else {
            if number.contains(","), let d = Double(number.replacingOccurrences(of: ",", with: ".")), d.isFinite {
                throw .decimalComma(text, suggestion: number.replacingOccurrences(of: ",", with: ".") + unitText)
            }
            throw .badNumber(text)
        }
        self.value = v; self.unit = try SetpointUnit.parse(unitText)
    }
}

extension Quantity {
    /// A pressure given to one of pressctl's options (`sweep --from`, `tune --excursion`,
    /// `run set --preparation-pressure`, …), in MPa: with a unit as `set` takes it — a
    /// force converted through `cellArea` (cm²), refused where there is none (a
    /// preparation or supply pressure) — or a bare number in MPa, the option's own unit.
    public static func pressureMPa(parsing text: String, cellArea: Double?) throws(QuantityError) -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let v = Double(t), v.isFinite { return v }
        let q = try Quantity(parsing: t)
        guard !q.unit.isForce else {
            guard let area = cellArea, area > 0 else { throw .forceNotPressure(text) }
            return q.unit.toMPa(q.value, cellArea: area)
        }
        return q.unit.toMPa(q.value, cellArea: 1)
    }

    /// A ramp rate in MPa/s: a pressure unit per second or per minute (`0.5MPa/s`,
    /// `5bar/s`, `6MPa/min`), or a bare number in MPa/s.
    public static func rateMPaPerS(parsing text: String) throws(QuantityError) -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let v = Double(t), v.isFinite { return v }
        for (suffix, seconds) in [("/s", 1.0), ("/min", 60.0)] where t.hasSuffix(suffix) {
            return try pressureMPa(parsing: String(t.dropLast(suffix.count)), cellArea: nil) / seconds
        }
        throw .notARate(text)
    }
}

public enum QuantityError: Error, Equatable, CustomStringConvertible {
    case missingUnit(String), badNumber(String), unknownUnit(String)
    /// A force (`500N`) where only a pressure makes sense (no cell area applies).
    case forceNotPressure(String)
    /// Not a rate: a pressure per second or minute (`0.5MPa/s`, `6MPa/min`).
    case notARate(String)
    /// The right letters in the wrong case (`mpa`, `KN`), with the unit meant.
    case wrongCase(String, meant: SetpointUnit)
    /// `5,0MPa`: a decimal comma, with the same value written with a point.
    case decimalComma(String, suggestion: String)
    public var description: String {
        let units = SetpointUnit.allCases.map(\.rawValue).joined(separator: ", ")
        switch self {
        case .missingUnit(let t): return "'\(t)' has no unit; write e.g. 5MPa (units: \(units))"
        case .badNumber(let t): return "'\(t)' does not start with a number"
        case .unknownUnit(let u): return "unknown unit '\(u)' (units, case-sensitive: \(units))"
        case .wrongCase(let u, let meant):
            let milli = u == "mPa" ? " ('mPa' is a millipascal)" : ""
            return "unknown unit '\(u)': units are case-sensitive\(milli); did you mean \(meant.rawValue)?"
        case .decimalComma(let t, let s): return "'\(t)' uses a decimal comma; write \(s)"
        case .forceNotPressure(let t): return "'\(t)' is a force; this takes a pressure (MPa, kPa, Pa, bar, psi; a bare number is MPa)"
        case .notARate(let t): return "'\(t)' is not a rate: write e.g. 0.5MPa/s, 5bar/s or 6MPa/min (a bare number is MPa/s)"
        }
    }
}

import Foundation
