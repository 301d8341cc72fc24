import Foundation

/// Constants of the control-socket protocol. See `docs/protocol.md`.
public enum ControlProtocol {
    /// The release of pressd and pressctl (one place for both programs, `hello` and
    /// `status`).
    public static let release = "0.3.0"
    /// Bumped on any incompatible change of the wire format.
    public static let version = 1
    /// Largest accepted message (one JSON line, without the newline), bytes.
    public static let maxMessageBytes = 64 * 1024
    /// Server-pushed sample events per second a subscription may ask for.
    public static let subscriptionRateRange: ClosedRange<Double> = 0.1...100

    /// The methods a version-1 server answers, from ``MethodTable``.
    public static var methods: [String] { MethodTable.all.map(\.name) }

    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}

/// A request id: an integer or a string, echoed unchanged in the reply.
public enum RequestID: Codable, Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .string(let s): try c.encode(s)
        }
    }
    public var description: String {
        switch self {
        case .int(let i): return "\(i)"
        case .string(let s): return "\"\(s)\""
        }
    }
}

/// Machine-readable error codes. Stable strings; see `docs/protocol.md`.
public enum ErrorCode: String, Codable, Sendable {
    /// The line is not valid JSON.
    case parseError = "parse_error"
    /// Valid JSON but not a request object (missing `method`, over-long line, …).
    case invalidRequest = "invalid_request"
    case unknownMethod = "unknown_method"
    /// Parameters missing or of the wrong type.
    case invalidParams = "invalid_params"
    case unknownChannel = "unknown_channel"
    /// A value outside the channel's configured limits.
    case outOfRange = "out_of_range"
    /// The channel has latched faults; acknowledge them first.
    case faultLatched = "fault_latched"
    /// The control loop's command inbox is full; retry.
    case busy
    /// The control loop did not answer in time.
    case timeout
    /// The method exists but is not available with this backend or configuration.
    case unavailable
    /// The peer's uid/groups do not have the role the method needs.
    case permissionDenied = "permission_denied"
    /// A program file that does not parse or does not fit the channel.
    case invalidProgram = "invalid_program"
    /// No program is loaded, or it is not in a state that allows the command.
    case noProgram = "no_program"
    /// The command would be unsafe or cannot run in the channel's present state (the
    /// message says why), e.g. an autotune on a channel that is not settled.
    case refused
    /// The connection was dropped: its peer left its replies unread too long (one
    /// line, then the connection closes).
    case overloaded
    /// The run log cannot write now (a full disk): what was asked is kept in memory and
    /// written when it can; the message says so.
    case storage
    case internalError = "internal"
}

/// An excursion out of the band: times on the status clock (`time_s`), MPa.
public struct ExcursionInfo: Codable, Sendable, Equatable {
    public var startS: Double
    public var endS: Double?
    public var setpointMpa: Double
    public var worstErrorMpa: Double
    /// `fault`, `saturation`, `setpoint_change` or `disturbance`.
    public var cause: String
    public init(startS: Double, endS: Double?, setpointMpa: Double, worstErrorMpa: Double, cause: String) {
        self.startS = startS; self.endS = endS; self.setpointMpa = setpointMpa; self.worstErrorMpa = worstErrorMpa; self.cause = cause
    }
}

/// Counts of finished excursions since the daemon started.
public struct ExcursionStatsInfo: Codable, Sendable, Equatable {
    /// Every excursion; `brief`: of those, the ones too short and shallow to be recorded
    /// as events (`excursion_min_s`, `excursion_min_percent`).
    public var count: Int
    public var brief: Int?
    public var timeOutOfBandS: Double
    public var longestS: Double
    public var worstAbsErrorMpa: Double
    public init(count: Int, timeOutOfBandS: Double, longestS: Double, worstAbsErrorMpa: Double) {
        self.count = count; self.timeOutOfBandS = timeOutOfBandS; self.longestS = longestS; self.worstAbsErrorMpa = worstAbsErrorMpa
    }
}

/// A structured error reply.
public struct ErrorBody: Codable, Sendable, Error, Equatable {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) { self.code = code; self.message = message }
}

/// The first two keys of every request, decoded before the parameters.
public struct RequestHead: Codable, Sendable {
    public var id: RequestID?
    public var method: String
    public init(id: RequestID?, method: String) { self.id = id; self.method = method }
}

/// A request with typed parameters, for encoding on the client side.
public struct Request<Params: Encodable>: Encodable {
    public var id: RequestID
    public var method: String
    public var params: Params
    public init(id: RequestID, method: String, params: Params) { self.id = id; self.method = method; self.params = params }
}

/// Decodes only `params` from a request line.
public struct ParamsOnly<Params: Decodable>: Decodable {
    public var params: Params
}

/// Empty parameters.
public struct NoParams: Codable, Sendable { public init() {} }

/// A reply to a request: exactly one of `result` and `error` is present.
public struct Reply<Result: Codable>: Codable {
    public var id: RequestID?
    public var result: Result?
    public var error: ErrorBody?
    public init(id: RequestID?, result: Result) { self.id = id; self.result = result }
    public init(id: RequestID?, error: ErrorBody) { self.id = id; self.error = error }
}

// MARK: Parameters

public struct ChannelParams: Codable, Sendable {
    public var channel: String
    public init(channel: String) { self.channel = channel }
}

public struct OptionalChannelParams: Codable, Sendable {
    public var channel: String?
    public init(channel: String? = nil) { self.channel = channel }
}

/// `gap`: hold the channel's stack thickness (constant-gap, constant-volume mode) at
/// `thickness_um`, or where it is now when absent; the pressure is then whatever the
/// cell develops. Over-pressure and the other trips stay active; `set` returns to
/// pressure regulation without a bump.
public struct GapParams: Codable, Sendable {
    public var channel: String
    /// The stack thickness to hold, µm (the thickness gauge's reading); nil: as now.
    public var thicknessUm: Double?
    public init(channel: String, thicknessUm: Double? = nil) { self.channel = channel; self.thicknessUm = thicknessUm }
}

public struct SetParams: Codable, Sendable {
    public var channel: String
    public var value: Double
    /// One of `Pa`, `kPa`, `MPa`, `bar`, `psi` (stack pressure) or `N`, `kN` (force on
    /// the cell, converted through the channel's cell area).
    public var unit: String
    /// Setpoint ramp for this change, MPa/s; absent uses the channel's configured ramp.
    public var rampMpaPerS: Double?
    public init(channel: String, value: Double, unit: String, rampMpaPerS: Double? = nil) {
        self.channel = channel; self.value = value; self.unit = unit; self.rampMpaPerS = rampMpaPerS
    }
}

public struct SubscribeParams: Codable, Sendable {
    public var channels: [String]?
    public var rateHz: Double
    public init(channels: [String]? = nil, rateHz: Double) { self.channels = channels; self.rateHz = rateHz }
}

public struct UnsubscribeParams: Codable, Sendable {
    public var subscription: Int
    public init(subscription: Int) { self.subscription = subscription }
}

/// Disturbances for the simulated rig (only with `backend = "simulator"`).
public struct SimInjectParams: Codable, Sendable {
    public var channel: String
    public var forceBiasN: Double?
    public var sensorDisconnected: Bool?
    public var ambientC: Double?
    public var supplyMpa: Double?
    public var currentMa: Double?
    public var cyclePeriodS: Double?
    public var thicknessStepUm: Double?
    public var stallS: Double?
    public var emergencyStop: Bool?
    public var charging: Bool?
    public var forceGain: Double?
    /// Forces a soft short: a shunt of this many Ω across the cell.
    public var shortOhm: Double?
    public init(channel: String, forceBiasN: Double? = nil, forceGain: Double? = nil, sensorDisconnected: Bool? = nil, ambientC: Double? = nil,
                supplyMpa: Double? = nil, currentMa: Double? = nil, cyclePeriodS: Double? = nil, thicknessStepUm: Double? = nil,
                stallS: Double? = nil, emergencyStop: Bool? = nil, charging: Bool? = nil, shortOhm: Double? = nil) {
        self.shortOhm = shortOhm
        self.channel = channel; self.forceBiasN = forceBiasN; self.sensorDisconnected = sensorDisconnected
        self.ambientC = ambientC; self.supplyMpa = supplyMpa; self.currentMa = currentMa
        self.cyclePeriodS = cyclePeriodS; self.thicknessStepUm = thicknessStepUm
        self.stallS = stallS; self.emergencyStop = emergencyStop; self.charging = charging
        self.forceGain = forceGain
    }

    /// What each number may be: a disturbance a real rig could meet, never one that
    /// breaks the simulator (a stall of hours, a negative gain).
    public static let bounds: [(key: String, range: ClosedRange<Double>, value: @Sendable (SimInjectParams) -> Double?)] = [
        ("force_bias_n", -1e6...1e6, \.forceBiasN), ("force_gain", 0.01...10, \.forceGain),
        ("ambient_c", -50...150, \.ambientC), ("supply_mpa", 0...10, \.supplyMpa),
        ("current_ma", -1e5...1e5, \.currentMa), ("cycle_period_s", 0.1...1e6, \.cyclePeriodS),
        ("thickness_step_um", -1000...1000, \.thicknessStepUm), ("stall_s", 0...60, \.stallS),
        ("short_ohm", 0.01...1e6, \.shortOhm),
    ]

    /// The first parameter outside its bounds, as an error message.
    public func validationError() -> String? {
        for b in Self.bounds {
            guard let v = b.value(self) else { continue }
            if !v.isFinite || !b.range.contains(v) { return "\(b.key) \(v) is outside \(b.range.lowerBound)…\(b.range.upperBound)" }
        }
        return nil
    }
}

// MARK: Results

public struct HelloResult: Codable, Sendable {
    public var server: String
    public var version: String
    public var `protocol`: Int
    public var methods: [String]
    public var channels: [String]
    public var backend: String
    public var maxMessageBytes: Int
    public init(server: String, version: String, protocol: Int, methods: [String], channels: [String], backend: String, maxMessageBytes: Int) {
        self.server = server; self.version = version; self.protocol = `protocol`; self.methods = methods
        self.channels = channels; self.backend = backend; self.maxMessageBytes = maxMessageBytes
    }
}

/// The first line the server sends on every connection.
public struct HelloMessage: Codable, Sendable {
    public var hello: HelloResult
    public init(hello: HelloResult) { self.hello = hello }
}

public struct FaultInfo: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public var active: Bool
    /// Seconds since the daemon started.
    public var raisedAtS: Double
    public init(code: String, message: String, active: Bool, raisedAtS: Double) {
        self.code = code; self.message = message; self.active = active; self.raisedAtS = raisedAtS
    }
}

public struct LimitsInfo: Codable, Sendable, Equatable {
    public var minMpa: Double
    public var maxMpa: Double
    public var tripMpa: Double
    public init(minMpa: Double, maxMpa: Double, tripMpa: Double) { self.minMpa = minMpa; self.maxMpa = maxMpa; self.tripMpa = tripMpa }
}

public struct PIDInfo: Codable, Sendable, Equatable {
    public var error: Double
    public var p: Double
    public var i: Double
    public var d: Double
    public var ff: Double
    public var saturated: Bool
    public init(error: Double, p: Double, i: Double, d: Double, ff: Double, saturated: Bool) {
        self.error = error; self.p = p; self.i = i; self.d = d; self.ff = ff; self.saturated = saturated
    }
}

/// One channel as reported by `status` and in sample events.
public struct ChannelStatus: Codable, Sendable, Equatable {
    public var name: String
    public var mode: String
    /// Seconds since the daemon started, of the tick that produced this state.
    public var timeS: Double
    public var setpointMpa: Double?
    public var workingSetpointMpa: Double?
    public var pressureMpa: Double?
    public var forceN: Double?
    public var stale: Bool
    public var inBand: Bool
    public var output: Double
    public var outputUnit: String
    public var actuator: String
    public var cellAreaCm2: Double
    public var limits: LimitsInfo
    public var pid: PIDInfo
    public var faults: [FaultInfo]
    /// Forces of the individual load cells and their (max − min)/mean, when several.
    public var loadCellForcesN: [Double]?
    public var nonUniformity: Double?
    public var temperatureC: Double?
    public var currentMa: Double?
    public var interfacialResistanceOhmCm2: Double?
    /// How long ago the interfacial resistance was acquired, s (loop time): an
    /// analyser's result is minutes old when it arrives and ages until the next.
    public var interfacialResistanceAgeS: Double?
    /// Bulk resistance from the latest fitted spectrum, Ω·cm², and its age, s.
    public var bulkResistanceOhmCm2: Double?
    public var bulkResistanceAgeS: Double?
    /// Cell voltage, V.
    public var voltageV: Double?
    /// Every measured signal, in the signal table's order (the named fields above repeat
    /// some of them for older clients).
    public var signals: [SignalReading]?
    /// In constant-gap mode: the stack thickness held, µm.
    public var gapTargetUm: Double?
    /// Strategy, gains in force, autotune progress and what the adaptive and learned
    /// controllers have learned.
    public var control: ControlInfo?
    /// The chemistry preset the limits came from, if any.
    public var chemistryPreset: String?
    /// The excursion out of the band in progress, if any.
    public var excursion: ExcursionInfo?
    /// Excursions since the daemon started.
    public var excursions: ExcursionStatsInfo?
    /// True while the pressure does not answer the output and the output is capped at
    /// what the setpoint needs (see operations.md, "Loss of authority").
    public var authorityLost: Bool?

    public init(name: String, mode: String, timeS: Double, setpointMpa: Double?, workingSetpointMpa: Double?,
                pressureMpa: Double?, forceN: Double?, stale: Bool, inBand: Bool, output: Double, outputUnit: String,
                actuator: String, cellAreaCm2: Double, limits: LimitsInfo, pid: PIDInfo, faults: [FaultInfo],
                temperatureC: Double?, currentMa: Double?, interfacialResistanceOhmCm2: Double?) {
        self.name = name; self.mode = mode; self.timeS = timeS; self.setpointMpa = setpointMpa
        self.workingSetpointMpa = workingSetpointMpa; self.pressureMpa = pressureMpa; self.forceN = forceN
        self.stale = stale; self.inBand = inBand; self.output = output; self.outputUnit = outputUnit
        self.actuator = actuator; self.cellAreaCm2 = cellAreaCm2; self.limits = limits; self.pid = pid
        self.faults = faults; self.temperatureC = temperatureC; self.currentMa = currentMa
        self.interfacialResistanceOhmCm2 = interfacialResistanceOhmCm2
    }
}

/// Timing of the control loop, measured against its absolute deadlines.
public struct LoopInfo: Codable, Sendable, Equatable {
    public var rateHz: Double
    public var ticks: UInt64
    /// Ticks whose wake-up came more than one period late.
    public var overruns: UInt64
    public var lastJitterUs: Double
    public var maxJitterUs: Double
    /// Longest time spent inside one tick's work, µs.
    public var maxTickUs: Double
    /// Simulated seconds per wall-clock second (1 on hardware).
    public var timeScale: Double
    /// Simulated seconds the simulator's clock has slipped behind `time_scale` × wall
    /// time because the host could not keep up (the plant never jumps; absent on
    /// hardware and before the first slip).
    public var slippedS: Double?
    /// Wake-up lateness histogram: `jitter_histogram[i]` ticks were at most
    /// `jitter_bucket_us[i]` late (and above the previous edge); the last entry counts
    /// the ticks later than the last edge.
    public var jitterBucketUs: [Double]?
    public var jitterHistogram: [UInt64]?
    public init(rateHz: Double, ticks: UInt64, overruns: UInt64, lastJitterUs: Double, maxJitterUs: Double, maxTickUs: Double, timeScale: Double,
                jitterBucketUs: [Double]? = nil, jitterHistogram: [UInt64]? = nil) {
        self.rateHz = rateHz; self.ticks = ticks; self.overruns = overruns; self.lastJitterUs = lastJitterUs
        self.maxJitterUs = maxJitterUs; self.maxTickUs = maxTickUs; self.timeScale = timeScale
        self.jitterBucketUs = jitterBucketUs; self.jitterHistogram = jitterHistogram
    }
}

/// A device connection's health (hardware backend).
public struct DeviceInfo: Codable, Sendable, Equatable {
    public var name: String
    public var endpoint: String
    public var connected: Bool
    public var reads: UInt64
    public var writes: UInt64
    public var errors: UInt64
    /// Names the device, the function and the register address.
    public var lastError: String?
    /// Modbus exception replies (the connection stays), and connections dropped and
    /// reopened after a reply out of step (garbled, wrong unit or transaction id, CRC,
    /// timeout). Both are also in `errors`.
    public var exceptions: UInt64?
    public var resyncs: UInt64?
    public init(name: String, endpoint: String, connected: Bool, reads: UInt64, writes: UInt64, errors: UInt64, lastError: String?) {
        self.name = name; self.endpoint = endpoint; self.connected = connected; self.reads = reads
        self.writes = writes; self.errors = errors; self.lastError = lastError
    }
}

public struct StatusResult: Codable, Sendable {
    public var version: String
    public var backend: String
    public var uptimeS: Double
    public var loop: LoopInfo
    public var channels: [ChannelStatus]
    /// Device connections, on the hardware backend.
    public var devices: [DeviceInfo]?
    /// Whether the run log and the state file are being written.
    public var storage: [StorageInfo]?
    /// Daemon-level alarms in words (e.g. the run log not writing).
    public var alarms: [String]?
    /// Wall-clock time of this answer and of the daemon's start, Unix s (the channels'
    /// `time_s` is loop time since start, for differences only).
    public var timeUnix: Double?
    public var startedUnix: Double?
    public init(version: String, backend: String, uptimeS: Double, loop: LoopInfo, channels: [ChannelStatus]) {
        self.version = version; self.backend = backend; self.uptimeS = uptimeS; self.loop = loop; self.channels = channels
    }
}

/// One durable store: the SQLite run log or the state file.
public struct StorageInfo: Codable, Sendable, Equatable {
    /// `run_log` or `state_file`.
    public var name: String
    public var path: String
    public var writing: Bool
    /// Seconds since the last successful write; since when it has been failing (uptime s).
    public var lastWriteAgoS: Double?
    public var failingSinceS: Double?
    public var lastError: String?
    public var failures: Int
    public init(name: String, path: String, writing: Bool, lastWriteAgoS: Double?, failingSinceS: Double?, lastError: String?, failures: Int) {
        self.name = name; self.path = path; self.writing = writing; self.lastWriteAgoS = lastWriteAgoS
        self.failingSinceS = failingSinceS; self.lastError = lastError; self.failures = failures
    }
}

public struct SetResult: Codable, Sendable {
    public var channel: String
    public var setpointMpa: Double
    public var rampMpaPerS: Double?
    public init(channel: String, setpointMpa: Double, rampMpaPerS: Double?) {
        self.channel = channel; self.setpointMpa = setpointMpa; self.rampMpaPerS = rampMpaPerS
    }
}

public struct ModeResult: Codable, Sendable {
    public var channel: String
    public var mode: String
    public init(channel: String, mode: String) { self.channel = channel; self.mode = mode }
}

public struct AckResult: Codable, Sendable {
    public struct PerChannel: Codable, Sendable {
        public var channel: String
        public var cleared: [String]
        /// Faults whose condition is still present; they stay latched.
        public var remaining: [String]
        public var mode: String
        public init(channel: String, cleared: [String], remaining: [String], mode: String) {
            self.channel = channel; self.cleared = cleared; self.remaining = remaining; self.mode = mode
        }
    }
    public var channels: [PerChannel]
    public init(channels: [PerChannel]) { self.channels = channels }
}

public struct SubscribeResult: Codable, Sendable {
    public var subscription: Int
    public var rateHz: Double
    public init(subscription: Int, rateHz: Double) { self.subscription = subscription; self.rateHz = rateHz }
}

public struct OkResult: Codable, Sendable {
    public var ok: Bool
    public init() { ok = true }
}

/// A server-pushed message on a subscription.
public struct SampleEvent: Codable, Sendable {
    public var event: String
    public var subscription: Int
    /// Events not sent since the previous one because the client read too slowly.
    public var dropped: Int
    public var channels: [ChannelStatus]
    public init(subscription: Int, dropped: Int, channels: [ChannelStatus]) {
        self.event = "sample"; self.subscription = subscription; self.dropped = dropped; self.channels = channels
    }
}

// MARK: Programs, run log, run metadata

public struct ProgramStartParams: Codable, Sendable {
    public var channel: String
    /// The program file's TOML text (see docs/programs.md).
    public var program: String
    /// Shown in errors, e.g. the file name.
    public var source: String?
    public init(channel: String, program: String, source: String? = nil) { self.channel = channel; self.program = program; self.source = source }
}

public struct ProgramInfo: Codable, Sendable, Equatable {
    public var name: String
    public var state: String
    public var step: Int
    public var steps: Int
    public var stepType: String?
    public var stepElapsedS: Double
    public var setpointMpa: Double?
    /// What the program started from: the pressure its first ramp begins at, MPa;
    /// `setpoint` (the channel was regulating) or `measured_pressure` (it was not); and
    /// the channel's mode then.
    public var startedFromMpa: Double?
    public var startedFrom: String?
    public var startedInMode: String?
    public init(name: String, state: String, step: Int, steps: Int, stepType: String?, stepElapsedS: Double, setpointMpa: Double?,
                startedFromMpa: Double? = nil, startedFrom: String? = nil, startedInMode: String? = nil) {
        self.name = name; self.state = state; self.step = step; self.steps = steps
        self.stepType = stepType; self.stepElapsedS = stepElapsedS; self.setpointMpa = setpointMpa
        self.startedFromMpa = startedFromMpa; self.startedFrom = startedFrom; self.startedInMode = startedInMode
    }
}

public struct ProgramResult: Codable, Sendable {
    public var channel: String
    /// Absent when no program is loaded.
    public var program: ProgramInfo?
    public init(channel: String, program: ProgramInfo?) { self.channel = channel; self.program = program }
}

public struct LogExportParams: Codable, Sendable {
    /// Unix seconds.
    public var since: Double
    public var until: Double
    public var channel: String?
    public init(since: Double, until: Double, channel: String? = nil) { self.since = since; self.until = until; self.channel = channel }
}

/// Pushed while a `log_export` runs: CSV lines (with the header in the first chunk).
public struct LogChunkEvent: Codable, Sendable {
    public var event: String
    public var id: RequestID?
    public var csv: String
    public init(id: RequestID?, csv: String) { self.event = "log_chunk"; self.id = id; self.csv = csv }
}

public struct LogExportResult: Codable, Sendable {
    public var rows: Int
    public init(rows: Int) { self.rows = rows }
}

public struct RunMetadataInfo: Codable, Sendable, Equatable {
    /// The fields' wire names, as `run_set`'s `clear` names them.
    public static let fieldNames = ["cell_id", "chemistry", "operator_note", "preparation_pressure_mpa", "preparation"]
    /// The wire names of the fields this value gives.
    public var givenFields: [String] {
        [cellId.map { _ in "cell_id" }, chemistry.map { _ in "chemistry" }, operatorNote.map { _ in "operator_note" },
         preparationPressureMpa.map { _ in "preparation_pressure_mpa" }, preparation.map { _ in "preparation" }].compactMap { $0 }
    }
    public var cellId: String?
    public var chemistry: String?
    public var operatorNote: String?
    /// Fabrication pressure, MPa: kept apart from the stack pressure pressd regulates.
    public var preparationPressureMpa: Double?
    /// Preparation (fabrication) steps, each with its component, pressure, hold time
    /// and temperature: kept apart from stack pressure, as the reporting standard asks.
    public var preparation: [PreparationStepInfo]?
    public init(cellId: String? = nil, chemistry: String? = nil, operatorNote: String? = nil, preparationPressureMpa: Double? = nil,
                preparation: [PreparationStepInfo]? = nil) {
        self.cellId = cellId; self.chemistry = chemistry; self.operatorNote = operatorNote; self.preparationPressureMpa = preparationPressureMpa
        self.preparation = preparation
    }
}

/// One preparation (fabrication) step: pressing a component before the cell is assembled.
public struct PreparationStepInfo: Codable, Sendable, Equatable {
    /// What was pressed, e.g. "Li6PS5Cl separator", "NMC811 composite cathode", "full stack".
    public var component: String
    public var pressureMpa: Double
    /// How long the pressure was held, s.
    public var holdS: Double?
    public var temperatureC: Double?
    public init(component: String, pressureMpa: Double, holdS: Double? = nil, temperatureC: Double? = nil) {
        self.component = component; self.pressureMpa = pressureMpa; self.holdS = holdS; self.temperatureC = temperatureC
    }
}

/// What a channel is, as logged in the run log (a `config` event "channel descriptor
/// {json}") at start and on reload, so that a report read from the run log alone (`pressctl
/// report --state-dir`) knows the fixture, the area and the load cells.
public struct ChannelDescriptor: Codable, Sendable, Equatable {
    public static let prefix = "channel descriptor "
    public var channel: String
    public var description: String
    /// `spring-fixture` or `pneumatic`.
    public var actuator: String
    /// How pressure is applied, in words (spring / pneumatic / constant-volume).
    public var pressureApplied: String
    /// `simulator` or `hardware`.
    public var backend: String
    /// Active cell area the pressure refers to, cm².
    public var cellAreaCm2: Double
    /// The load cells under the plate (signal ids), whose forces add to the total.
    public var loadCells: [String]
    /// Upper end of the load cell's range, N.
    public var loadCellRangeN: Double
    public var limits: LimitsInfo
    public var preset: String?
    public var bandPercent: Double
    /// The run log's clock against the wall clock: samples and loop events are stamped
    /// in log time, requests in wall time; with a simulator `time_scale` > 1 they part.
    /// log time = `clock_log` + (wall time − `clock_wall`) × `time_scale`.
    public var timeScale: Double?
    public var clockWall: Double?
    public var clockLog: Double?
    /// A wall-clock time (a request event's) on the run log's clock.
    public func logTime(wall t: Double) -> Double {
        guard let s = timeScale, s != 1, let w = clockWall, let l = clockLog else { return t }
        return l + (t - w) * s
    }
    public init(channel: String, description: String, actuator: String, pressureApplied: String, backend: String, cellAreaCm2: Double,
                loadCells: [String], loadCellRangeN: Double, limits: LimitsInfo, preset: String?, bandPercent: Double) {
        self.channel = channel; self.description = description; self.actuator = actuator; self.pressureApplied = pressureApplied
        self.backend = backend; self.cellAreaCm2 = cellAreaCm2; self.loadCells = loadCells; self.loadCellRangeN = loadCellRangeN
        self.limits = limits; self.preset = preset; self.bandPercent = bandPercent
    }
}

/// `run_set`: the fields given in `metadata` replace the recorded ones, the fields named
/// in `clear` are cleared, every other field is kept.
public struct RunSetParams: Codable, Sendable {
    public var channel: String
    public var metadata: RunMetadataInfo?
    /// Fields to clear, by their wire names (``RunMetadataInfo/fieldNames``).
    public var clear: [String]?
    public init(channel: String, metadata: RunMetadataInfo = RunMetadataInfo(), clear: [String]? = nil) {
        self.channel = channel; self.metadata = metadata; self.clear = clear
    }
}

public struct RunResult: Codable, Sendable {
    public var channel: String
    public var metadata: RunMetadataInfo
    public init(channel: String, metadata: RunMetadataInfo) { self.channel = channel; self.metadata = metadata }
}

public struct ReloadResult: Codable, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}

public struct LogEventInfo: Codable, Sendable, Equatable {
    public var timeUnix: Double
    public var channel: String
    public var kind: String
    public var detail: String
    public var uid: Int?
    public var pid: Int?
    public init(timeUnix: Double, channel: String, kind: String, detail: String, uid: Int?, pid: Int?) {
        self.timeUnix = timeUnix; self.channel = channel; self.kind = kind; self.detail = detail; self.uid = uid; self.pid = pid
    }
}

public struct LogEventsResult: Codable, Sendable {
    public var events: [LogEventInfo]
    /// True when more events matched than the 10 000 returned.
    public var truncated: Bool
    public init(events: [LogEventInfo], truncated: Bool) { self.events = events; self.truncated = truncated }
}

/// A request's `action`: one of a fixed set of words, refused at decoding otherwise
/// (`invalid_params` naming the parameter and the accepted words).
public protocol WireAction: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension WireAction {
    /// Decodes the word or throws an error that lists the accepted ones.
    public static func decodeWord(from decoder: Decoder) throws -> Self {
        let word = try decoder.singleValueContainer().decode(String.self)
        guard let v = Self(rawValue: word) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "'\(word.prefix(32))' is not one of \(allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        return v
    }
}

/// `tune` and `sweep`: begin the experiment, or end a running one.
public enum ExperimentAction: String, WireAction {
    case start, cancel
    public init(from decoder: Decoder) throws { self = try Self.decodeWord(from: decoder) }
}

/// `calibrate`: zero the load cells, span them against a known load, or show the calibration.
public enum CalibrateAction: String, WireAction {
    case tare, span, show
    public init(from decoder: Decoder) throws { self = try Self.decodeWord(from: decoder) }
}

/// `supervisor`: keep the impedance-aware supervisor from moving the setpoint, or let it.
public enum SupervisorAction: String, WireAction {
    case lock, unlock
    public init(from decoder: Decoder) throws { self = try Self.decodeWord(from: decoder) }
}

public struct CalibrateParams: Codable, Sendable {
    public var channel: String
    public var action: CalibrateAction
    /// The known load for `span`, with `unit` (N, kN, or a pressure through the cell area).
    public var value: Double?
    public var unit: String?
    /// Span one load cell (0-based) instead of all together.
    public var cell: Int?
    public init(channel: String, action: CalibrateAction, value: Double? = nil, unit: String? = nil, cell: Int? = nil) {
        self.channel = channel; self.action = action; self.value = value; self.unit = unit; self.cell = cell
    }
}

public struct CellCalibrationInfo: Codable, Sendable, Equatable {
    public var offsetN: Double
    public var gain: Double
    public init(offsetN: Double, gain: Double) { self.offsetN = offsetN; self.gain = gain }
}

public struct CalibrateResult: Codable, Sendable {
    public var channel: String
    /// Empty: uncalibrated (raw readings are used as they come).
    public var cells: [CellCalibrationInfo]
    public init(channel: String, cells: [CellCalibrationInfo]) { self.channel = channel; self.cells = cells }
}

/// `tune` parameters: start a relay autotune on a regulating channel, or cancel one.
public struct TuneParams: Codable, Sendable {
    public var channel: String
    public var action: ExperimentAction
    /// Tuning rule (`ziegler-nichols`, `tyreus-luyben`, `simc`, `amigo`); default: the
    /// channel's configured one.
    public var rule: String?
    /// Largest pressure deviation the experiment may cause, MPa.
    public var excursionMpa: Double?
    public var cycles: Int?
    public var timeoutS: Double?
    public init(channel: String, action: ExperimentAction, rule: String? = nil, excursionMpa: Double? = nil, cycles: Int? = nil, timeoutS: Double? = nil) {
        self.channel = channel; self.action = action; self.rule = rule; self.excursionMpa = excursionMpa
        self.cycles = cycles; self.timeoutS = timeoutS
    }
}

/// The controller side of a channel in `status`.
public struct ControlInfo: Codable, Sendable, Equatable {
    /// Configured strategy: `pid`, `adaptive`, `learned` or `mpc`.
    public var strategy: String
    /// What computes the output now: `pid`, `adaptive`, `learned`, `mpc` or `autotune`.
    public var active: String
    /// Who decides the setpoint now: `operator`, `supervisor`, `resume`, `program`,
    /// `sweep`, `autotune` or `safety` (a fault's ramp to the safe pressure).
    public var setpointOwner: String?
    /// Gains and static feedforward gain in force (after the adaptive scale).
    public var kp: Double
    public var ki: Double
    public var feedforwardGain: Double
    public var autotune: AutotuneProgressInfo?
    public var lastTune: AutotuneInfo?
    public var adaptive: AdaptiveInfo?
    public var learned: LearnedInfo?
    public var mpc: MPCInfo?
    /// The critical-stack-pressure sweep in progress and the last one's result.
    public var sweep: SweepProgressInfo?
    public var lastSweep: SweepInfo?
    /// The impedance-aware supervisor, when enabled.
    public var supervisor: SupervisorInfo?
    public init(strategy: String, active: String, kp: Double, ki: Double, feedforwardGain: Double) {
        self.strategy = strategy; self.active = active; self.kp = kp; self.ki = ki; self.feedforwardGain = feedforwardGain
    }
}

public struct AutotuneProgressInfo: Codable, Sendable, Equatable {
    /// `baseline`, `step` or `relay`.
    public var phase: String
    /// Oscillation periods seen so far, and how many are wanted.
    public var cycles: Int
    public var cyclesWanted: Int
    public var elapsedS: Double
    public var timeoutS: Double
    public var setpointMpa: Double
    public var excursionMpa: Double
    public var rule: String
    public init(phase: String, cycles: Int, cyclesWanted: Int, elapsedS: Double, timeoutS: Double, setpointMpa: Double, excursionMpa: Double, rule: String) {
        self.phase = phase; self.cycles = cycles; self.cyclesWanted = cyclesWanted; self.elapsedS = elapsedS
        self.timeoutS = timeoutS; self.setpointMpa = setpointMpa; self.excursionMpa = excursionMpa; self.rule = rule
    }
}

public struct AutotuneInfo: Codable, Sendable, Equatable {
    public var rule: String
    public var kp: Double
    public var ki: Double
    public var ultimateGain: Double
    public var ultimatePeriodS: Double
    /// First-order-plus-dead-time model: MPa per output unit, s, s.
    public var processGain: Double
    public var timeConstantS: Double
    public var deadTimeS: Double
    public var setpointMpa: Double
    public init(rule: String, kp: Double, ki: Double, ultimateGain: Double, ultimatePeriodS: Double, processGain: Double,
                timeConstantS: Double, deadTimeS: Double, setpointMpa: Double) {
        self.rule = rule; self.kp = kp; self.ki = ki; self.ultimateGain = ultimateGain; self.ultimatePeriodS = ultimatePeriodS
        self.processGain = processGain; self.timeConstantS = timeConstantS; self.deadTimeS = deadTimeS; self.setpointMpa = setpointMpa
    }
}

public struct AdaptiveInfo: Codable, Sendable, Equatable {
    /// Gain scale applied to the tuned gains.
    public var scale: Double
    /// Plant gain the tuning assumed and the candidate estimate from settled setpoint
    /// moves (nil before two moves), MPa per output unit.
    public var baseGain: Double
    public var estimatedGain: Double?
    /// Validated gain per pressure bin over the setpoint range (nil: not identified there;
    /// the tuned gain or a neighbouring bin's is used).
    public var schedule: [Double?]
    /// Settled moves the estimate has learned from.
    public var updates: Int
    /// Times the gain in force mispredicted two moves in a row and the tuned gains came back.
    public var fallbacks: Int
    /// Moves the candidate has been tested on out of sample (at most 8), and its error on
    /// the latest, %.
    public var validatedMoves: Int?
    public var recentErrorPercent: Double?
    /// Times the loop was seen oscillating and the gains were halved.
    public var oscillations: Int?
    /// Seconds (loop time) until the gains may rise again after an oscillation.
    public var raiseBlockedS: Double?
    public init(scale: Double, baseGain: Double, estimatedGain: Double?, schedule: [Double?], updates: Int, fallbacks: Int) {
        self.scale = scale; self.baseGain = baseGain; self.estimatedGain = estimatedGain; self.schedule = schedule
        self.updates = updates; self.fallbacks = fallbacks
    }
}

public struct LearnedInfo: Codable, Sendable, Equatable {
    /// True while the disturbance feedforward is on.
    public var active: Bool
    public var confidence: Double
    /// Share of the baseline's error the disturbance terms explain.
    public var benefit: Double
    public var handovers: Int
    /// Disturbance feedforward in force, output units.
    public var feedforward: Double
    /// Output (as MPa-equivalents at the tuned gain) the model says each mAh of charge
    /// and each kelvin require.
    public var chargeCoefficient: Double
    public var temperatureCoefficient: Double
    public var updates: Int
    public init(active: Bool, confidence: Double, benefit: Double, handovers: Int, feedforward: Double,
                chargeCoefficient: Double, temperatureCoefficient: Double, updates: Int) {
        self.active = active; self.confidence = confidence; self.benefit = benefit; self.handovers = handovers
        self.feedforward = feedforward; self.chargeCoefficient = chargeCoefficient
        self.temperatureCoefficient = temperatureCoefficient; self.updates = updates
    }
}

/// The `mpc` law's plant model and how well it predicts.
public struct MPCInfo: Codable, Sendable, Equatable {
    /// Static gain, MPa per output unit (the adaptive identification's, corrected by the
    /// law's own regression); lag and dead time, s; horizon, s.
    public var gain: Double
    public var timeConstantS: Double
    public var deadTimeS: Double
    public var horizonS: Double
    /// `autotune` (lag and dead time measured) or `nominal`.
    public var source: String
    /// RMS prediction error over about 5 s, MPa, and the confidence 0…1 judged from it.
    public var predictionErrorMpa: Double
    public var confidence: Double
    /// False while the model has handed over to the adaptive PID.
    public var active: Bool
    public var handovers: Int
    public init(gain: Double, timeConstantS: Double, deadTimeS: Double, horizonS: Double, source: String,
                predictionErrorMpa: Double, confidence: Double, active: Bool, handovers: Int) {
        self.gain = gain; self.timeConstantS = timeConstantS; self.deadTimeS = deadTimeS; self.horizonS = horizonS
        self.source = source; self.predictionErrorMpa = predictionErrorMpa; self.confidence = confidence
        self.active = active; self.handovers = handovers
    }
}

/// `sweep` parameters: start a critical-stack-pressure sweep or cancel one.
public struct SweepParams: Codable, Sendable {
    public var channel: String
    public var action: ExperimentAction
    public var fromMpa: Double?
    public var toMpa: Double?
    public var steps: Int?
    public var dwellS: Double?
    public var returnMpa: Double?
    /// Distinct resistance measurements each level needs, and how long past the dwell
    /// to wait for them, s.
    public var minMeasurements: Int?
    public var measurementTimeoutS: Double?
    /// `down` (default), `up` or `down_up`.
    public var direction: String?
    /// `static` (default) or `dynamic` (wire key `protocol`).
    public var sweepProtocol: String?
    /// The margin criterion's fraction (default 0.2).
    public var margin: Double?
    /// Dynamic protocol: growth threshold, fraction per hour (default 0.05).
    public var growthThresholdPerH: Double?
    enum CodingKeys: String, CodingKey {
        case channel, action, fromMpa, toMpa, steps, dwellS, returnMpa, minMeasurements, measurementTimeoutS
        case direction, sweepProtocol = "protocol", margin, growthThresholdPerH
    }
    public init(channel: String, action: ExperimentAction, fromMpa: Double? = nil, toMpa: Double? = nil, steps: Int? = nil, dwellS: Double? = nil, returnMpa: Double? = nil,
                minMeasurements: Int? = nil, measurementTimeoutS: Double? = nil, direction: String? = nil, sweepProtocol: String? = nil,
                margin: Double? = nil, growthThresholdPerH: Double? = nil) {
        self.channel = channel; self.action = action; self.fromMpa = fromMpa; self.toMpa = toMpa; self.steps = steps
        self.dwellS = dwellS; self.returnMpa = returnMpa; self.minMeasurements = minMeasurements; self.measurementTimeoutS = measurementTimeoutS
        self.direction = direction; self.sweepProtocol = sweepProtocol; self.margin = margin; self.growthThresholdPerH = growthThresholdPerH
    }
}

/// `supervisor` parameters: `lock` or `unlock` the impedance-aware supervisor.
public struct SupervisorParams: Codable, Sendable {
    public var channel: String
    public var action: SupervisorAction
    public init(channel: String, action: SupervisorAction) { self.channel = channel; self.action = action }
}

/// The answer to `sweep` and `supervisor`: what was done.
public struct ActionResult: Codable, Sendable {
    public var channel: String
    public var state: String
    public init(channel: String, state: String) { self.channel = channel; self.state = state }
}

public struct SweepProgressInfo: Codable, Sendable, Equatable {
    /// Level being sought or measured (0-based), of `levels`.
    public var level: Int
    public var levels: Int
    public var setpointMpa: Double
    /// Seconds since the level was reached (nil while still settling).
    public var dwellElapsedS: Double?
    public var dwellS: Double
    public var pointsMeasured: Int
    /// The present level's leg (`down` or `up`), and distinct measurements taken at it so far.
    public var leg: String?
    public var measurementsAtLevel: Int?
    public init(level: Int, levels: Int, setpointMpa: Double, dwellElapsedS: Double?, dwellS: Double, pointsMeasured: Int,
                leg: String? = nil, measurementsAtLevel: Int? = nil) {
        self.level = level; self.levels = levels; self.setpointMpa = setpointMpa; self.dwellElapsedS = dwellElapsedS
        self.dwellS = dwellS; self.pointsMeasured = pointsMeasured; self.leg = leg; self.measurementsAtLevel = measurementsAtLevel
    }
}

public struct SweepPointInfo: Codable, Sendable, Equatable {
    public var setpointMpa: Double
    public var pressureMpa: Double
    public var resistanceOhmCm2: Double
    public var resistanceSd: Double
    /// Distinct resistance measurements averaged (not control ticks).
    public var samples: Int
    public var temperatureC: Double?
    /// Mean absolute current density while the level was measured, mA/cm².
    public var currentDensityMaCm2: Double?
    /// `down` or `up`.
    public var leg: String?
    /// Least-squares slope of the level's resistance against acquisition time, its
    /// standard error (Ω·cm²/h), and the slope relative to the level's resistance, %/h.
    public var slopeOhmCm2PerH: Double?
    public var slopeSeOhmCm2PerH: Double?
    public var slopePctPerH: Double?
    /// Dynamic sweeps: the resistance grew at this level.
    public var grows: Bool?
    public init(setpointMpa: Double, pressureMpa: Double, resistanceOhmCm2: Double, resistanceSd: Double, samples: Int, temperatureC: Double?,
                currentDensityMaCm2: Double? = nil, leg: String? = nil, slopeOhmCm2PerH: Double? = nil, slopeSeOhmCm2PerH: Double? = nil,
                slopePctPerH: Double? = nil, grows: Bool? = nil) {
        self.setpointMpa = setpointMpa; self.pressureMpa = pressureMpa; self.resistanceOhmCm2 = resistanceOhmCm2
        self.resistanceSd = resistanceSd; self.samples = samples; self.temperatureC = temperatureC; self.currentDensityMaCm2 = currentDensityMaCm2
        self.leg = leg; self.slopeOhmCm2PerH = slopeOhmCm2PerH; self.slopeSeOhmCm2PerH = slopeSeOhmCm2PerH; self.slopePctPerH = slopePctPerH
        self.grows = grows
    }
}

/// The margin criterion: the highest pressure below which R exceeds (1 + margin) × the
/// high-pressure reference.
public struct SweepMarginInfo: Codable, Sendable, Equatable {
    public var margin: Double
    public var referenceOhmCm2: Double
    public var referenceSeOhmCm2: Double
    public var thresholdOhmCm2: Double
    /// Nil: never crossed down to `lowest_pressure_mpa`.
    public var pressureMpa: Double?
    /// 95 % interval; `low_mpa` nil: below the swept range.
    public var lowMpa: Double?
    public var highMpa: Double?
    public var lowestPressureMpa: Double
    public init(margin: Double, referenceOhmCm2: Double, referenceSeOhmCm2: Double, thresholdOhmCm2: Double, pressureMpa: Double?,
                lowMpa: Double?, highMpa: Double?, lowestPressureMpa: Double) {
        self.margin = margin; self.referenceOhmCm2 = referenceOhmCm2; self.referenceSeOhmCm2 = referenceSeOhmCm2; self.thresholdOhmCm2 = thresholdOhmCm2
        self.pressureMpa = pressureMpa; self.lowMpa = lowMpa; self.highMpa = highMpa; self.lowestPressureMpa = lowestPressureMpa
    }
}

/// The dynamic protocol's CSP: the lowest level, scanning down, at which R did not grow.
public struct SweepDynamicInfo: Codable, Sendable, Equatable {
    public var thresholdPerH: Double
    /// Nil: R grew already at the highest level.
    public var cspMpa: Double?
    /// The next lower level, which grew (the bracket's low end); nil: no level grew.
    public var grewAtMpa: Double?
    public var currentDensityMaCm2: Double?
    public var temperatureC: Double?
    public init(thresholdPerH: Double, cspMpa: Double?, grewAtMpa: Double?, currentDensityMaCm2: Double?, temperatureC: Double?) {
        self.thresholdPerH = thresholdPerH; self.cspMpa = cspMpa; self.grewAtMpa = grewAtMpa
        self.currentDensityMaCm2 = currentDensityMaCm2; self.temperatureC = temperatureC
    }
}

/// One leg's criteria.
public struct SweepLegInfo: Codable, Sendable, Equatable {
    public var leg: String
    public var levels: Int
    public var cspMpa: Double?
    public var cspLowMpa: Double?
    public var cspHighMpa: Double?
    public var p90Mpa: Double?
    public var p90LowMpa: Double?
    public var p90HighMpa: Double?
    public var margin: SweepMarginInfo?
    public var dynamic: SweepDynamicInfo?
    public init(leg: String, levels: Int, cspMpa: Double?, cspLowMpa: Double?, cspHighMpa: Double?, p90Mpa: Double?, p90LowMpa: Double?,
                p90HighMpa: Double?, margin: SweepMarginInfo?, dynamic: SweepDynamicInfo?) {
        self.leg = leg; self.levels = levels; self.cspMpa = cspMpa; self.cspLowMpa = cspLowMpa; self.cspHighMpa = cspHighMpa
        self.p90Mpa = p90Mpa; self.p90LowMpa = p90LowMpa; self.p90HighMpa = p90HighMpa; self.margin = margin; self.dynamic = dynamic
    }
}

/// Down-then-up sweeps: up leg − down leg.
public struct SweepHysteresisInfo: Codable, Sendable, Equatable {
    public var cspShiftMpa: Double?
    public var cspShiftHalfWidthMpa: Double?
    public var marginShiftMpa: Double?
    public var marginShiftHalfWidthMpa: Double?
    /// Mean (R_up − R_down) / R_down at equal setpoints, and how many.
    public var meanRelativeResistanceDifference: Double?
    public var pairs: Int
    public init(cspShiftMpa: Double?, cspShiftHalfWidthMpa: Double?, marginShiftMpa: Double?, marginShiftHalfWidthMpa: Double?,
                meanRelativeResistanceDifference: Double?, pairs: Int) {
        self.cspShiftMpa = cspShiftMpa; self.cspShiftHalfWidthMpa = cspShiftHalfWidthMpa; self.marginShiftMpa = marginShiftMpa
        self.marginShiftHalfWidthMpa = marginShiftHalfWidthMpa; self.meanRelativeResistanceDifference = meanRelativeResistanceDifference; self.pairs = pairs
    }
}

/// A finished sweep: the points and the fitted knee R(P) = plateau + rise/(1 + (P/csp)^sharpness)
/// of the first leg, the margin pressure, the dynamic CSP, each leg's criteria and the
/// hysteresis.
public struct SweepInfo: Codable, Sendable, Equatable {
    /// `done` or `aborted`, and why (or why there is no fit).
    public var status: String
    public var note: String?
    public var cspMpa: Double?
    public var cspLowMpa: Double?
    public var cspHighMpa: Double?
    public var p90Mpa: Double?
    public var plateauOhmCm2: Double?
    public var riseOhmCm2: Double?
    public var sharpness: Double?
    public var points: [SweepPointInfo]
    /// 95 % interval of `p90_mpa`.
    public var p90LowMpa: Double?
    public var p90HighMpa: Double?
    /// `down`, `up` or `down_up`; `static` or `dynamic` (wire key `protocol`).
    public var direction: String?
    public var sweepProtocol: String?
    /// Mean |J|, mA/cm², and temperature, °C, over the measured levels.
    public var currentDensityMaCm2: Double?
    public var temperatureC: Double?
    /// The first leg's margin pressure and dynamic CSP.
    public var margin: SweepMarginInfo?
    public var dynamic: SweepDynamicInfo?
    public var legs: [SweepLegInfo]?
    public var hysteresis: SweepHysteresisInfo?
    /// The one-line summary the journal shows.
    public var summary: String?
    enum CodingKeys: String, CodingKey {
        case status, note, cspMpa, cspLowMpa, cspHighMpa, p90Mpa, plateauOhmCm2, riseOhmCm2, sharpness, points
        case p90LowMpa, p90HighMpa, direction, sweepProtocol = "protocol", currentDensityMaCm2, temperatureC, margin, dynamic, legs, hysteresis, summary
    }
    public init(status: String, note: String?, cspMpa: Double?, cspLowMpa: Double?, cspHighMpa: Double?, p90Mpa: Double?,
                plateauOhmCm2: Double?, riseOhmCm2: Double?, sharpness: Double?, points: [SweepPointInfo],
                p90LowMpa: Double? = nil, p90HighMpa: Double? = nil, direction: String? = nil, sweepProtocol: String? = nil,
                currentDensityMaCm2: Double? = nil, temperatureC: Double? = nil, margin: SweepMarginInfo? = nil, dynamic: SweepDynamicInfo? = nil,
                legs: [SweepLegInfo]? = nil, hysteresis: SweepHysteresisInfo? = nil, summary: String? = nil) {
        self.status = status; self.note = note; self.cspMpa = cspMpa; self.cspLowMpa = cspLowMpa; self.cspHighMpa = cspHighMpa
        self.p90Mpa = p90Mpa; self.plateauOhmCm2 = plateauOhmCm2; self.riseOhmCm2 = riseOhmCm2; self.sharpness = sharpness; self.points = points
        self.p90LowMpa = p90LowMpa; self.p90HighMpa = p90HighMpa; self.direction = direction; self.sweepProtocol = sweepProtocol
        self.currentDensityMaCm2 = currentDensityMaCm2; self.temperatureC = temperatureC; self.margin = margin; self.dynamic = dynamic
        self.legs = legs; self.hysteresis = hysteresis; self.summary = summary
    }
}

public struct SupervisorInfo: Codable, Sendable, Equatable {
    public var locked: Bool
    public var lockReason: String?
    public var windowMinMpa: Double
    public var windowMaxMpa: Double
    public var margin: Double
    /// Lowest learned resistance and the limit (1 + margin) × it, Ω·cm².
    public var minimumOhmCm2: Double?
    public var limitOhmCm2: Double?
    /// Learned mean resistance at the present level and its standard error.
    public var levelResistanceOhmCm2: Double?
    public var levelStandardError: Double?
    public var converged: Bool
    public var lastReason: String?
    /// The knee fitted to the learned levels, when they span it.
    public var cspMpa: Double?
    public var cspLowMpa: Double?
    public var cspHighMpa: Double?
    /// Distinct resistance measurements taken at the present level since it was entered.
    public var levelMeasurements: Int?
    /// The lowest pressure the supervisor will still go to, MPa: the level below it was
    /// shown to raise R beyond the margin and is never tried again (nil: none so far).
    public var floorMpa: Double?
    public init(locked: Bool, lockReason: String?, windowMinMpa: Double, windowMaxMpa: Double, margin: Double, minimumOhmCm2: Double?,
                limitOhmCm2: Double?, levelResistanceOhmCm2: Double?, levelStandardError: Double?, converged: Bool, lastReason: String?,
                cspMpa: Double?, cspLowMpa: Double?, cspHighMpa: Double?, levelMeasurements: Int? = nil, floorMpa: Double? = nil) {
        self.levelMeasurements = levelMeasurements; self.floorMpa = floorMpa
        self.locked = locked; self.lockReason = lockReason; self.windowMinMpa = windowMinMpa; self.windowMaxMpa = windowMaxMpa
        self.margin = margin; self.minimumOhmCm2 = minimumOhmCm2; self.limitOhmCm2 = limitOhmCm2
        self.levelResistanceOhmCm2 = levelResistanceOhmCm2; self.levelStandardError = levelStandardError; self.converged = converged
        self.lastReason = lastReason; self.cspMpa = cspMpa; self.cspLowMpa = cspLowMpa; self.cspHighMpa = cspHighMpa
    }
}

/// One finished sweep from the run log (`sweeps`).
public struct SweepRecordInfo: Codable, Sendable, Equatable {
    public var timeUnix: Double
    public var channel: String
    public var sweep: SweepInfo
    public init(timeUnix: Double, channel: String, sweep: SweepInfo) { self.timeUnix = timeUnix; self.channel = channel; self.sweep = sweep }
}

public struct SweepsResult: Codable, Sendable {
    public var sweeps: [SweepRecordInfo]
    public init(sweeps: [SweepRecordInfo]) { self.sweeps = sweeps }
}

/// `push_signals`: auxiliary measurements from other software (an impedance analyser,
/// the cycler), used in place of the channel's own until they go stale.
public struct PushSignalsParams: Codable, Sendable {
    public var channel: String
    public var interfacialResistanceOhmCm2: Double?
    public var temperatureC: Double?
    public var currentMa: Double?
    /// Cell voltage, V.
    public var voltageV: Double?
    /// When the values were measured, Unix seconds (an analyser's spectrum time); nil
    /// means now. Not in the future, and not older than the channel's
    /// `pushed_stale_after_s`.
    public var acquiredAt: Double?
    /// Any pushable signal by its key (`thickness_um`, `bulk_resistance_ohm_cm2`, …: the
    /// keys `status` lists under `signals`), besides the named fields above.
    public var signals: [SignalValue]?
    public init(channel: String, interfacialResistanceOhmCm2: Double? = nil, temperatureC: Double? = nil, currentMa: Double? = nil,
                voltageV: Double? = nil, acquiredAt: Double? = nil, signals: [SignalValue]? = nil) {
        self.channel = channel; self.interfacialResistanceOhmCm2 = interfacialResistanceOhmCm2; self.voltageV = voltageV
        self.temperatureC = temperatureC; self.currentMa = currentMa; self.acquiredAt = acquiredAt; self.signals = signals
    }
}

/// A signal's value by its key.
public struct SignalValue: Codable, Sendable, Equatable {
    public var key: String
    public var value: Double
    public init(key: String, value: Double) { self.key = key; self.value = value }
}

/// A measured signal of a channel as `status` reports it: self-describing, so that a
/// client prints a signal it has never heard of.
public struct SignalReading: Codable, Sendable, Equatable {
    /// Wire key, e.g. `thickness_um`.
    public var key: String
    /// For people, e.g. "stack thickness".
    public var label: String
    public var unit: String
    public var value: Double
    /// Seconds since it was measured.
    public var ageS: Double
    /// Decimals worth printing.
    public var decimals: Int
    public init(key: String, label: String, unit: String, value: Double, ageS: Double, decimals: Int) {
        self.key = key; self.label = label; self.unit = unit; self.value = value; self.ageS = ageS; self.decimals = decimals
    }
}

/// The kinds of event the run log records (`log_events`, `pressctl log events --kind`).
public enum EventKinds {
    public static let all = ["ack", "adaptation", "authority", "autotune", "config", "daemon", "excursion", "fault", "impedance",
                             "mode", "owner", "program", "recovery", "request", "run", "setpoint", "supervisor", "sweep"]
}
