import Foundation
import PressCore

/// `[channels.NAME.pid]` (required): the PID's gains and filters, with the output's range
/// and rate from the actuator, and the static feedforward (the plant's nominal inverse).
struct PIDSection {
    let reader: TableReader
    var pid: PIDParameters
    var feedforward: Feedforward

    static func parse(_ t: TableReader, channel name: String, actuator: ActuatorSection) throws(ConfigError) -> PIDSection {
        guard let p = try t.subtable("pid") else { throw t.error("pid", "is required ([channels.\(name).pid])") }
        var pid = PIDParameters(kp: try p.requiredDouble("kp"))
        pid.ki = try p.double("ki", default: 0)
        pid.kd = try p.double("kd", default: 0)
        pid.derivativeFilterTime = try p.double("derivative_filter_s", default: 0.05)
        pid.deadband = try p.double("deadband_mpa", default: 0)
        pid.setpointRampRate = try p.double("setpoint_ramp_mpa_per_s")
        pid.action = try p.choice("action", default: ControllerAction.reverse)
        pid.antiWindup = try p.choice("anti_windup", default: AntiWindup.backCalculation)
        pid.trackingTime = try p.double("tracking_time_s")
        pid.outputMin = actuator.outputMin; pid.outputMax = actuator.outputMax; pid.outputRateLimit = actuator.outputRate
        let ff = Feedforward(gain: try p.double("feedforward_gain", default: 0), offset: try p.double("feedforward_offset", default: 0))
        if let e = pid.validationErrors().first {
            let keyMap = ["deadband": "deadband_mpa", "setpoint_ramp": "setpoint_ramp_mpa_per_s"]
            if ["output_min", "output_rate"].contains(e.field) { throw actuator.reader.error(e.field, e.message) }
            throw p.error(keyMap[e.field] ?? e.field, e.message)
        }
        try p.rejectUnknownKeys()
        return PIDSection(reader: p, pid: pid, feedforward: ff)
    }
}

/// `[channels.NAME.control]` (optional): the control strategy, the autotune's defaults and
/// the adaptation's settings.
struct ControlSection {
    var strategy: ControlStrategy
    var autotune: AutotuneSettings
    var adaptation: AdaptationSettings

    /// - Parameter feedforward: the plant's nominal gain, which `adaptive` and `learned` need.
    static func parse(_ t: TableReader, channel name: String, feedforward: Feedforward) throws(ConfigError) -> ControlSection {
        var strategy = ControlStrategy.pid
        var autotune = AutotuneSettings()
        var adaptation = AdaptationSettings()
        if let c = try t.subtable("control") {
            strategy = try c.choice("strategy", default: ControlStrategy.pid)
            autotune.rule = try c.choice("autotune_rule", default: autotune.rule)
            autotune.maxExcursion = try c.double("autotune_excursion_mpa", default: autotune.maxExcursion)
            autotune.hysteresis = try c.double("autotune_hysteresis_mpa")
            autotune.cycles = try c.int("autotune_cycles") ?? autotune.cycles
            autotune.timeout = try c.double("autotune_timeout_s", default: autotune.timeout)
            let aKeys = ["max_excursion_mpa": "autotune_excursion_mpa", "hysteresis_mpa": "autotune_hysteresis_mpa",
                         "cycles": "autotune_cycles", "timeout_s": "autotune_timeout_s"]
            if let e = autotune.validationErrors().first { throw c.error(aKeys[e.field] ?? e.field, e.message) }
            adaptation.interval = try c.double("adapt_interval_s", default: adaptation.interval)
            adaptation.forgetting = try c.double("adapt_forgetting", default: adaptation.forgetting)
            adaptation.scheduleBins = try c.int("adapt_schedule_bins") ?? adaptation.scheduleBins
            adaptation.minScale = try c.double("adapt_min_scale", default: adaptation.minScale)
            adaptation.maxScale = try c.double("adapt_max_scale", default: adaptation.maxScale)
            adaptation.gainRate = try c.double("adapt_gain_rate_per_s", default: adaptation.gainRate)
            adaptation.excitation = try c.double("adapt_excitation_mpa", default: adaptation.excitation)
            adaptation.validationMoves = try c.int("adapt_validation_moves") ?? adaptation.validationMoves
            adaptation.confidenceLow = try c.double("confidence_low", default: adaptation.confidenceLow)
            adaptation.confidenceHigh = try c.double("confidence_high", default: adaptation.confidenceHigh)
            let keyMap = ["interval_s": "adapt_interval_s", "forgetting": "adapt_forgetting", "schedule_bins": "adapt_schedule_bins",
                          "min_scale": "adapt_min_scale", "max_scale": "adapt_max_scale", "gain_rate": "adapt_gain_rate_per_s",
                          "excitation_mpa": "adapt_excitation_mpa", "validation_moves": "adapt_validation_moves"]
            if let e = adaptation.validationErrors().first { throw c.error(keyMap[e.field] ?? e.field, e.message) }
            if strategy != .pid && !(feedforward.gain > 0) {
                throw c.error("strategy", "'\(strategy.rawValue)' needs the plant's nominal gain: set [channels.\(name).pid] feedforward_gain (output per MPa) or run 'pressctl tune \(name)' first with strategy = \"pid\"")
            }
            try c.rejectUnknownKeys()
        }
        return ControlSection(strategy: strategy, autotune: autotune, adaptation: adaptation)
    }
}
