import Foundation
import PressCore

/// `[channels.NAME.limits]` (required): the setpoint window, the trip and the safe actions,
/// from the keys or a chemistry preset (overriding a preset's value is warned about).
struct LimitsSection {
    let reader: TableReader
    var limits: PressureLimits
    var preset: ChemistryPreset?
    /// `max_temperature_c` and `temperature_action`: the over-temperature trip.
    var temperature: TemperatureLimit?

    static func parse(_ t: TableReader, channel name: String, warnings: inout [String]) throws(ConfigError) -> LimitsSection {
        guard let l = try t.subtable("limits") else { throw t.error("limits", "is required ([channels.\(name).limits] with min_mpa, max_mpa, trip_mpa)") }
        // A chemistry preset supplies min, max and trip; overriding one is allowed and
        // warned about (the warning names the preset's value).
        var preset: ChemistryPreset?
        if let p = try l.string("preset") {
            guard let found = ChemistryPreset.resolve(p) else {
                throw l.error("preset", "'\(p)' is not a chemistry preset (electrolyte/anode: \(ChemistryPreset.all.map(\.name).joined(separator: ", ")))")
            }
            preset = found.preset
            if let legacy = found.legacy {
                let others = ChemistryPreset.all.filter { $0.family == found.preset.family && $0 != found.preset }.map(\.name)
                warnings.append(l.error("preset", "'\(legacy)' is an old preset name, replaced by '\(found.preset.name)' (\(found.preset.minMpa)–\(found.preset.maxMpa) MPa, trip \(found.preset.tripMpa) MPa)"
                    + (others.isEmpty ? "" : "; for another anode use \(others.map { "'\($0)'" }.joined(separator: ", "))") + ": write preset = \"\(found.preset.name)\"").description)
            }
        }
        func limit(_ key: String, _ presetValue: Double?) throws(ConfigError) -> Double {
            if let v = try l.double(key) {
                if let pv = presetValue, v != pv, let p = preset {
                    warnings.append(l.error(key, "overrides the '\(p.name)' preset (\(pv) MPa) with \(v) MPa").description)
                }
                return v
            }
            if let pv = presetValue { return pv }
            if key == "min_mpa" { return 0 }
            throw l.error(key, "is required (or set preset = one of \(ChemistryPreset.all.map(\.name).joined(separator: ", ")))")
        }
        let minMpa = try limit("min_mpa", preset?.minMpa)
        guard minMpa >= 0 else { throw l.error("min_mpa", "must be ≥ 0") }
        let limits = PressureLimits(minSetpoint: minMpa,
                                    maxSetpoint: try limit("max_mpa", preset?.maxMpa),
                                    trip: try limit("trip_mpa", preset?.tripMpa),
                                    tripAction: try l.choice("trip_action", default: SafeAction.release),
                                    saturationTimeout: try l.positive("saturation_timeout_s", default: 30),
                                    saturationAction: try l.choice("saturation_action", default: SafeAction.hold),
                                    safePressure: try l.double("safe_mpa"),
                                    safeRamp: try l.double("safe_ramp_mpa_per_s", default: 0.5))
        if let e = limits.validationErrors().first { throw l.error(e.field, e.message) }
        var temperature: TemperatureLimit?
        if let t = try l.double("max_temperature_c") {
            guard t.isFinite, t > -50, t < 300 else { throw l.error("max_temperature_c", "must be a cell temperature in °C (−50…300), found \(t)") }
            temperature = TemperatureLimit(maximum: t, action: try l.choice("temperature_action", default: SafeAction.release))
        } else if l.has("temperature_action") {
            throw l.error("temperature_action", "needs max_temperature_c (the temperature that trips)")
        }
        try l.rejectUnknownKeys()
        return LimitsSection(reader: l, limits: limits, preset: preset, temperature: temperature)
    }
}

/// Capacity checks at load: can the channel do what its limits promise?
///
/// - The load cell must read the trip force (trip × area): a trip it cannot see is
///   refused with an error naming the trip (or preset), the sensor range and the area.
/// - The actuator must reach the highest setpoint's force (max × area): on the
///   simulator, spring rate × (travel − gap) or air supply × bore area − return
///   spring; on hardware, from the plant's nominal gain when it is configured:
///   (output_max − feedforward_offset) ÷ feedforward_gain MPa. A shortfall is a
///   warning naming the keys (the channel still holds lower setpoints;
///   `cannot_reach_setpoint` catches the rest).
struct CapacityCheck {
    /// `[channels.NAME]` itself, for the keys `cell_area_cm2` and `sim.*`.
    let channel: TableReader
    let limits: LimitsSection
    let sensor: SensorSection
    let actuator: ActuatorSection
    let area: Double
    let pid: PIDSection

    /// Throws when the trip cannot be measured; appends a warning when the actuator falls
    /// short. `sim`: the simulated plant (nil on hardware).
    func run(sim: SimChannelConfig?, warnings: inout [String]) throws(ConfigError) {
        let t = channel, l = limits.reader, s = sensor.reader, a = actuator.reader, p = pid.reader
        let limits = self.limits.limits, sensor = self.sensor.limits, preset = self.limits.preset
        let kind = actuator.kind, outMax = actuator.outputMax, feedforward = pid.feedforward
        func at(_ r: TableReader, _ key: String) -> String {
            let e = r.error(key, "")
            return (e.key ?? key) + (e.line.map { " (line \($0))" } ?? "")
        }
        func n(_ v: Double) -> String { fixedNumber(v) }
        func g(_ v: Double) -> String { String(format: "%g", v) }
        let tripForce = StackUnits.force(pressure: limits.trip, area: area)
        if tripForce > sensor.maxForce {
            let tripKey = l.has("trip_mpa") || preset == nil ? "trip_mpa" : "preset"
            let origin = tripKey == "preset" ? " (from the '\(preset!.name)' preset)" : ""
            throw l.error(tripKey, "trip \(n(limits.trip)) MPa\(origin) on \(n(area)) cm² is \(n(tripForce)) N, beyond the load cell's \(n(sensor.maxForce)) N "
                + "(\(at(s, "range_n")), \(at(t, "cell_area_cm2"))): the trip could never be measured. "
                + "Use a load cell of at least \(n(tripForce)) N, a smaller cell area (≤ \(n(sensor.maxForce / (limits.trip * 100))) cm²) or a lower trip_mpa (≤ \(n(sensor.maxForce / (area * 100))) MPa)")
        }
        let maxKey = l.has("max_mpa") || preset == nil ? "max_mpa" : "preset"
        guard let sim else {
            // Hardware: the plant's nominal gain (output per MPa), when configured.
            guard feedforward.gain > 0 else { return }
            let reachMpa = (outMax - feedforward.offset) / feedforward.gain
            if reachMpa < limits.maxSetpoint {
                warnings.append(l.error(maxKey, "max \(n(limits.maxSetpoint)) MPa is beyond what the actuator reaches by its nominal gain: (output_max \(g(outMax)) − feedforward_offset \(g(feedforward.offset))) ÷ feedforward_gain \(g(feedforward.gain)) = \(n(reachMpa)) MPa ("
                                        + [at(a, "output_max"), at(p, "feedforward_gain"), at(p, "feedforward_offset")].joined(separator: ", ") + ")").description)
            }
            return
        }
        let maxForce = StackUnits.force(pressure: limits.maxSetpoint, area: area)
        let reach: Double, how: String, keys: [String]
        switch kind {
        case .springFixture:
            let sp = sim.spring
            reach = sp.springRate * (min(sp.travel, outMax) - sp.gap)
            how = "spring rate \(n(sp.springRate)) N/µm × (travel \(n(min(sp.travel, outMax))) µm − gap \(n(sp.gap)) µm)"
            keys = ["sim.spring_rate_n_per_um", "sim.travel_um", "sim.gap_um"].map { at(t, $0) } + [at(a, "output_max")]
        case .pneumatic:
            let pn = sim.pneumatic
            let air = min(pn.supply, outMax * pn.gain)
            reach = air * pn.boreArea - pn.returnSpring
            how = "air \(n(air)) MPa × bore \(n(pn.boreArea)) mm² − return spring \(n(pn.returnSpring)) N"
            keys = ["sim.supply_mpa", "sim.bore_area_mm2", "sim.return_spring_n"].map { at(t, $0) } + [at(a, "output_max")]
        }
        if reach < maxForce {
            warnings.append(l.error(maxKey,
                                    "max \(n(limits.maxSetpoint)) MPa on \(n(area)) cm² needs \(n(maxForce)) N; the actuator reaches \(n(reach)) N (\(how); "
                                    + keys.joined(separator: ", ") + "): setpoints above \(n(reach / (area * 100))) MPa cannot be held").description)
        }
    }
}

/// A number without trailing zeros, for messages.
func fixedNumber(_ v: Double) -> String {
    let r = (v * 1000).rounded() / 1000
    return r == r.rounded() && abs(r) < 1e12 ? String(Int(r)) : String(r)
}
