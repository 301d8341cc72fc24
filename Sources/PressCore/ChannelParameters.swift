/// A static inverse of the plant: actuator output ≈ gain × setpoint + offset.
/// For a pneumatic cylinder: gain = area_cell / area_bore, offset = preload / area_bore.
public struct Feedforward: Sendable, Equatable, Codable {
    public var gain: Double
    public var offset: Double
    public init(gain: Double = 0, offset: Double = 0) { self.gain = gain; self.offset = offset }
    public func callAsFunction(_ setpoint: Double) -> Double { gain * setpoint + offset }
}

/// Everything the control core needs to know about one channel.
public struct ChannelParameters: Sendable, Equatable {
    public var name: String
    /// Active cell area, cm². Stack pressure = force / area.
    public var cellArea: Double
    public var pid: PIDParameters
    public var feedforward: Feedforward
    public var limits: PressureLimits
    public var sensor: SensorLimits
    /// Actuator output of the vented / backed-off state.
    public var safeOutput: Double
    /// Half-width of the "in band" flag as a fraction of the setpoint (0.05 = ±5 %).
    public var band: Double
    /// An excursion out of the band is recorded as an event (the run log, the journal)
    /// when it lasts at least `excursionMinDuration` s or reaches `excursionMinDepth`
    /// (fraction of the setpoint) from it; shorter and shallower ones are counted only
    /// (noise crossing the band's edge for a tick or two).
    public var excursionMinDuration: Double = 0.5
    public var excursionMinDepth: Double = 0.075
    /// (max − min) / mean of the load cells above which `non_uniform_load` is raised.
    public var nonUniformityAlarm: Double?
    /// Total force on the plate below which non-uniformity is not judged, N (near zero
    /// load the cells' noise and offsets alone differ by tens of percent of their
    /// mean). Nil: 5 % of the sensor's upper range.
    public var nonUniformityMinForce: Double?
    /// How the output is computed while regulating.
    public var strategy: ControlStrategy = .pid
    public var adaptation = AdaptationSettings()
    /// The `mpc` law's model and horizon.
    public var mpc = MPCSettings()
    /// Defaults of a relay autotune on this channel.
    public var autotune = AutotuneSettings()
    /// The impedance-aware supervisor, when enabled.
    public var supervisor: SupervisorSettings?
    /// Soft-short detection on the cell voltage (nil: off).
    public var shortDetection: ShortDetectionSettings? = ShortDetectionSettings()
    /// Gains of constant-gap regulation (``ConstantGap``).
    public var gap = GapSettings.defaults(pneumatic: false)
    /// The cell temperature that trips the channel (nil: not checked).
    public var temperatureLimit: TemperatureLimit?
    /// The actuator's play as a stack pressure, MPa: what the output must move through
    /// before the pressure answers (a cylinder's stiction and a regulator's hysteresis
    /// over the cell area). The authority monitor neither mistakes it for lost authority
    /// nor caps the output below it. 0: none known.
    public var actuatorPlay: Double = 0

    public init(name: String, cellArea: Double, pid: PIDParameters, feedforward: Feedforward = .init(),
                limits: PressureLimits, sensor: SensorLimits, safeOutput: Double, band: Double = 0.05) {
        self.name = name; self.cellArea = cellArea; self.pid = pid; self.feedforward = feedforward
        self.limits = limits; self.sensor = sensor; self.safeOutput = safeOutput; self.band = band
    }

    /// Converts a force in N to a stack pressure in MPa on this channel's cell.
    public func pressure(fromForce newtons: Double) -> Double { StackUnits.pressure(force: newtons, area: cellArea) }
    /// Converts a stack pressure in MPa to the force in N on this channel's cell.
    public func force(fromPressure mpa: Double) -> Double { StackUnits.force(pressure: mpa, area: cellArea) }
}
