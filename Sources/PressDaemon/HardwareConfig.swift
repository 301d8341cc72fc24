import Foundation
import PressCore
import PressDrivers

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
public enum SignalRole: Sendable, Equatable, RawRepresentable, CaseIterable {
    /// An analog signal of the table (``Signal``), by its register role: `temperature_c`,
    /// `current_ma`, `impedance_ohm_cm2`, `bulk_resistance_ohm_cm2`, `voltage_v`, `thickness_um`.
    case signal(Signal)
    /// Digital inputs.
    case charging, emergencyStop, limitSwitch

    public static var allCases: [SignalRole] {
        Signal.allCases.filter { $0.descriptor.role != nil }.map { .signal($0) } + [.charging, .emergencyStop, .limitSwitch]
    }
    public init?(rawValue: String) {
        if let s = Signal.withRole(rawValue) { self = .signal(s); return }
        switch rawValue {
        case "charging": self = .charging
        case "emergency_stop": self = .emergencyStop
        case "limit_switch": self = .limitSwitch
        default: return nil
        }
    }
    public var rawValue: String {
        switch self {
        case .signal(let s): s.descriptor.role ?? s.descriptor.key
        case .charging: "charging"
        case .emergencyStop: "emergency_stop"
        case .limitSwitch: "limit_switch"
        }
    }
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

extension DeviceConfig {
    /// Reads `[devices.NAME]`: a Modbus TCP or RTU device (or bus), or a GPIO chip.
    static func parse(_ t: TableReader, name: String) throws(ConfigError) -> DeviceConfig {
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
}

extension RegisterRef {
    /// Reads a register reference: device, unit, table, address, data type, word order,
    /// scale and offset. `id` names the signal in errors and health reports.
    static func parse(_ t: TableReader, id: String, devices: [DeviceConfig], defaultTable: ModbusTable) throws(ConfigError) -> RegisterRef {
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
}

extension HardwareChannelConfig {
    /// The `device` key, which must name a GPIO device.
    static func gpioDevice(_ t: TableReader, _ devices: [DeviceConfig]) throws(ConfigError) -> String {
        guard let dev = try t.string("device") else { throw t.error("device", "is required (a [devices.*] of type gpio)") }
        guard devices.contains(where: { $0.name == dev && $0.gpioChip != nil }) else {
            throw t.error("device", "no GPIO device '\(dev)' (GPIO devices: \(devices.filter { $0.gpioChip != nil }.map(\.name).joined(separator: ", ")))")
        }
        return dev
    }

    /// The actuator's wiring in `[channels.NAME.actuator]`: a stepper or a valve pair on a
    /// GPIO device (`driver`), else a Modbus register (holding or coil).
    mutating func parseActuator(_ a: TableReader, channel name: String, devices: [DeviceConfig],
                                outputMin: Double, outputMax: Double) throws(ConfigError) {
        if try a.string("driver") == "stepper" {
            let dev = try Self.gpioDevice(a, devices)
            let low = try a.bool("active_low") ?? false
            guard let step = try a.lineSpec("step", activeLow: low), let dir = try a.lineSpec("dir", activeLow: low) else {
                throw a.error("step", "a stepper needs step and dir lines")
            }
            stepper = (dev, StepperOutput(id: "\(name).stepper", step: step, dir: dir, enable: try a.lineSpec("enable", activeLow: low),
                                          micronsPerStep: try a.requiredPositive("microns_per_step"),
                                          maxRate: try a.positive("max_step_rate", default: 2000),
                                          acceleration: try a.positive("acceleration", default: 8000)))
        } else if try a.string("driver") == "valves" {
            let dev = try Self.gpioDevice(a, devices)
            let low = try a.bool("active_low") ?? false
            guard let inlet = try a.lineSpec("inlet", activeLow: low), let exhaust = try a.lineSpec("exhaust", activeLow: low) else {
                throw a.error("inlet", "valves need inlet and exhaust lines")
            }
            guard outputMin >= -1, outputMax <= 1 else { throw a.error("output_max", "a valve pair's output is −1 (exhaust) … 1 (inlet)") }
            valves = (dev, ValvePairOutput(id: "\(name).valves", inlet: inlet, exhaust: exhaust,
                                           frequency: try a.positive("pwm_hz", default: 5),
                                           minPulse: try a.positive("min_pulse_ms", default: 20) / 1000))
        } else {
            actuator = try RegisterRef.parse(a, id: "\(name).actuator", devices: devices, defaultTable: .holding)
            guard actuator!.signal.table == .holding || actuator!.signal.table == .coil else {
                throw a.error("table", "an actuator is written: holding or coil")
            }
        }
    }

    /// The channel's load cells, auxiliary signals and mirrors (`[[channels.NAME.load_cells]]`,
    /// `[[….signals]]`, `[[….mirror]]`); `channelRate` is the channel's loop rate, Hz.
    mutating func parseWiring(_ t: TableReader, channel name: String, devices: [DeviceConfig], channelRate: Double) throws(ConfigError) {
        let cells = try t.tables("load_cells")
        guard !cells.isEmpty else { throw t.error("load_cells", "a hardware channel needs at least one [[channels.\(name).load_cells]]") }
        for (i, c) in cells.enumerated() {
            if try c.string("driver") == "hx711" {
                let dev = try Self.gpioDevice(c, devices)
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
                hx711s.append((dev, HX711Input(id: "\(name).load_cells[\(i)]", clock: clk, data: dat, gain: gain,
                                               offset: try c.double("offset_counts", default: 0),
                                               scale: try c.requiredDouble("scale_n_per_count"))))
            } else {
                _ = try c.string("driver")
                let ref = try RegisterRef.parse(c, id: "\(name).load_cells[\(i)]", devices: devices, defaultTable: .input)
                loadCells.append((ref, try c.choice("quantity", default: ReadQuantity.forceN)))
            }
            try c.rejectUnknownKeys()
        }
        for (i, g) in try t.tables("signals").enumerated() {
            guard g.has("role") else { throw g.error("role", "is required (\(SignalRole.allCases.map(\.rawValue).joined(separator: ", ")))") }
            let role = try g.choice("role", default: SignalRole.charging)
            if try g.string("driver") == "gpio" {
                let dev = try Self.gpioDevice(g, devices)
                guard let spec = try g.lineSpec("line", activeLow: try g.bool("active_low") ?? false) else { throw g.error("line", "is required") }
                gpioSignals.append((role, dev, "\(name).signals[\(i)]", spec))
            } else {
                signals.append((role, try RegisterRef.parse(g, id: "\(name).signals[\(i)]", devices: devices, defaultTable: .input)))
            }
            try g.rejectUnknownKeys()
        }
        for (i, m) in try t.tables("mirror").enumerated() {
            guard m.has("quantity") else { throw m.error("quantity", "is required (\(RegisterMirror.Quantity.allCases.map(\.rawValue).joined(separator: ", ")))") }
            let quantity = try m.choice("quantity", default: RegisterMirror.Quantity.pressureMPa)
            let ref = try RegisterRef.parse(m, id: "\(name).mirror[\(i)]", devices: devices, defaultTable: .holding)
            guard ref.signal.table == .holding else { throw m.error("table", "a mirror is written: holding") }
            let rate = try m.positive("rate_hz", default: 10)
            guard rate <= channelRate else { throw m.error("rate_hz", "must be ≤ the channel's loop rate (\(channelRate) Hz)") }
            // Never onto a register the channel reads or drives: a mirror on the
            // actuator's output register would command the actuator with the pressure.
            let others = (actuator.map { [("the actuator", $0)] } ?? []) + loadCells.map { ("a load cell", $0.ref) } + signals.map { ("the \($0.role.rawValue) signal", $0.ref) }
                + mirrors.map { ("another mirror", $0.ref) }
            for (what, o) in others where o.device == ref.device && o.signal.unit == ref.signal.unit && o.signal.table == ref.signal.table
                && o.signal.address < ref.signal.address + ref.signal.count && ref.signal.address < o.signal.address + o.signal.count {
                throw m.error("address", "holding register \(ref.signal.address) of unit \(ref.signal.unit) on '\(ref.device)' is \(what)'s (address \(o.signal.address)): a mirror needs a register of its own")
            }
            mirrors.append(RegisterMirror(quantity: quantity, ref: ref, rate: rate, invalidValue: try m.double("invalid_value")))
            try m.rejectUnknownKeys()
        }
    }
}
