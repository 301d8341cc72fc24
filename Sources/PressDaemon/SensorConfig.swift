import Foundation
import PressCore
import PressSim

/// `[channels.NAME.sensor]` (required): the sensor checks (range, staleness, frozen value,
/// recovery), the load cells' non-uniformity alarm, and on the simulator the simulated load
/// cell's noise, resolution and rate.
struct SensorSection {
    let reader: TableReader
    var limits: SensorLimits
    /// (max − min) / mean of the load cells above which `non_uniform_load` is raised.
    var nonUniformityAlarm: Double?
    /// Total force below which non-uniformity is not judged, N.
    var nonUniformityMinForce: Double?

    /// - Parameter loadCell: the simulated load cell, given its capacity (`range_n`'s upper
    ///   bound), noise, resolution and rate.
    static func parse(_ t: TableReader, channel name: String, loadCell: inout LoadCellModel.Parameters) throws(ConfigError) -> SensorSection {
        guard let s = try t.subtable("sensor") else { throw t.error("sensor", "is required ([channels.\(name).sensor])") }
        let sensorType = try s.string("type") ?? "load-cell"
        guard sensorType == "load-cell" else { throw s.error("type", "'\(sensorType)' is not supported (load-cell)") }
        let range = try s.pair("range_n", default: (-50, 2000))
        var sensor = SensorLimits(minForce: range.0, maxForce: range.1,
                                  staleAfter: try s.positive("stale_after_ms", default: 250) / 1000,
                                  faultAction: try s.choice("fault_action", default: SafeAction.hold),
                                  frozenAfter: try s.nonNegative("frozen_after_s", default: 5),
                                  recoverAfter: try s.nonNegative("recover_after_s", default: 2),
                                  maxRecoveriesPerHour: try s.int("max_recoveries_per_hour") ?? 6)
        sensor.fastFrozenChance = try s.nonNegative("frozen_fast_chance", default: sensor.fastFrozenChance)
        sensor.fastFrozenMinimum = try s.nonNegative("frozen_fast_min_s", default: sensor.fastFrozenMinimum)
        if sensor.faultAction == .ramp { throw s.error("fault_action", "'ramp' needs a working sensor; use hold or release") }
        if let e = sensor.validationErrors().first { throw s.error(e.field, e.message) }
        var nonUniformityAlarm: Double?
        if let u = try s.double("nonuniformity_alarm_percent") {
            guard u > 0 else { throw s.error("nonuniformity_alarm_percent", "must be > 0") }
            nonUniformityAlarm = u / 100
        }
        let nonUniformityMinForce = try s.double("nonuniformity_min_force_n")
        if let m = nonUniformityMinForce, !(m >= 0 && m <= range.1) {
            throw s.error("nonuniformity_min_force_n", "must be within 0…\(range.1) N (range_n's upper bound)")
        }
        loadCell.capacity = range.1
        loadCell.noise = try s.nonNegative("noise_n", default: 0.2)
        loadCell.resolution = try s.positive("resolution_n", default: 0.05)
        loadCell.sampleRate = try s.positive("sample_rate_hz", default: 80)
        try s.rejectUnknownKeys()
        return SensorSection(reader: s, limits: sensor, nonUniformityAlarm: nonUniformityAlarm, nonUniformityMinForce: nonUniformityMinForce)
    }
}
