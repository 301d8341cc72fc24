import Foundation
import PressEIS
import PressCore
import PressDrivers
import PressProtocol
import PressSim

/// The kind of actuator a channel drives. Decides the output's unit and meaning.
public enum ActuatorKind: String, Sendable, CaseIterable {
    /// Stepper-driven screw compressing a spring; output = screw position, µm.
    case springFixture = "spring-fixture"
    /// Electro-pneumatic regulator feeding a cylinder; output = air pressure, MPa.
    case pneumatic

    public var outputUnit: String { self == .springFixture ? "um" : "MPa" }
}

/// What the daemon does with a channel's actuator when it stops.
public enum ShutdownAction: String, Sendable, CaseIterable {
    /// Leave the actuator where it is, so the cell keeps its pressure across a restart.
    case hold
    /// Drive it to its safe output first.
    case release
}

/// Where the daemon's channels get their signals.
public enum BackendKind: String, Sendable, CaseIterable {
    case simulator
    /// Real devices from `[devices.*]` and each channel's register map.
    case hardware
}

/// A Modbus device or bus from `[devices.NAME]`.
public struct DeviceConfig: Sendable {
    public var name: String
    /// Modbus devices: how to reach them (nil for GPIO chips).
    public var transport: ModbusTransport?
    /// GPIO devices: the chip (name, path, label or number) and the consumer label.
    public var gpioChip: String?
    public var consumer = "pressd"
    public var unit: Int
    public var timeout: Double
    public var retries: Int
    public var pollRate: Double
    /// Seconds between read-backs of the actuator registers, and between re-writes of an
    /// unchanged output (0: every cycle). See ``ModbusPoller``.
    public var readbackInterval: Double = 1
    public var rewriteInterval: Double = 1
}

/// What a quantity read from a register means.
public enum ReadQuantity: String, Sendable, CaseIterable {
    case forceN = "force_n", forceKN = "force_kn", pressureMPa = "pressure_mpa", pressureBar = "pressure_bar"
    /// Converts the engineering value to N of force on a cell of `area` cm².
    func newtons(_ v: Double, area: Double) -> Double {
        switch self {
        case .forceN: return v
        case .forceKN: return v * 1000
        case .pressureMPa: return StackUnits.force(pressure: v, area: area)
        case .pressureBar: return StackUnits.force(pressure: v / 10, area: area)
        }
    }
}

/// A signal in a device's register map, as configured.
public struct RegisterRef: Sendable, Equatable {
    public var device: String
    public var signal: ModbusSignal
}

/// Auxiliary signals a channel may read.
public enum SignalRole: String, Sendable, CaseIterable {
    case temperatureC = "temperature_c", currentMA = "current_ma", impedanceOhmCm2 = "impedance_ohm_cm2", voltageV = "voltage_v"
    case charging, emergencyStop = "emergency_stop", limitSwitch = "limit_switch"
}

/// A channel's hardware wiring (backend = "hardware").
public struct HardwareChannelConfig: Sendable {
    /// Load cells (or pressure transducers) whose forces add up to the total.
    public var loadCells: [(ref: RegisterRef, quantity: ReadQuantity)] = []
    public var signals: [(role: SignalRole, ref: RegisterRef)] = []
    public var actuator: RegisterRef?
    /// (max − min) / mean of the load cells above this raises `non_uniform_load`.
    public var nonUniformityAlarm: Double?
    /// Total force below which non-uniformity is not judged, N (nil: 5 % of `range_n`'s
    /// upper bound).
    public var nonUniformityMinForce: Double?
    /// HX711 load cells on GPIO devices.
    public var hx711s: [(device: String, input: HX711Input)] = []
    /// Digital inputs on GPIO devices.
    public var gpioSignals: [(role: SignalRole, device: String, id: String, spec: LineSpec)] = []
    /// A stepper-driven screw on a GPIO device (output in µm).
    public var stepper: (device: String, output: StepperOutput)?
    /// Inlet/exhaust valves on a GPIO device (output −1…1).
    public var valves: (device: String, output: ValvePairOutput)?
    /// Registers the channel's pressure, setpoint or force is copied to (a cycler's
    /// analog input or auxiliary channel), `[[channels.X.mirror]]`.
    public var mirrors: [RegisterMirror] = []
}

/// One `[[channels.X.mirror]]`: a value of the channel written to a register at `rate`.
public struct RegisterMirror: Sendable {
    public enum Quantity: String, Sendable, CaseIterable {
        case pressureMPa = "pressure_mpa", setpointMPa = "setpoint_mpa", forceN = "force_n"
    }
    public var quantity: Quantity
    public var ref: RegisterRef
    /// Writes per second.
    public var rate: Double
    /// Written when the value is unknown (no valid force reading); nil: the register
    /// keeps its last value. A setpoint reads 0 while the channel is not regulating.
    public var invalidValue: Double?
}

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

/// An impedance analyser's spectrum files for one channel (`[channels.NAME.impedance]`).
public struct SpectraConfig: Sendable, Equatable {
    /// The directory watched for new files (BioLogic `.mpt`, Gamry `.DTA`, CSV).
    public var directory: String
    /// The analyser PC's time zone, for files that give local time (EC-Lab, Gamry);
    /// nil: this machine's.
    public var timeZone: String?
    /// The analyser PC's date convention, for dates written in its locale (Gamry, ZPlot)
    /// whose day and month could be either way round; nil: by the date's separator.
    public var dateOrder: DateOrder?
    /// A fit whose interfacial resistance has a larger relative standard error is
    /// rejected.
    public var maxRelativeError: Double = 0.25
    /// Reject spectra that fail the Kramers–Kronig (Lin-KK) consistency check.
    public var requireKramersKronig = true
}

/// The run log's settings.
public struct RunLogConfig: Sendable {
    public var enabled = true
    /// Seconds between logged samples (each carries min/max/mean of the fast loop).
    public var samplePeriod = 1.0
    /// Seconds between commits; a `kill -9` loses at most this much.
    public var flushInterval = 0.5
    /// Samples and events older than this are deleted; 0 keeps everything.
    public var retentionDays = 365.0
    /// Samples older than this are downsampled to one row per `downsamplePeriod` s per
    /// channel (envelope, means, last values); 0 never downsamples. Events are kept whole.
    public var fullResolutionDays = 14.0
    public var downsamplePeriod = 60.0
}

/// The daemon's configuration, validated.
public struct DaemonConfig: Sendable {
    public var file: String
    public var socketPath: String?
    public var socketMode: Int
    public var loopRate: Double
    public var backend: BackendKind
    public var logLevel: String
    public var seed: UInt64
    public var timeScale: Double
    public var substep: Double
    public var channels: [ChannelConfig]
    /// Where the run log and the restart state live (nil: the default, see
    /// ``resolvedStateDirectory``).
    public var stateDir: String?
    public var runlog = RunLogConfig()
    /// Prometheus metrics listener, `host:port` on loopback; nil disables it.
    public var metrics: String?
    /// SCHED_FIFO priority of the control thread; 0 keeps normal scheduling.
    public var realtimePriority = 0
    /// Who may do what on the control socket.
    public var access = AccessPolicy()
    /// Group to give the socket file pressd creates (nil: leave it).
    public var socketGroup: String?
    /// Most control-socket connections open at once (`daemon.max_connections`).
    public var maxConnections = 256
    /// Most connections one (unprivileged) uid may hold (`daemon.max_connections_per_user`).
    public var maxConnectionsPerUser = 32
    /// A client whose replies stay unread this long is dropped (`daemon.client_stall_timeout_s`), s.
    public var clientStallTimeout = 30.0
    /// Modbus devices and buses (backend = "hardware").
    public var devices: [DeviceConfig] = []
    /// The MQTT publisher (`[mqtt]`); nil: off.
    public var mqtt: MQTTConfig?
    /// Accepted but worth a warning (a chemistry preset overridden), each with file,
    /// line and key.
    public var warnings: [String] = []
    /// Every key as written in the file, for a reload to find what changed.
    var keys = ConfigKeys()

    /// `daemon.state_dir`, else `$STATE_DIRECTORY` (systemd's StateDirectory=), else
    /// `/var/lib/pressd` for root, else `$XDG_STATE_HOME/pressd` or `~/.local/state/pressd`.
    public func resolvedStateDirectory(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        LocalPath.absolute(unresolvedStateDirectory(environment: env))
    }

    private func unresolvedStateDirectory(environment env: [String: String]) -> String {
        if let d = stateDir { return d }
        if let d = env["STATE_DIRECTORY"], !d.isEmpty { return d.split(separator: ":").first.map(String.init) ?? d }
        if geteuid() == 0 { return "/var/lib/pressd" }
        if let x = env["XDG_STATE_HOME"], !x.isEmpty { return x + "/pressd" }
        return (env["HOME"] ?? "/tmp") + "/.local/state/pressd"
    }

    /// Loads and validates `path`. Every error names the file, line and key.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) }
        catch { throw ConfigError(file: path, line: nil, key: nil, message: "cannot read: \(error.localizedDescription)") }
        return try parse(text, file: path)
    }

    /// Parses and validates TOML text; `file` is used in error messages.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> DaemonConfig {
        let root = try parseTOML(text, file: file)
        var cfg = DaemonConfig(file: file, socketPath: nil, socketMode: 0o660, loopRate: 100, backend: .simulator,
                               logLevel: "info", seed: 1, timeScale: 1, substep: 0.001, channels: [])
        cfg.keys = ConfigKeys(root.table, locator: root.context.locator)
        if let d = try root.subtable("daemon") {
            cfg.socketPath = try d.string("socket").flatMap { $0.isEmpty ? nil : $0 }
            if let p = cfg.socketPath, !p.hasPrefix("/") {
                throw d.error("socket", "'\(p)' is not an absolute path: pressd may run from any directory (under systemd, /); write the full path, e.g. \"/run/pressd/pressd.sock\"")
            }
            if let m = try d.string("socket_mode") {
                guard let v = Int(m, radix: 8), (0...0o777).contains(v) else { throw d.error("socket_mode", "must be an octal mode string like \"0660\"") }
                cfg.socketMode = v
            }
            cfg.loopRate = try d.positive("loop_rate_hz", default: 100)
            guard cfg.loopRate <= 2000 else { throw d.error("loop_rate_hz", "must be ≤ 2000 Hz") }
            cfg.backend = try d.choice("backend", default: BackendKind.simulator)
            cfg.logLevel = try d.string("log_level") ?? "info"
            cfg.stateDir = try d.string("state_dir").flatMap { $0.isEmpty ? nil : $0 }
            if let p = cfg.stateDir, !p.hasPrefix("/") {
                throw d.error("state_dir", "'\(p)' is not an absolute path: pressd may run from any directory (under systemd, /); write the full path, e.g. \"/var/lib/pressd\"")
            }
            cfg.realtimePriority = try d.int("realtime_priority") ?? 0
            if let g = try d.string("socket_group"), !g.isEmpty {
                guard getgrnam(g) != nil else { throw d.error("socket_group", "no group '\(g)' on this system") }
                cfg.socketGroup = g
            }
            guard (0...99).contains(cfg.realtimePriority) else { throw d.error("realtime_priority", "must be 0 (off) … 99") }
            if let m = try d.int("max_connections") {
                guard (1...4096).contains(m) else { throw d.error("max_connections", "must be 1 … 4096") }
                cfg.maxConnections = m
            }
            if let m = try d.int("max_connections_per_user") {
                guard (1...4096).contains(m) else { throw d.error("max_connections_per_user", "must be 1 … 4096") }
                cfg.maxConnectionsPerUser = m
            }
            cfg.clientStallTimeout = try d.positive("client_stall_timeout_s", default: 30)
            guard (1...3600).contains(cfg.clientStallTimeout) else { throw d.error("client_stall_timeout_s", "must be 1 … 3600 s") }
            if let m = try d.string("metrics"), !m.isEmpty {
                guard let colon = m.lastIndex(of: ":"), let port = Int(m[m.index(after: colon)...]), (1...65535).contains(port) else {
                    throw d.error("metrics", "must be \"host:port\", e.g. \"127.0.0.1:9817\"")
                }
                let host = String(m[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                guard host == "localhost" || host == "::1" || host.hasPrefix("127.") else {
                    throw d.error("metrics", "'\(host)' is not a loopback address: the endpoint has no authentication, so it listens on loopback only (127.0.0.1 or ::1); expose it through a local agent or reverse proxy")
                }
                cfg.metrics = m
            }
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(cfg.logLevel) else {
                throw d.error("log_level", "'\(cfg.logLevel)' is not a log level (trace, debug, info, notice, warning, error, critical)")
            }
            try d.rejectUnknownKeys()
        }
        if let s = try root.subtable("simulator") {
            if let seed = try s.int("seed") {
                guard seed >= 0 else { throw s.error("seed", "must be ≥ 0") }
                cfg.seed = UInt64(seed)
            }
            cfg.timeScale = try s.positive("time_scale", default: 1)
            guard cfg.timeScale <= 1000 else { throw s.error("time_scale", "must be ≤ 1000") }
            cfg.substep = try s.positive("substep_ms", default: 1) / 1000
            try s.rejectUnknownKeys()
        }
        if let r = try root.subtable("runlog") {
            cfg.runlog.enabled = try r.bool("enabled") ?? true
            cfg.runlog.samplePeriod = try r.positive("sample_period_s", default: 1)
            cfg.runlog.flushInterval = try r.positive("flush_interval_ms", default: 500) / 1000
            guard cfg.runlog.flushInterval <= 1 else { throw r.error("flush_interval_ms", "must be ≤ 1000 (a kill -9 may lose this much)") }
            cfg.runlog.retentionDays = try r.nonNegative("retention_days", default: 365)
            cfg.runlog.fullResolutionDays = try r.nonNegative("full_resolution_days", default: 14)
            cfg.runlog.downsamplePeriod = try r.positive("downsample_period_s", default: 60)
            guard cfg.runlog.downsamplePeriod >= 2 * cfg.runlog.samplePeriod, cfg.runlog.downsamplePeriod <= 86_400 else {
                throw r.error("downsample_period_s", "must be at least twice sample_period_s (\(fmt3(cfg.runlog.samplePeriod)) s) and at most 86400 s")
            }
            try r.rejectUnknownKeys()
        }
        if let a = try root.subtable("access") {
            for (key, apply) in [("observers", { (p: inout AccessPolicy, e: AccessPolicy.Entry) in p.observers = e }),
                                 ("operators", { (p: inout AccessPolicy, e: AccessPolicy.Entry) in p.operators = e }),
                                 ("admins", { (p: inout AccessPolicy, e: AccessPolicy.Entry) in p.admins = e })] {
                guard let list = try a.stringList(key) else { continue }
                switch AccessPolicy.entry(list) {
                case .success(let e): apply(&cfg.access, e)
                case .failure(let m): throw a.error(key, m.message)
                }
            }
            try a.rejectUnknownKeys()
        } else if let g = getgrnam("pressctl") {
            cfg.access.operators.gids.insert(g.pointee.gr_gid)
        }
        if let devs = try root.subtable("devices") {
            for name in devs.keys.sorted() {
                guard let t = try devs.subtable(name) else { continue }
                cfg.devices.append(try parseDevice(t, name: name))
            }
        }
        guard let channels = try root.subtable("channels") else {
            throw ConfigError(file: file, line: nil, key: "channels", message: "no channels configured: add a [channels.NAME] table")
        }
        for name in channels.keys.sorted() {
            guard let t = try channels.subtable(name) else { continue }
            cfg.channels.append(try parseChannel(t, name: name, loopRate: cfg.loopRate, devices: cfg.devices, hardware: cfg.backend == .hardware,
                                                 warnings: &cfg.warnings))
        }
        guard !cfg.channels.isEmpty else { throw channels.error(nil, "no channels configured: add a [channels.NAME] table") }
        if let m = try root.subtable("mqtt") { cfg.mqtt = try MQTTConfig.parse(m) }
        try root.rejectUnknownKeys()
        return cfg
    }

    static func parseDevice(_ t: TableReader, name: String) throws(ConfigError) -> DeviceConfig {
        guard let type = try t.string("type") else { throw t.error("type", "is required (modbus-tcp, modbus-rtu, gpio)") }
        if type == "gpio" {
            guard let chip = try t.string("chip") else { throw t.error("chip", "is required, e.g. \"gpiochip0\"") }
            var d = DeviceConfig(name: name, transport: nil, unit: 0, timeout: 0, retries: 0, pollRate: 0)
            d.gpioChip = chip
            d.consumer = try t.string("consumer") ?? "pressd"
            try t.rejectUnknownKeys()
            return d
        }
        let transport: ModbusTransport
        switch type {
        case "modbus-tcp":
            guard let host = try t.string("host") else { throw t.error("host", "is required") }
            let port = try t.int("port") ?? 502
            guard (1...65535).contains(port) else { throw t.error("port", "must be 1…65535") }
            transport = .tcp(host: host, port: port)
        case "modbus-rtu":
            guard let dev = try t.string("device") else { throw t.error("device", "is required, e.g. \"/dev/ttyUSB0\"") }
            let parity = try t.string("parity") ?? "N"
            guard ["N", "E", "O"].contains(parity) else { throw t.error("parity", "must be \"N\", \"E\" or \"O\"") }
            let dataBits = try t.int("data_bits") ?? 8
            guard (5...8).contains(dataBits) else { throw t.error("data_bits", "must be 5…8") }
            let stopBits = try t.int("stop_bits") ?? 1
            guard stopBits == 1 || stopBits == 2 else { throw t.error("stop_bits", "must be 1 or 2") }
            transport = .rtu(device: dev, baud: try t.int("baud") ?? 19200, parity: Character(parity), dataBits: dataBits,
                             stopBits: stopBits, rs485: try t.bool("rs485") ?? true)
        default: throw t.error("type", "'\(type)' is not a device type (modbus-tcp, modbus-rtu, gpio)")
        }
        let unit = try t.int("unit") ?? 1
        guard (0...247).contains(unit) else { throw t.error("unit", "must be 0…247") }
        var d = DeviceConfig(name: name, transport: transport, unit: unit,
                             timeout: try t.positive("timeout_ms", default: 200) / 1000,
                             retries: try t.int("retries") ?? 1, pollRate: try t.positive("poll_hz", default: 50))
        func interval(_ key: String) throws(ConfigError) -> Double? {
            guard let v = try t.double(key) else { return nil }
            guard v.isFinite, v >= 0, v <= 60 else { throw t.error(key, "must be 0…60 s (0: every cycle), found \(v)") }
            return v
        }
        if let v = try interval("readback_interval_s") { d.readbackInterval = v }
        if let v = try interval("rewrite_interval_s") { d.rewriteInterval = v }
        try t.rejectUnknownKeys()
        return d
    }

    /// The `device` key, which must name a GPIO device.
    static func gpioDevice(_ t: TableReader, _ devices: [DeviceConfig]) throws(ConfigError) -> String {
        guard let dev = try t.string("device") else { throw t.error("device", "is required (a [devices.*] of type gpio)") }
        guard devices.contains(where: { $0.name == dev && $0.gpioChip != nil }) else {
            throw t.error("device", "no GPIO device '\(dev)' (GPIO devices: \(devices.filter { $0.gpioChip != nil }.map(\.name).joined(separator: ", ")))")
        }
        return dev
    }

    /// Reads a register reference: device, unit, table, address, data type, word order,
    /// scale and offset. `id` names the signal in errors and health reports.
    static func parseRegister(_ t: TableReader, id: String, devices: [DeviceConfig], defaultTable: ModbusTable) throws(ConfigError) -> RegisterRef {
        guard let dev = try t.string("device") else { throw t.error("device", "is required (one of the [devices.*] names)") }
        guard let d = devices.first(where: { $0.name == dev && $0.transport != nil }) else {
            throw t.error("device", "no Modbus device '\(dev)' (Modbus devices: \(devices.filter { $0.transport != nil }.map(\.name).joined(separator: ", ")))")
        }
        guard let address = try t.int("address") else { throw t.error("address", "is required (0-based register address)") }
        guard (0...65535).contains(address) else { throw t.error("address", "must be 0…65535") }
        let unit = try t.int("unit") ?? d.unit
        guard (0...247).contains(unit) else { throw t.error("unit", "must be 0…247 (a Modbus unit id), found \(unit)") }
        let codec = RegisterCodec(type: try t.choice("data_type", default: RegisterType.u16),
                                  order: try t.choice("word_order", default: WordOrder.abcd),
                                  scale: try t.double("scale", default: 1), offset: try t.double("offset", default: 0))
        guard codec.scale != 0 else { throw t.error("scale", "must not be 0") }
        return RegisterRef(device: dev, signal: ModbusSignal(id: id, unit: unit, table: try t.choice("table", default: defaultTable),
                                                             address: address, codec: codec))
    }

    static func parseChannel(_ t: TableReader, name: String, loopRate: Double, devices: [DeviceConfig] = [], hardware: Bool = false,
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
        let rate0 = rate
        let ratio = loopRate / rate
        guard ratio >= 1, abs(ratio - ratio.rounded()) < 1e-9 else {
            throw t.error("loop_rate_hz", "must divide the daemon's loop_rate_hz (\(loopRate)) by a whole number")
        }
        var sim = SimChannelConfig()
        sim.cell.area = area

        // Actuator
        guard let a = try t.subtable("actuator") else { throw t.error("actuator", "is required ([channels.\(name).actuator])") }
        guard a.has("type") else { throw a.error("type", "is required (\(ActuatorKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
        let kind = try a.choice("type", default: ActuatorKind.springFixture)
        let defaultMax = kind == .springFixture ? 20_000.0 : 0.9
        let outMin = try a.double("output_min", default: 0)
        let outMax = try a.double("output_max", default: defaultMax)
        guard outMax > outMin else { throw a.error("output_max", "must be above output_min (\(outMin))") }
        let outRate = try a.positive("output_rate", default: kind == .springFixture ? 2500 : 1.0)
        let safe = try a.double("safe_output", default: outMin)
        guard safe >= outMin, safe <= outMax else { throw a.error("safe_output", "must lie within output_min…output_max (\(outMin)…\(outMax))") }
        let shutdown = try a.choice("shutdown", default: ShutdownAction.hold)
        let play = try a.double("play_mpa", default: 0)
        guard play.isFinite, play >= 0 else { throw a.error("play_mpa", "must be ≥ 0 MPa, found \(play)") }
        var hw = HardwareChannelConfig()
        if hardware {
            if try a.string("driver") == "stepper" {
                let dev = try gpioDevice(a, devices)
                let low = try a.bool("active_low") ?? false
                guard let step = try a.lineSpec("step", activeLow: low), let dir = try a.lineSpec("dir", activeLow: low) else {
                    throw a.error("step", "a stepper needs step and dir lines")
                }
                hw.stepper = (dev, StepperOutput(id: "\(name).stepper", step: step, dir: dir, enable: try a.lineSpec("enable", activeLow: low),
                                                 micronsPerStep: try a.requiredPositive("microns_per_step"),
                                                 maxRate: try a.positive("max_step_rate", default: 2000),
                                                 acceleration: try a.positive("acceleration", default: 8000)))
            } else if try a.string("driver") == "valves" {
                let dev = try gpioDevice(a, devices)
                let low = try a.bool("active_low") ?? false
                guard let inlet = try a.lineSpec("inlet", activeLow: low), let exhaust = try a.lineSpec("exhaust", activeLow: low) else {
                    throw a.error("inlet", "valves need inlet and exhaust lines")
                }
                guard outMin >= -1, outMax <= 1 else { throw a.error("output_max", "a valve pair's output is −1 (exhaust) … 1 (inlet)") }
                hw.valves = (dev, ValvePairOutput(id: "\(name).valves", inlet: inlet, exhaust: exhaust,
                                                  frequency: try a.positive("pwm_hz", default: 5),
                                                  minPulse: try a.positive("min_pulse_ms", default: 20) / 1000))
            } else {
                hw.actuator = try parseRegister(a, id: "\(name).actuator", devices: devices, defaultTable: .holding)
                guard hw.actuator!.signal.table == .holding || hw.actuator!.signal.table == .coil else {
                    throw a.error("table", "an actuator is written: holding or coil")
                }
            }
        }
        try a.rejectUnknownKeys()

        // Limits
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
        try l.rejectUnknownKeys()

        // Sensor
        guard let s = try t.subtable("sensor") else { throw t.error("sensor", "is required ([channels.\(name).sensor])") }
        let sensorType = try s.string("type") ?? "load-cell"
        guard sensorType == "load-cell" else { throw s.error("type", "'\(sensorType)' is not supported (load-cell)") }
        let range = try s.pair("range_n", default: (-50, 2000))
        let sensor = SensorLimits(minForce: range.0, maxForce: range.1,
                                  staleAfter: try s.positive("stale_after_ms", default: 250) / 1000,
                                  faultAction: try s.choice("fault_action", default: SafeAction.hold),
                                  frozenAfter: try s.nonNegative("frozen_after_s", default: 5),
                                  recoverAfter: try s.nonNegative("recover_after_s", default: 2),
                                  maxRecoveriesPerHour: try s.int("max_recoveries_per_hour") ?? 6)
        if sensor.faultAction == .ramp { throw s.error("fault_action", "'ramp' needs a working sensor; use hold or release") }
        if let e = sensor.validationErrors().first { throw s.error(e.field, e.message) }
        if let u = try s.double("nonuniformity_alarm_percent") {
            guard u > 0 else { throw s.error("nonuniformity_alarm_percent", "must be > 0") }
            hw.nonUniformityAlarm = u / 100
        }
        hw.nonUniformityMinForce = try s.double("nonuniformity_min_force_n")
        if let m = hw.nonUniformityMinForce, !(m >= 0 && m <= range.1) {
            throw s.error("nonuniformity_min_force_n", "must be within 0…\(range.1) N (range_n's upper bound)")
        }
        sim.loadCell.capacity = range.1
        sim.loadCell.noise = try s.nonNegative("noise_n", default: 0.2)
        sim.loadCell.resolution = try s.positive("resolution_n", default: 0.05)
        sim.loadCell.sampleRate = try s.positive("sample_rate_hz", default: 80)
        try s.rejectUnknownKeys()

        // PID
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
        pid.outputMin = outMin; pid.outputMax = outMax; pid.outputRateLimit = outRate
        let ff = Feedforward(gain: try p.double("feedforward_gain", default: 0), offset: try p.double("feedforward_offset", default: 0))
        if let e = pid.validationErrors().first {
            let keyMap = ["deadband": "deadband_mpa", "setpoint_ramp": "setpoint_ramp_mpa_per_s"]
            if ["output_min", "output_rate"].contains(e.field) { throw a.error(e.field, e.message) }
            throw p.error(keyMap[e.field] ?? e.field, e.message)
        }
        try p.rejectUnknownKeys()

        // Control strategy, autotune and adaptation.
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
            if strategy != .pid && !(ff.gain > 0) {
                throw c.error("strategy", "'\(strategy.rawValue)' needs the plant's nominal gain: set [channels.\(name).pid] feedforward_gain (output per MPa) or run 'pressctl tune \(name)' first with strategy = \"pid\"")
            }
            try c.rejectUnknownKeys()
        }

        // Soft-short detection on the cell voltage (on by default; it judges nothing
        // without a voltage and a current signal).
        var shortDetection = ShortDetectionSettings()
        if let v = try t.subtable("short_detection") {
            var d = shortDetection
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
            shortDetection = d
        }

        // Impedance-aware supervisor (opt-in).
        var supervisor: SupervisorSettings?
        if let v = try t.subtable("supervisor") {
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
        }

        // Hardware wiring
        if hardware {
            let cells = try t.tables("load_cells")
            guard !cells.isEmpty else { throw t.error("load_cells", "a hardware channel needs at least one [[channels.\(name).load_cells]]") }
            for (i, c) in cells.enumerated() {
                if try c.string("driver") == "hx711" {
                    let dev = try gpioDevice(c, devices)
                    guard let clk = try c.lineSpec("clock", activeLow: false), let dat = try c.lineSpec("data", activeLow: false) else {
                        throw c.error("clock", "an HX711 needs clock and data lines")
                    }
                    let gain: HX711Gain
                    switch try c.string("gain") ?? "a128" {
                    case "a128": gain = .a128
                    case "b32": gain = .b32
                    case "a64": gain = .a64
                    case let g: throw c.error("gain", "'\(g)' is not an HX711 gain (a128, a64, b32)")
                    }
                    hw.hx711s.append((dev, HX711Input(id: "\(name).load_cells[\(i)]", clock: clk, data: dat, gain: gain,
                                                      offset: try c.double("offset_counts", default: 0),
                                                      scale: try c.requiredDouble("scale_n_per_count"))))
                } else {
                    _ = try c.string("driver")
                    let ref = try parseRegister(c, id: "\(name).load_cells[\(i)]", devices: devices, defaultTable: .input)
                    hw.loadCells.append((ref, try c.choice("quantity", default: ReadQuantity.forceN)))
                }
                try c.rejectUnknownKeys()
            }
            for (i, g) in try t.tables("signals").enumerated() {
                guard g.has("role") else { throw g.error("role", "is required (\(SignalRole.allCases.map(\.rawValue).joined(separator: ", ")))") }
                let role = try g.choice("role", default: SignalRole.temperatureC)
                if try g.string("driver") == "gpio" {
                    let dev = try gpioDevice(g, devices)
                    guard let spec = try g.lineSpec("line", activeLow: try g.bool("active_low") ?? false) else { throw g.error("line", "is required") }
                    hw.gpioSignals.append((role, dev, "\(name).signals[\(i)]", spec))
                } else {
                    hw.signals.append((role, try parseRegister(g, id: "\(name).signals[\(i)]", devices: devices, defaultTable: .input)))
                }
                try g.rejectUnknownKeys()
            }
            for (i, m) in try t.tables("mirror").enumerated() {
                guard m.has("quantity") else { throw m.error("quantity", "is required (\(RegisterMirror.Quantity.allCases.map(\.rawValue).joined(separator: ", ")))") }
                let quantity = try m.choice("quantity", default: RegisterMirror.Quantity.pressureMPa)
                let ref = try parseRegister(m, id: "\(name).mirror[\(i)]", devices: devices, defaultTable: .holding)
                guard ref.signal.table == .holding else { throw m.error("table", "a mirror is written: holding") }
                let rate = try m.positive("rate_hz", default: 10)
                guard rate <= rate0 else { throw m.error("rate_hz", "must be ≤ the channel's loop rate (\(rate0) Hz)") }
                // Never onto a register the channel reads or drives: a mirror on the
                // actuator's output register would command the actuator with the pressure.
                let others = (hw.actuator.map { [("the actuator", $0)] } ?? []) + hw.loadCells.map { ("a load cell", $0.ref) } + hw.signals.map { ("the \($0.role.rawValue) signal", $0.ref) }
                    + hw.mirrors.map { ("another mirror", $0.ref) }
                for (what, o) in others where o.device == ref.device && o.signal.unit == ref.signal.unit && o.signal.table == ref.signal.table
                    && o.signal.address < ref.signal.address + ref.signal.count && ref.signal.address < o.signal.address + o.signal.count {
                    throw m.error("address", "holding register \(ref.signal.address) of unit \(ref.signal.unit) on '\(ref.device)' is \(what)'s (address \(o.signal.address)): a mirror needs a register of its own")
                }
                hw.mirrors.append(RegisterMirror(quantity: quantity, ref: ref, rate: rate, invalidValue: try m.double("invalid_value")))
                try m.rejectUnknownKeys()
            }
        }

        // Simulated plant
        if let m = try t.subtable("sim") {
            try parseSim(m, kind: kind, into: &sim)
            try m.rejectUnknownKeys()
        }
        var spectra: SpectraConfig?
        if let m = try t.subtable("impedance") {
            guard let dir = try m.string("spectra_dir") else { throw m.error("spectra_dir", "is required: the directory the analyser writes this channel's spectra to") }
            guard dir.hasPrefix("/") else { throw m.error("spectra_dir", "must be an absolute path (got '\(dir)')") }
            var s = SpectraConfig(directory: dir)
            if let z = try m.string("time_zone") {
                guard TimeZone(identifier: z) != nil else { throw m.error("time_zone", "'\(z)' is not a time zone name (e.g. Europe/Berlin, UTC)") }
                s.timeZone = z
            }
            if let o = try m.string("date_order") {
                guard let order = DateOrder(rawValue: o) else {
                    throw m.error("date_order", "'\(o)' is not a date order: month_first (4/23/2018 is 23 April) or day_first (17.7.2024 is 17 July)")
                }
                s.dateOrder = order
            }
            s.maxRelativeError = try m.positive("max_relative_error", default: 0.25)
            guard s.maxRelativeError <= 1 else { throw m.error("max_relative_error", "must be ≤ 1") }
            s.requireKramersKronig = try m.bool("require_kramers_kronig") ?? true
            try m.rejectUnknownKeys()
            spectra = s
        }
        try t.rejectUnknownKeys()

        try checkCapacity(t, l: l, s: s, a: a, name: name, area: area, limits: limits, sensor: sensor, kind: kind, outMax: outMax,
                          sim: hardware ? nil : sim, preset: preset, warnings: &warnings, pid: p, feedforward: ff)

        let params = ChannelParameters(name: name, cellArea: area, pid: pid, feedforward: ff, limits: limits,
                                       sensor: sensor, safeOutput: safe, band: band)
        var params2 = params
        params2.excursionMinDuration = excursionMinDuration
        params2.excursionMinDepth = excursionMinDepth
        params2.nonUniformityAlarm = hw.nonUniformityAlarm
        params2.nonUniformityMinForce = hw.nonUniformityMinForce
        params2.strategy = strategy
        params2.autotune = autotune
        params2.adaptation = adaptation
        params2.supervisor = supervisor
        params2.shortDetection = shortDetection.enabled ? shortDetection : nil
        params2.actuatorPlay = play
        var channel = ChannelConfig(name: name, description: description, actuator: kind, shutdown: shutdown,
                                    divider: Int(ratio.rounded()), control: params2, sim: sim, hardware: hw)
        channel.preset = preset?.name
        channel.pushedStaleAfter = pushedStale
        channel.spectra = spectra
        return channel
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
    static func checkCapacity(_ t: TableReader, l: TableReader, s: TableReader, a: TableReader, name: String, area: Double,
                              limits: PressureLimits, sensor: SensorLimits, kind: ActuatorKind, outMax: Double,
                              sim: SimChannelConfig?, preset: ChemistryPreset?, warnings: inout [String],
                              pid: TableReader? = nil, feedforward: Feedforward = .init()) throws(ConfigError) {
        func at(_ r: TableReader, _ key: String) -> String {
            let e = r.error(key, "")
            return (e.key ?? key) + (e.line.map { " (line \($0))" } ?? "")
        }
        func n(_ v: Double) -> String { fixed(v) }
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
            guard let pid, feedforward.gain > 0 else { return }
            let reachMpa = (outMax - feedforward.offset) / feedforward.gain
            if reachMpa < limits.maxSetpoint {
                warnings.append(l.error(maxKey, "max \(n(limits.maxSetpoint)) MPa is beyond what the actuator reaches by its nominal gain: (output_max \(g(outMax)) − feedforward_offset \(g(feedforward.offset))) ÷ feedforward_gain \(g(feedforward.gain)) = \(n(reachMpa)) MPa ("
                                        + [at(a, "output_max"), at(pid, "feedforward_gain"), at(pid, "feedforward_offset")].joined(separator: ", ") + ")").description)
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

    /// A number without trailing zeros, for messages.
    static func fixed(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        return r == r.rounded() && abs(r) < 1e12 ? String(Int(r)) : String(r)
    }

    static func parseSim(_ m: TableReader, kind: ActuatorKind, into sim: inout SimChannelConfig) throws(ConfigError) {
        sim.current = try m.double("current_ma", default: 0)
        sim.cyclePeriod = try m.nonNegative("cycle_period_s", default: 0)
        sim.ambient = try m.double("ambient_c", default: 25)
        sim.impedanceInterval = try m.nonNegative("impedance_interval_s", default: 0)
        sim.impedanceAcquisition = try m.positive("impedance_acquisition_s", default: 60)
        if sim.impedanceInterval > 0 && sim.impedanceAcquisition > sim.impedanceInterval {
            throw m.error("impedance_acquisition_s", "must be ≤ impedance_interval_s (\(sim.impedanceInterval) s): a spectrum cannot take longer than the time between spectra")
        }
        sim.frameGrowthPerKelvin = try m.double("frame_growth_um_per_k", default: 1.2)
        var c = sim.cell
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
        sim.cell = c
        switch kind {
        case .springFixture:
            var s = sim.spring
            s.springRate = try m.positive("spring_rate_n_per_um", default: s.springRate)
            s.micronsPerStep = try m.positive("microns_per_step", default: s.micronsPerStep)
            s.maxStepRate = try m.positive("max_step_rate", default: s.maxStepRate)
            s.backlash = try m.nonNegative("backlash_um", default: s.backlash)
            s.gap = try m.nonNegative("gap_um", default: s.gap)
            s.travel = try m.positive("travel_um", default: s.travel)
            sim.spring = s
        case .pneumatic:
            var p = sim.pneumatic
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
            sim.pneumatic = p
        }
    }
}
