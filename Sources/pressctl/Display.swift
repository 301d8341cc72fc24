import ArgumentParser
import Foundation
import PressProtocol

/// How pressctl shows a channel's setpoint: while a ramp is under way the setpoint in
/// force is the working one, not the target it ramps to.
extension ChannelStatus {
    /// The setpoint the loop regulates to now (regulating only): the working setpoint
    /// while ramping, else the target.
    var setpointInForce: Double? {
        guard mode == "regulating" else { return nil }
        return workingSetpointMpa ?? setpointMpa
    }

    /// The target, while the working setpoint is still on its way to it.
    var rampTarget: Double? {
        guard mode == "regulating", let w = workingSetpointMpa, let t = setpointMpa, abs(w - t) > 5e-4 else { return nil }
        return t
    }

    /// The setpoint column: the setpoint in force (an arrow while ramping), or — when not
    /// regulating.
    var setpointText: String { setpointInForce.map { f($0) + rampArrow } ?? "—" }

    /// The error column: (pressure − setpoint in force) / setpoint in force, or —.
    var errorText: String {
        guard let sp = setpointInForce, let p = pressureMpa, sp > 0 else { return "—" }
        return String(format: "%+.2f%%", (p - sp) / sp * 100)
    }

    /// `↗` or `↘` while ramping up or down, else nothing.
    var rampArrow: String {
        guard let t = rampTarget, let w = workingSetpointMpa else { return "" }
        return t > w ? "↗" : "↘"
    }
}

/// A unit as a person reads it: the wire's ASCII `um` is µm.
func displayUnit(_ wire: String) -> String { wire == "um" ? "µm" : wire }

/// A pressure option's value in MPa (see `Quantity.pressureMPa`): with a unit as `set`
/// takes it, or a bare number in MPa; the option named in an error. A force is converted
/// through the channel's cell area, read from pressd only when a force is given.
func pressureOption(_ text: String, _ option: String, area: () -> Double? = { nil }) throws -> Double {
    do { return try Quantity.pressureMPa(parsing: text, cellArea: nil) } catch QuantityError.forceNotPressure(let t) {
        guard let a = area() else { throw ValidationError("\(option): \(QuantityError.forceNotPressure(t))") }
        do { return try Quantity.pressureMPa(parsing: text, cellArea: a) } catch { throw ValidationError("\(option): \(error)") }
    } catch { throw ValidationError("\(option): \(error)") }
}

/// Checks a pressure option's spelling before connecting (a force is left to `run`, which
/// knows the channel's area).
func validatePressureOption(_ text: String?, _ option: String, forceAllowed: Bool = true) throws {
    guard let text else { return }
    do { _ = try Quantity.pressureMPa(parsing: text, cellArea: forceAllowed ? 1 : nil) } catch { throw ValidationError("\(option): \(error)") }
}

/// The cell area of channel `ch`, cm² (from `status`).
func cellArea(_ c: ControlClient, _ ch: String) -> Double? {
    call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first?.cellAreaCm2
}

/// The simulator's disturbances in words with their units, for `sim`'s answer and the
/// report's interventions: one table, keyed by the `sim_inject` parameter.
enum SimVocabulary {
    /// Words and unit of each numeric parameter.
    static let numbers: [String: (words: String, unit: String)] = [
        "force_bias_n": ("load-cell force bias", "N"), "force_gain": ("load-cell gain", "×"), "ambient_c": ("ambient", "°C"),
        "supply_mpa": ("air supply", "MPa"), "current_ma": ("cycler current", "mA"), "cycle_period_s": ("cycle period", "s"),
        "thickness_step_um": ("cell thickness step", "µm"), "stall_s": ("sensor stall", "s"), "short_ohm": ("soft short", "Ω")]
    /// Words of each switch.
    static let switches: [String: String] = ["sensor_disconnected": "load cell disconnected", "emergency_stop": "emergency stop", "charging": "charging"]

    /// A number as typed: 1600, 0.3, -400.
    static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(v) }

    /// `sim_inject`'s parameters (wire keys) in words: "load-cell force bias 1600 N, air supply 0.6 MPa".
    static func describe(_ params: [String: Any]) -> String {
        params.keys.filter { $0 != "channel" }.sorted().map { k -> String in
            if let b = params[k] as? Bool, let w = switches[k] { return "\(w) \(b ? "on" : "off")" }
            guard let v = (params[k] as? Double) ?? (params[k] as? Int).map(Double.init) else { return "\(k) \(params[k]!)" }
            guard let n = numbers[k] else { return "\(k) \(number(v))" }
            return n.unit == "×" ? "\(n.words) ×\(number(v))" : "\(n.words) \(number(v)) \(n.unit)"
        }.joined(separator: ", ")
    }
}

/// A force option's value in N: with a unit (N, kN; a pressure through the cell area,
/// read from pressd only then), or a bare number in N.
func forceOption(_ text: String, _ option: String, area: () -> Double?) throws -> Double {
    let t = text.trimmingCharacters(in: .whitespaces)
    if let v = Double(t), v.isFinite { return v }
    let q: Quantity
    do { q = try Quantity(parsing: t) } catch { throw ValidationError("\(option): \(error)") }
    switch q.unit {
    case .newton: return q.value
    case .kilonewton: return q.value * 1000
    default:
        guard let a = area() else { throw ValidationError("\(option): '\(text)' is a pressure and the channel's cell area is unknown; give a force (N, kN)") }
        return q.unit.toMPa(q.value, cellArea: a) * a * 100
    }
}
