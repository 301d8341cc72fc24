/// Units a setpoint may be given in. Pressures are stack pressures on the cell; forces
/// are converted through the channel's active cell area (1 MPa on 1 cm² is 100 N).
public enum SetpointUnit: String, CaseIterable, Sendable {
    case pa = "Pa", kpa = "kPa", mpa = "MPa", bar, psi
    case newton = "N", kilonewton = "kN"

    /// Case-insensitive lookup (`mpa`, `MPA` and `MPa` all work).
    public init?(lenient text: String) {
        guard let u = Self.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else { return nil }
        self = u
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
        guard let v = Double(number), v.isFinite else { throw .badNumber(text) }
        guard let u = SetpointUnit(lenient: unitText) else { throw .unknownUnit(unitText) }
        self.value = v; self.unit = u
    }
}

public enum QuantityError: Error, Equatable, CustomStringConvertible {
    case missingUnit(String), badNumber(String), unknownUnit(String)
    public var description: String {
        let units = SetpointUnit.allCases.map(\.rawValue).joined(separator: ", ")
        switch self {
        case .missingUnit(let t): return "'\(t)' has no unit; write e.g. 5MPa (units: \(units))"
        case .badNumber(let t): return "'\(t)' does not start with a number"
        case .unknownUnit(let u): return "unknown unit '\(u)' (units: \(units))"
        }
    }
}

import Foundation
