import Foundation
import PressSim

/// Plant parameters of a simulated channel.
public struct SimChannelConfig: Sendable {
    public var cell = CellModel.Parameters()
    public var loadCell = LoadCellModel.Parameters()
    public var spring = SpringFixtureModel.Parameters()
    public var pneumatic = PneumaticModel.Parameters()
    public var frameGrowthPerKelvin = 1.2
    public var current = 0.0
    public var cyclePeriod = 0.0
    public var ambient = 25.0
    /// A simulated impedance analyser: a result every `impedanceInterval` s (0: a fresh
    /// resistance every tick), each spectrum taking `impedanceAcquisition` s.
    public var impedanceInterval = 0.0
    public var impedanceAcquisition = 60.0
    /// The thickness gauge across the platens: its noise (σ) and resolution, µm; nil: no
    /// gauge on this channel.
    public var thicknessGauge: (noise: Double, resolution: Double)? = (0.1, 0.05)
}

extension SimChannelConfig {
    /// Reads `[channels.NAME.sim]`: the cell and its environment, and the spring fixture's
    /// or the pneumatic cylinder's plant, by `kind`.
    mutating func parse(_ m: TableReader, kind: ActuatorKind) throws(ConfigError) {
        current = try m.double("current_ma", default: 0)
        cyclePeriod = try m.nonNegative("cycle_period_s", default: 0)
        ambient = try m.double("ambient_c", default: 25)
        impedanceInterval = try m.nonNegative("impedance_interval_s", default: 0)
        impedanceAcquisition = try m.positive("impedance_acquisition_s", default: 60)
        if impedanceInterval > 0 && impedanceAcquisition > impedanceInterval {
            throw m.error("impedance_acquisition_s", "must be ≤ impedance_interval_s (\(impedanceInterval) s): a spectrum cannot take longer than the time between spectra")
        }
        frameGrowthPerKelvin = try m.double("frame_growth_um_per_k", default: 1.2)
        if try m.bool("thickness_gauge") ?? true {
            thicknessGauge = (try m.nonNegative("thickness_noise_um", default: 0.1), try m.positive("thickness_resolution_um", default: 0.05))
        } else {
            thicknessGauge = nil
        }
        var c = cell
        c.thickness = try m.positive("thickness_um", default: c.thickness)
        c.contactStiffness0 = try m.positive("contact_stiffness_n_per_um", default: c.contactStiffness0)
        c.contactStiffnessSlope = try m.positive("contact_stiffness_slope_per_um", default: c.contactStiffnessSlope)
        c.breathingPerCharge = try m.nonNegative("breathing_um_per_mah_cm2", default: c.breathingPerCharge)
        c.creepRate = try m.nonNegative("creep_rate_um_per_s", default: c.creepRate)
        c.criticalPressure = try m.positive("critical_pressure_mpa", default: c.criticalPressure)
        c.openCircuitVoltage = try m.double("ocv_v", default: c.openCircuitVoltage)
        c.bulkResistance = try m.nonNegative("bulk_resistance_ohm_cm2", default: c.bulkResistance)
        c.damagePressure = try m.positive("damage_pressure_mpa", default: c.damagePressure)
        c.shortHazard = try m.nonNegative("short_hazard_per_s", default: c.shortHazard)
        c.shortShunt = try m.positive("short_shunt_ohm_cm2", default: c.shortShunt)
        c.voidPerCharge = try m.nonNegative("void_per_mah_cm2", default: c.voidPerCharge)
        cell = c
        switch kind {
        case .springFixture:
            var s = spring
            s.springRate = try m.positive("spring_rate_n_per_um", default: s.springRate)
            s.micronsPerStep = try m.positive("microns_per_step", default: s.micronsPerStep)
            s.maxStepRate = try m.positive("max_step_rate", default: s.maxStepRate)
            s.backlash = try m.nonNegative("backlash_um", default: s.backlash)
            s.gap = try m.nonNegative("gap_um", default: s.gap)
            s.travel = try m.positive("travel_um", default: s.travel)
            spring = s
        case .pneumatic:
            var p = pneumatic
            p.boreArea = try m.positive("bore_area_mm2", default: p.boreArea)
            p.supply = try m.positive("supply_mpa", default: p.supply)
            p.lag = try m.positive("regulator_lag_s", default: p.lag)
            p.deadTime = try m.nonNegative("dead_time_s", default: p.deadTime)
            p.hysteresis = try m.nonNegative("hysteresis_mpa", default: p.hysteresis)
            p.deadZone = try m.nonNegative("dead_zone_mpa", default: p.deadZone)
            p.gain = try m.positive("regulator_gain", default: p.gain)
            p.returnSpring = try m.nonNegative("return_spring_n", default: p.returnSpring)
            p.staticFriction = try m.nonNegative("static_friction_n", default: p.staticFriction)
            p.kineticFriction = try m.nonNegative("kinetic_friction_n", default: p.kineticFriction)
            guard p.kineticFriction <= p.staticFriction else { throw m.error("kinetic_friction_n", "must not exceed static_friction_n") }
            pneumatic = p
        }
    }
}
