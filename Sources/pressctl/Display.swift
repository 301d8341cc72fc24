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
