/// A measured value and the monotonic time at which the sensor produced it.
public struct Sample: Sendable, Equatable, Codable {
    public var value: Double
    /// Monotonic seconds (the same clock the loop uses).
    public var time: Double
    public init(value: Double, time: Double) { self.value = value; self.time = time }
}

/// A quantity a channel measures: from its backend (a register, an HX711, the simulator)
/// or pushed by other software. The one table of how each signal appears at every edge
/// (``descriptor``): status, the run log, the CSV export, the metrics, MQTT and the report
/// iterate ``Signal/allCases`` instead of naming fields, so a new signal is a case here, a
/// row in ``descriptor`` and a source (a register role is automatic; the simulator says
/// what it measures).
public enum Signal: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Total force on the cell, N (the sum of the load cells).
    case force
    /// Cell temperature, °C.
    case temperature
    /// Cell current, mA (positive: charging).
    case current
    /// Interfacial resistance, Ω·cm².
    case interfacialResistance
    /// Bulk (electrolyte) resistance, Ω·cm², from fitted spectra.
    case bulkResistance
    /// Cell (terminal) voltage, V.
    case voltage
    /// Stack thickness from a displacement gauge, µm (its zero wherever the gauge was zeroed).
    case thickness

    /// How a signal appears at each edge.
    public struct Descriptor: Sendable, Equatable {
        /// What it is, for people: "cell temperature".
        public let label: String
        /// Its unit as printed: "°C".
        public let unit: String
        /// The key in `status`, sample events, MQTT payloads, the run log's `samples`
        /// table and its CSV export: "temperature_c".
        public let key: String
        /// The register role in `[[channels.X.signals]]` (nil: not read from a register).
        public let role: String?
        /// Other software may push it (`push_signals`, under ``key``).
        public let pushable: Bool
        /// The Prometheus gauge and the factor from the unit to its base SI unit
        /// (nil: not exported).
        public let metric: String?
        public let metricScale: Double
        /// Decimals that carry information (what `status` and the report round to).
        public let decimals: Int
        /// Physically possible values: a pushed value outside is refused, not stored.
        public let plausible: ClosedRange<Double>
        /// The run log's column (the `samples` table; a signal without a column of its own
        /// in the first schema gets one named by ``key`` when the log is opened).
        public var logColumn: String { key == "interfacial_resistance_ohm_cm2" ? "resistance_ohm_cm2" : key }
    }

    /// The table.
    public var descriptor: Descriptor {
        switch self {
        case .force:
            Descriptor(label: "force", unit: "N", key: "force_n", role: nil, pushable: false,
                       metric: "pressd_load_cell_force_newtons", metricScale: 1, decimals: 2, plausible: -1e7...1e7)
        case .temperature:
            Descriptor(label: "cell temperature", unit: "°C", key: "temperature_c", role: "temperature_c", pushable: true,
                       metric: "pressd_cell_temperature_celsius", metricScale: 1, decimals: 2, plausible: -273.15...1000)
        case .current:
            Descriptor(label: "cell current", unit: "mA", key: "current_ma", role: "current_ma", pushable: true,
                       metric: "pressd_cell_current_amperes", metricScale: 1e-3, decimals: 4, plausible: -1e6...1e6)
        case .interfacialResistance:
            Descriptor(label: "interfacial resistance", unit: "Ω·cm²", key: "interfacial_resistance_ohm_cm2", role: "impedance_ohm_cm2",
                       pushable: true, metric: "pressd_interfacial_resistance_ohm_square_metres", metricScale: 1e-4, decimals: 3, plausible: 1e-12...1e7)
        case .bulkResistance:
            Descriptor(label: "bulk resistance", unit: "Ω·cm²", key: "bulk_resistance_ohm_cm2", role: "bulk_resistance_ohm_cm2",
                       pushable: true, metric: "pressd_bulk_resistance_ohm_square_metres", metricScale: 1e-4, decimals: 3, plausible: 1e-12...1e7)
        case .voltage:
            Descriptor(label: "cell voltage", unit: "V", key: "voltage_v", role: "voltage_v", pushable: true,
                       metric: "pressd_cell_voltage_volts", metricScale: 1, decimals: 4, plausible: -1000...1000)
        case .thickness:
            Descriptor(label: "stack thickness", unit: "µm", key: "thickness_um", role: "thickness_um", pushable: true,
                       metric: "pressd_stack_thickness_metres", metricScale: 1e-6, decimals: 3, plausible: 0...1e6)
        }
    }

    public var description: String { descriptor.key }

    /// The signal read from registers of role `role`.
    public static func withRole(_ role: String) -> Signal? { allCases.first { $0.descriptor.role == role } }
    /// The signals other software may push.
    public static var pushable: [Signal] { allCases.filter(\.descriptor.pushable) }
}

/// One dated value per ``Signal``, as a fixed frame indexed by the signal.
public struct SignalFrame: Sendable, Equatable {
    private var samples: [Sample?] = Array(repeating: nil, count: Signal.allCases.count)
    public init() {}
    public subscript(_ s: Signal) -> Sample? {
        get { samples[s.rawValue] }
        set { samples[s.rawValue] = newValue }
    }
    /// The signals present, in table order.
    public var present: [(signal: Signal, sample: Sample)] {
        Signal.allCases.compactMap { s in samples[s.rawValue].map { (s, $0) } }
    }
}

/// What the backend read for one channel in one tick: the analog signals (``SignalFrame``)
/// and the digital inputs. Auxiliary signals are optional: not every rig measures them.
public struct ChannelReadings: Sendable, Equatable {
    public var signals = SignalFrame()
    /// The cycler's "charging" digital signal, if wired.
    public var charging: Bool?
    /// The emergency-stop input (true = stop), if wired.
    public var emergencyStop: Bool?
    /// Forces of the individual load cells when there are several, N.
    public var loadCellForces: [Double]?
    /// A travel limit switch, if wired (true = at the limit).
    public var limitSwitch: Bool?
    /// The force reading is deliberately altered (a simulated sensor bias or gain
    /// injected by `sim`): an excursion then is the injection's, not the cell's.
    public var altered = false

    public init(force: Sample? = nil, temperature: Sample? = nil, current: Sample? = nil, interfacialResistance: Sample? = nil,
                voltage: Sample? = nil, charging: Bool? = nil, emergencyStop: Bool? = nil) {
        signals[.force] = force; signals[.temperature] = temperature; signals[.current] = current
        signals[.interfacialResistance] = interfacialResistance; signals[.voltage] = voltage
        self.charging = charging; self.emergencyStop = emergencyStop
    }

    public subscript(_ s: Signal) -> Sample? {
        get { signals[s] }
        set { signals[s] = newValue }
    }

    // The signals the control core itself reasons about, by name.
    /// Total force on the cell, N. `nil` when the sensor has never delivered.
    public var force: Sample? { get { signals[.force] } set { signals[.force] = newValue } }
    /// Cell temperature, °C.
    public var temperature: Sample? { get { signals[.temperature] } set { signals[.temperature] = newValue } }
    /// Cell current, mA (positive = charging).
    public var current: Sample? { get { signals[.current] } set { signals[.current] = newValue } }
    /// Interfacial resistance, Ω·cm².
    public var interfacialResistance: Sample? { get { signals[.interfacialResistance] } set { signals[.interfacialResistance] = newValue } }
    /// Bulk (electrolyte) resistance, Ω·cm², where spectra are fitted.
    public var bulkResistance: Sample? { get { signals[.bulkResistance] } set { signals[.bulkResistance] = newValue } }
    /// Cell (terminal) voltage, V.
    public var voltage: Sample? { get { signals[.voltage] } set { signals[.voltage] = newValue } }
    /// Stack thickness, µm.
    public var thickness: Sample? { get { signals[.thickness] } set { signals[.thickness] = newValue } }
}
