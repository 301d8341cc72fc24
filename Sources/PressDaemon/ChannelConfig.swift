import Foundation
import PressCore
import PressSim

/// The kind of actuator a channel drives. Decides the output's unit and meaning.
public enum ActuatorKind: String, Sendable, CaseIterable {
    /// Stepper-driven screw compressing a spring; output = screw position, µm.
    case springFixture = "spring-fixture"
    /// Electro-pneumatic regulator feeding a cylinder; output = air pressure, MPa.
    case pneumatic

    /// What the kind's output means and its defaults: one switch per property, so a new
    /// kind is refused by the compiler until each is answered.
    public var outputUnit: String {
        switch self {
        case .springFixture: "um"
        case .pneumatic: "MPa"
        }
    }
    /// `output_max` and `output_rate` (per second) when the file does not give them.
    var defaultOutputMax: Double {
        switch self {
        case .springFixture: 20_000
        case .pneumatic: 0.9
        }
    }
    var defaultOutputRate: Double {
        switch self {
        case .springFixture: 2500
        case .pneumatic: 1.0
        }
    }
    /// The constant-gap loop's default gains (output per µm of thickness error).
    var defaultGap: GapSettings {
        switch self {
        case .springFixture: GapSettings.defaults(pneumatic: false)
        case .pneumatic: GapSettings.defaults(pneumatic: true)
        }
    }
}

/// What the daemon does with a channel's actuator when it stops.
public enum ShutdownAction: String, Sendable, CaseIterable {
    /// Leave the actuator where it is, so the cell keeps its pressure across a restart.
    case hold
    /// Drive it to its safe output first.
    case release
}

/// One channel's complete configuration.
public struct ChannelConfig: Sendable {
    public var name: String
    public var description: String
    public var actuator: ActuatorKind
    public var shutdown: ShutdownAction
    /// The channel runs every `divider`-th tick of the loop.
    public var divider: Int
    public var control: ChannelParameters
    public var sim: SimChannelConfig
    public var hardware = HardwareChannelConfig()
    /// The chemistry preset the limits came from, if any.
    public var preset: String?
    /// Signals pushed in by other software (`push_signals`) older than this are not
    /// used, s.
    public var pushedStaleAfter: Double = 900
    /// Where an impedance analyser writes this channel's spectra, if it does.
    public var spectra: SpectraConfig?
}

extension ChannelConfig {
    /// Reads `[channels.NAME]`: the channel's own keys, then each component's section in
    /// turn (actuator, limits, sensor, pid, control, short detection, supervisor, wiring,
    /// simulated plant, impedance), then the capacity checks across them.
    /// - Parameters:
    ///   - loopRate: the daemon's loop rate, Hz (the channel's must divide it).
    ///   - devices: `[devices.*]`, for the wiring of a hardware channel.
    ///   - hardware: the backend is real devices (the wiring is read and required).
    ///   - warnings: accepted but worth a warning, appended with file, line and key.
    static func parse(_ t: TableReader, name: String, loopRate: Double, devices: [DeviceConfig] = [], hardware: Bool = false,
                      warnings: inout [String]) throws(ConfigError) -> ChannelConfig {
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }), name.count <= 32 else {
            throw t.error(nil, "channel name '\(name)' may use letters, digits, '_' and '-' only (at most 32)")
        }
        let description = try t.string("description") ?? ""
        let area = try t.positive("cell_area_cm2", default: 1)
        let band = try t.positive("band_percent", default: 5) / 100
        let excursionMinDuration = try t.nonNegative("excursion_min_s", default: 0.5)
        let excursionMinDepth = try t.positive("excursion_min_percent", default: 1.5 * band * 100) / 100
        guard excursionMinDepth > band else {
            throw t.error("excursion_min_percent", "must be above band_percent (\(fmt3(band * 100))): an excursion starts at the band's edge")
        }
        let pushedStale = try t.positive("pushed_stale_after_s", default: 900)
        let rate = try t.positive("loop_rate_hz", default: loopRate)
        let ratio = loopRate / rate
        guard ratio >= 1, abs(ratio - ratio.rounded()) < 1e-9 else {
            throw t.error("loop_rate_hz", "must divide the daemon's loop_rate_hz (\(loopRate)) by a whole number")
        }
        var sim = SimChannelConfig()
        sim.cell.area = area
        var hw = HardwareChannelConfig()

        let actuator = try ActuatorSection.parse(t, channel: name)
        if hardware {
            try hw.parseActuator(actuator.reader, channel: name, devices: devices, outputMin: actuator.outputMin, outputMax: actuator.outputMax)
        }
        try actuator.reader.rejectUnknownKeys()
        let limits = try LimitsSection.parse(t, channel: name, warnings: &warnings)
        let sensor = try SensorSection.parse(t, channel: name, loadCell: &sim.loadCell)
        hw.nonUniformityAlarm = sensor.nonUniformityAlarm
        hw.nonUniformityMinForce = sensor.nonUniformityMinForce
        let pid = try PIDSection.parse(t, channel: name, actuator: actuator)
        let control = try ControlSection.parse(t, channel: name, feedforward: pid.feedforward)
        let shortDetection = try ShortDetectionSettings.parse(t.subtable("short_detection"), limits: limits.limits)
        let supervisor = try SupervisorSettings.parse(t.subtable("supervisor"), limits: limits.limits, warnings: &warnings)
        if hardware { try hw.parseWiring(t, channel: name, devices: devices, channelRate: rate) }
        if let m = try t.subtable("sim") {
            try sim.parse(m, kind: actuator.kind)
            try m.rejectUnknownKeys()
        }
        var gap = actuator.kind.defaultGap
        if let g = try t.subtable("gap") {
            gap.kp = try g.double("kp", default: gap.kp)
            gap.ki = try g.double("ki", default: gap.ki)
            if let e = gap.validationErrors().first { throw g.error(e.field, e.message) }
            try g.rejectUnknownKeys()
        }
        let spectra = try t.subtable("impedance").map { m throws(ConfigError) in try SpectraConfig.parse(m) }
        try t.rejectUnknownKeys()

        try CapacityCheck(channel: t, limits: limits, sensor: sensor, actuator: actuator, area: area, pid: pid)
            .run(sim: hardware ? nil : sim, warnings: &warnings)

        var params = ChannelParameters(name: name, cellArea: area, pid: pid.pid, feedforward: pid.feedforward, limits: limits.limits,
                                       sensor: sensor.limits, safeOutput: actuator.safeOutput, band: band)
        params.excursionMinDuration = excursionMinDuration
        params.excursionMinDepth = excursionMinDepth
        params.nonUniformityAlarm = sensor.nonUniformityAlarm
        params.nonUniformityMinForce = sensor.nonUniformityMinForce
        params.strategy = control.strategy
        params.autotune = control.autotune
        params.adaptation = control.adaptation
        params.supervisor = supervisor
        params.shortDetection = shortDetection.enabled ? shortDetection : nil
        params.actuatorPlay = actuator.play
        params.gap = gap
        params.temperatureLimit = limits.temperature
        var channel = ChannelConfig(name: name, description: description, actuator: actuator.kind, shutdown: actuator.shutdown,
                                    divider: Int(ratio.rounded()), control: params, sim: sim, hardware: hw)
        channel.preset = limits.preset?.name
        channel.pushedStaleAfter = pushedStale
        channel.spectra = spectra
        return channel
    }
}

/// `[channels.NAME.actuator]` (required): the kind, the output's range, rate and safe value,
/// the shutdown action and the play. The wiring of a hardware channel is read from the same
/// table by ``HardwareChannelConfig/parseActuator(_:channel:devices:outputMin:outputMax:)``.
struct ActuatorSection {
    let reader: TableReader
    var kind: ActuatorKind
    var outputMin: Double
    var outputMax: Double
    var outputRate: Double
    var safeOutput: Double
    var shutdown: ShutdownAction
    var play: Double

    static func parse(_ t: TableReader, channel name: String) throws(ConfigError) -> ActuatorSection {
        guard let a = try t.subtable("actuator") else { throw t.error("actuator", "is required ([channels.\(name).actuator])") }
        guard a.has("type") else { throw a.error("type", "is required (\(ActuatorKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
        let kind = try a.choice("type", default: ActuatorKind.springFixture)
        let defaultMax = kind.defaultOutputMax
        let outMin = try a.double("output_min", default: 0)
        let outMax = try a.double("output_max", default: defaultMax)
        guard outMax > outMin else { throw a.error("output_max", "must be above output_min (\(outMin))") }
        let outRate = try a.positive("output_rate", default: kind.defaultOutputRate)
        let safe = try a.double("safe_output", default: outMin)
        guard safe >= outMin, safe <= outMax else { throw a.error("safe_output", "must lie within output_min…output_max (\(outMin)…\(outMax))") }
        let shutdown = try a.choice("shutdown", default: ShutdownAction.hold)
        let play = try a.double("play_mpa", default: 0)
        guard play.isFinite, play >= 0 else { throw a.error("play_mpa", "must be ≥ 0 MPa, found \(play)") }
        return ActuatorSection(reader: a, kind: kind, outputMin: outMin, outputMax: outMax, outputRate: outRate, safeOutput: safe,
                               shutdown: shutdown, play: play)
    }
}
