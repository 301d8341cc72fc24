import Foundation
import PressCore

extension ShortDetectionSettings {
    /// Reads `[channels.NAME.short_detection]` (optional): soft-short detection on the cell
    /// voltage, on by default (it judges nothing without a voltage and a current signal).
    /// Nil table: the defaults.
    static func parse(_ table: TableReader?, limits: PressureLimits) throws(ConfigError) -> ShortDetectionSettings {
        var d = ShortDetectionSettings()
        guard let v = table else { return d }
        d.enabled = try v.bool("enabled") ?? d.enabled
        d.window = try v.double("window_s", default: d.window)
        d.collapseVolts = try v.double("collapse_v", default: d.collapseVolts)
        d.floorVolts = try v.double("floor_v")
        d.confirmMeasurements = try v.int("confirm_measurements") ?? d.confirmMeasurements
        d.noiseFactor = try v.double("noise_factor", default: d.noiseFactor)
        d.noiseFraction = try v.double("noise_fraction", default: d.noiseFraction)
        d.noiseFloorVolts = try v.double("noise_floor_v", default: d.noiseFloorVolts)
        d.noiseMeasurements = try v.int("noise_measurements") ?? d.noiseMeasurements
        d.holdoff = try v.double("holdoff_s", default: d.holdoff)
        d.currentToleranceMA = try v.double("current_tolerance_ma", default: d.currentToleranceMA)
        d.currentToleranceFraction = try v.double("current_tolerance_fraction", default: d.currentToleranceFraction)
        d.pressureToleranceMPa = try v.double("pressure_tolerance_mpa", default: d.pressureToleranceMPa)
        d.pressureToleranceFraction = try v.double("pressure_tolerance_fraction", default: d.pressureToleranceFraction)
        d.staleAfter = try v.double("stale_after_s", default: d.staleAfter)
        d.whileDischarging = try v.bool("while_discharging") ?? d.whileDischarging
        d.safePressure = try v.double("short_safe_mpa")
        if let e = d.validationErrors(limits: limits).first { throw v.error(e.field, e.message) }
        try v.rejectUnknownKeys()
        return d
    }
}

extension SupervisorSettings {
    /// Reads `[channels.NAME.supervisor]` (optional): the impedance-aware supervisor, nil
    /// unless `enabled = true` (the other keys are checked either way).
    static func parse(_ table: TableReader?, limits: PressureLimits, warnings: inout [String]) throws(ConfigError) -> SupervisorSettings? {
        guard let v = table else { return nil }
        var supervisor: SupervisorSettings?
        if try v.bool("enabled") ?? false {
            var s = SupervisorSettings(windowMin: try v.double("window_min_mpa", default: limits.minSetpoint),
                                       windowMax: try v.double("window_max_mpa", default: limits.maxSetpoint))
            s.margin = try v.double("margin", default: s.margin)
            s.step = try v.double("step_mpa", default: s.step)
            s.interval = try v.double("interval_s", default: s.interval)
            s.settle = try v.double("settle_s", default: s.settle)
            s.minMeasurements = try v.int("min_measurements") ?? s.minMeasurements
            s.memory = try v.double("memory_s", default: s.memory)
            if try v.double("reprobe_s") != nil {
                warnings.append(v.error("reprobe_s", "is ignored: the supervisor no longer steps back below a level it has shown to be bad (voids opened there may not heal); remove the key").description)
            }
            if let e = s.validationErrors(limits: limits).first { throw v.error(e.field, e.message) }
            supervisor = s
        } else {
            for k in ["window_min_mpa", "window_max_mpa", "margin", "step_mpa", "interval_s", "settle_s", "memory_s", "reprobe_s"] { _ = try v.double(k) }
            _ = try v.int("min_measurements")
        }
        try v.rejectUnknownKeys()
        return supervisor
    }
}
