import Foundation
import GRDB
import PressCore
import PressProtocol

/// One logged sample of a channel: the state at the end of a logging period plus the
/// minimum, maximum and mean of the fast loop's pressure over that period.
public struct LogSample: Sendable, Equatable {
    /// Unix time, s.
    public var time: Double
    public var channel: String
    public var mode: String
    public var setpoint: Double?
    public var pressure: Double?
    public var pressureMin: Double?
    public var pressureMax: Double?
    public var pressureMean: Double?
    public var force: Double?
    public var output: Double
    public var temperature: Double?
    public var current: Double?
    public var resistance: Double?
    /// Loop ticks that contributed to min/max/mean.
    public var count: Int
    /// Mean (max − min)/mean of the load cells over the sample period, when there are
    /// several under the plate.
    public var nonUniformity: Double?
    /// Cell voltage at the end of the period, V.
    public var voltage: Double?
    /// Mean force of each load cell under the plate over the period, N, when there are
    /// several (they add up to `force`).
    public var loadCellForces: [Double]?
    /// The period this row covers, s, when it was downsampled from the logged samples
    /// (see ``RunLog/downsample(before:period:maxRows:)``); nil for a row as logged.
    public var period: Double?
    /// The signals without a column of the first schema (``extraSignals``: bulk
    /// resistance, stack thickness, and any signal added to the table later), at the end
    /// of the period; each has a column named by its key, added when the log is opened.
    public var signals: [Signal: Double] = [:]

    /// The signals with a named field (and column) of their own.
    public static let namedSignals: Set<Signal> = [.force, .temperature, .current, .interfacialResistance, .voltage]
    /// The rest of the signal table, in its order: logged in ``signals``.
    public static let extraSignals: [Signal] = Signal.allCases.filter { !namedSignals.contains($0) }

    public init(time: Double, channel: String, mode: String, setpoint: Double?, pressure: Double?, pressureMin: Double?,
                pressureMax: Double?, pressureMean: Double?, force: Double?, output: Double, temperature: Double?,
                current: Double?, resistance: Double?, count: Int) {
        self.time = time; self.channel = channel; self.mode = mode; self.setpoint = setpoint; self.pressure = pressure
        self.pressureMin = pressureMin; self.pressureMax = pressureMax; self.pressureMean = pressureMean
        self.force = force; self.output = output; self.temperature = temperature; self.current = current
        self.resistance = resistance; self.count = count
    }
}

/// Something that happened: a setpoint change (with who asked), a fault, a mode
/// change, a program step, an acknowledgement.
public struct RunLogEvent: Sendable, Equatable {
    public var time: Double
    /// Empty for daemon-wide events.
    public var channel: String
    /// e.g. `setpoint`, `fault`, `mode`, `ack`, `program`, `request`, `daemon`.
    public var kind: String
    public var detail: String
    public var uid: Int?
    public var pid: Int?
    public init(time: Double, channel: String, kind: String, detail: String, uid: Int? = nil, pid: Int? = nil) {
        self.time = time; self.channel = channel; self.kind = kind; self.detail = detail; self.uid = uid; self.pid = pid
    }
}

/// What pressd remembers about a channel across restarts.
public struct PersistedChannel: Sendable, Equatable, Codable {
    public var channel: String
    public var mode: ChannelMode
    public var target: Double?
    public var ramp: Double?
    public var output: Double
    public var faults: [FaultRecord]
    /// The program runner's state, if a program is loaded.
    public var program: ProgramRunner?
    /// The backend's own state (the simulated plant), if it keeps one.
    public var backend: [String: Double]?
    public var updated: Double
    /// The last successful autotune (its gains replace the configured ones) and what the
    /// adaptive or learned controller has learned.
    public var tune: AutotuneResult?
    public var learned: ControllerMemory?
    /// The last critical-stack-pressure sweep and the supervisor's learned map and lock.
    public var sweep: SweepResult?
    public var supervisor: ImpedanceSupervisor?

    public init(channel: String, mode: ChannelMode, target: Double?, ramp: Double?, output: Double, faults: [FaultRecord],
                program: ProgramRunner?, backend: [String: Double]?, updated: Double) {
        self.channel = channel; self.mode = mode; self.target = target; self.ramp = ramp; self.output = output
        self.faults = faults; self.program = program; self.backend = backend; self.updated = updated
    }

    enum CodingKeys: String, CodingKey {
        case channel, mode, target, ramp, output, faults, program, backend, updated, tune, learned, sweep, supervisor
    }

    /// Reads this version's records and those written before 2026-11-28, which kept the
    /// program runner as a JSON text inside the JSON.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        channel = try c.decode(String.self, forKey: .channel)
        mode = try c.decode(ChannelMode.self, forKey: .mode)
        target = try c.decodeIfPresent(Double.self, forKey: .target)
        ramp = try c.decodeIfPresent(Double.self, forKey: .ramp)
        output = try c.decode(Double.self, forKey: .output)
        faults = try c.decode([FaultRecord].self, forKey: .faults)
        if let legacy = try? c.decodeIfPresent(String.self, forKey: .program) {
            program = try? JSONDecoder().decode(ProgramRunner.self, from: Data(legacy.utf8))
        } else {
            program = try c.decodeIfPresent(ProgramRunner.self, forKey: .program)
        }
        backend = try c.decodeIfPresent([String: Double].self, forKey: .backend)
        updated = try c.decode(Double.self, forKey: .updated)
        // What was learned is worth keeping but not worth losing the channel's state
        // for: a record from another version that does not decode is dropped alone.
        tune = (try? c.decodeIfPresent(AutotuneResult.self, forKey: .tune)) ?? nil
        learned = (try? c.decodeIfPresent(ControllerMemory.self, forKey: .learned)) ?? nil
        sweep = (try? c.decodeIfPresent(SweepResult.self, forKey: .sweep)) ?? nil
        supervisor = (try? c.decodeIfPresent(ImpedanceSupervisor.self, forKey: .supervisor)) ?? nil
    }
}

/// Run metadata of a channel (a cell under test). Preparation pressure is kept apart
/// from stack pressure, as the field's reporting standard asks.
public struct RunMetadata: Sendable, Equatable, Codable {
    public var cellId: String?
    public var chemistry: String?
    public var operatorNote: String?
    /// Fabrication (densification) pressure, MPa: not the stack pressure.
    public var preparationPressureMpa: Double?
    /// Preparation steps: component, pressure, hold time and temperature of each.
    public var preparation: [PreparationStepInfo]?
    public init(cellId: String? = nil, chemistry: String? = nil, operatorNote: String? = nil, preparationPressureMpa: Double? = nil) {
        self.cellId = cellId; self.chemistry = chemistry; self.operatorNote = operatorNote; self.preparationPressureMpa = preparationPressureMpa
    }
}

/// The run log: an SQLite database in WAL mode in the state directory.
///
/// Written by one writer (``RunLogWriter``'s thread), read by anyone. Every write is a
/// short transaction; with WAL and `synchronous=NORMAL` a committed transaction
/// survives the process being killed (only a power cut may lose the last commits).
public final class RunLog: Sendable {
    public let path: String
    let pool: DatabasePool

    /// Opens an existing run log for reading only (`pressctl … --state-dir`, after a
    /// crash or on a copy): nothing is created, migrated or written, and it is safe
    /// beside a daemon writing the same file (WAL: readers never block the writer).
    public init(readingOnly path: String) throws {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw RunLogOpenError(path: path, reason: FileManager.default.fileExists(atPath: path) ? "is not readable by this user" : "does not exist")
        }
        self.path = path
        var config = Configuration()
        config.readonly = true
        pool = try DatabasePool(path: path, configuration: config)
    }

    /// Opens (creating if needed) the database at `path` and migrates its schema.
    public init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: config)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE samples (
                    t REAL NOT NULL, channel TEXT NOT NULL, mode TEXT NOT NULL,
                    setpoint_mpa REAL, pressure_mpa REAL, pressure_min_mpa REAL, pressure_max_mpa REAL,
                    pressure_mean_mpa REAL, force_n REAL, output REAL NOT NULL, temperature_c REAL,
                    current_ma REAL, resistance_ohm_cm2 REAL, ticks INTEGER NOT NULL);
                CREATE INDEX samples_channel_t ON samples(channel, t);
                CREATE INDEX samples_t ON samples(t);
                CREATE TABLE events (
                    t REAL NOT NULL, channel TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
                    uid INTEGER, pid INTEGER);
                CREATE INDEX events_t ON events(t);
                CREATE TABLE channel_state (channel TEXT PRIMARY KEY, json TEXT NOT NULL, updated REAL NOT NULL);
                CREATE TABLE run_metadata (channel TEXT PRIMARY KEY, json TEXT NOT NULL, updated REAL NOT NULL);
                """)
        }
        migrator.registerMigration("v2-calibration") { db in
            try db.execute(sql: "CREATE TABLE calibration (channel TEXT PRIMARY KEY, json TEXT NOT NULL, updated REAL NOT NULL)")
        }
        migrator.registerMigration("v3-sweeps") { db in
            try db.execute(sql: """
                CREATE TABLE sweeps (t REAL NOT NULL, channel TEXT NOT NULL, json TEXT NOT NULL);
                CREATE INDEX sweeps_t ON sweeps(t);
                ALTER TABLE samples ADD COLUMN nonuniformity REAL;
                """)
        }
        migrator.registerMigration("v4-voltage") { db in
            try db.execute(sql: "ALTER TABLE samples ADD COLUMN voltage_v REAL")
        }
        migrator.registerMigration("v5-load-cell-forces") { db in
            try db.execute(sql: "ALTER TABLE samples ADD COLUMN load_cell_forces_n TEXT")
        }
        migrator.registerMigration("v6-downsampled-period") { db in
            try db.execute(sql: "ALTER TABLE samples ADD COLUMN period_s REAL")
        }
        try migrator.migrate(pool)
        // A column for every signal of the table without one: a signal added to the table
        // is logged without a migration of its own.
        try pool.write { db in
            let have = Set(try db.columns(in: "samples").map(\.name))
            for s in LogSample.extraSignals where !have.contains(s.descriptor.logColumn) {
                try db.execute(sql: "ALTER TABLE samples ADD COLUMN \(s.descriptor.logColumn) REAL")
            }
        }
    }

    /// The sample insert, naming its columns (the signal columns after the first schema's).
    static let insertSQL: String = {
        let cols = ["t", "channel", "mode", "setpoint_mpa", "pressure_mpa", "pressure_min_mpa", "pressure_max_mpa", "pressure_mean_mpa",
                    "force_n", "output", "temperature_c", "current_ma", "resistance_ohm_cm2", "ticks", "nonuniformity", "voltage_v",
                    "load_cell_forces_n", "period_s"] + signalColumns
        return "INSERT INTO samples (\(cols.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: cols.count).joined(separator: ",")))"
    }()

    /// Stores a finished critical-stack-pressure sweep (unix time `time`).
    public func addSweep(_ r: SweepResult, channel: String, time: Double) throws {
        let json = String(decoding: try JSONEncoder().encode(r), as: UTF8.self)
        try pool.write { db in try db.execute(sql: "INSERT INTO sweeps VALUES (?,?,?)", arguments: [time, channel, json]) }
    }

    /// Sweeps finished between `since` and `until` (unix s), oldest first.
    public func sweeps(since: Double, until: Double, channel: String? = nil) throws -> [(time: Double, channel: String, result: SweepResult)] {
        try pool.read { db in
            try Self.window(db, "SELECT t, channel, json FROM sweeps", since: since, until: until,
                            channelClause: channel.map { (" AND channel = ?", $0) }, order: " ORDER BY t").compactMap { row in
                let json: String = row["json"]
                guard let r = try? JSONDecoder().decode(SweepResult.self, from: Data(json.utf8)) else { return nil }
                return (row["t"], row["channel"], r)
            }
        }
    }

    /// Stores a channel's load-cell calibrations (tare offsets and span gains).
    public func setCalibration(_ cells: [LoadCellCalibration], channel: String, time: Double) throws {
        let json = String(decoding: try JSONEncoder().encode(cells), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO calibration VALUES (?,?,?)", arguments: [channel, json, time])
        }
    }

    /// Every stored calibration, by channel.
    public func calibrations() throws -> [String: [LoadCellCalibration]] {
        try pool.read { db in
            var out: [String: [LoadCellCalibration]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT channel, json FROM calibration") {
                let json: String = row["json"]
                if let c = try? JSONDecoder().decode([LoadCellCalibration].self, from: Data(json.utf8)) { out[row["channel"]] = c }
            }
            return out
        }
    }

    /// Appends samples and events in one transaction; returns the events' row ids
    /// (ascending: the `seq` the MQTT publisher gives each event).
    @discardableResult
    public func append(samples: [LogSample], events: [RunLogEvent]) throws -> [Int64] {
        guard !samples.isEmpty || !events.isEmpty else { return [] }
        return try pool.write { db -> [Int64] in
            let ins = try db.makeStatement(sql: Self.insertSQL)
            for s in samples { try Self.insert(s, with: ins) }
            let ev = try db.makeStatement(sql: "INSERT INTO events VALUES (?,?,?,?,?,?)")
            var ids: [Int64] = []
            ids.reserveCapacity(events.count)
            for e in events {
                try ev.execute(arguments: [e.time, e.channel, e.kind, e.detail, e.uid, e.pid])
                ids.append(db.lastInsertedRowID)
            }
            return ids
        }
    }

    static func insert(_ s: LogSample, with ins: Statement) throws {
        var args: [(any DatabaseValueConvertible)?] = [s.time, s.channel, s.mode, s.setpoint, s.pressure, s.pressureMin, s.pressureMax,
                                                        s.pressureMean, s.force, s.output, s.temperature, s.current, s.resistance, s.count, s.nonUniformity, s.voltage,
                                                        Self.forcesText(s.loadCellForces), s.period]
        for e in LogSample.extraSignals { args.append(s.signals[e]) }
        try ins.execute(arguments: StatementArguments(args))
    }

    /// Replaces the logged samples older than `before` (unix s) by one row per channel
    /// per `period` seconds, at most `maxRows` logged rows per call; returns the logged
    /// rows replaced (0: nothing left to do). Only whole periods are replaced, and rows
    /// already downsampled are left alone, so it can run again at any time.
    ///
    /// A downsampled row keeps what the report and the statistics need: the envelope
    /// (the minimum of the minima, the maximum of the maxima), the tick-weighted mean,
    /// the last values of mode, setpoint and pressure, the means of the other signals,
    /// the ticks summed, and `period_s`. Events are never downsampled.
    @discardableResult
    public func downsample(before: Double, period: Double, maxRows: Int = 100_000) throws -> Int {
        precondition(period > 0)
        return try pool.write { db -> Int in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM samples WHERE t < ? AND period_s IS NULL ORDER BY channel, t LIMIT ?",
                                        arguments: [before, maxRows])
            guard !rows.isEmpty else { return 0 }
            var groups: [(channel: String, bucket: Double, rows: [LogSample])] = []
            for r in rows {
                let s = Self.sample(r)
                let bucket = (s.time / period).rounded(.down)
                if let g = groups.last, g.channel == s.channel, g.bucket == bucket { groups[groups.count - 1].rows.append(s) }
                else { groups.append((s.channel, bucket, [s])) }
            }
            // Only whole periods that end before `before` are replaced; the last group of a
            // full fetch may be cut by LIMIT and waits for the next call (unless it is the
            // only one, so that every call makes progress).
            let ins = try db.makeStatement(sql: Self.insertSQL)
            var replaced = 0
            for (k, g) in groups.enumerated() {
                let end = (g.bucket + 1) * period
                let cut = k == groups.count - 1 && rows.count == maxRows && groups.count > 1
                guard end <= before, !cut else { continue }
                try db.execute(sql: "DELETE FROM samples WHERE channel = ? AND t >= ? AND t < ? AND period_s IS NULL",
                               arguments: [g.channel, g.bucket * period, end])
                replaced += db.changesCount
                try Self.insert(Self.aggregate(g.rows, period: period), with: ins)
            }
            return replaced
        }
    }

    /// One row standing for `rows` (one channel, oldest first) over `period` seconds.
    static func aggregate(_ rows: [LogSample], period: Double) -> LogSample {
        let last = rows[rows.count - 1]
        func mean(_ k: KeyPath<LogSample, Double?>) -> Double? {
            let v = rows.compactMap { $0[keyPath: k] }
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
        let ticks = rows.reduce(0) { $0 + $1.count }
        let weighted = rows.compactMap { r in r.pressureMean.map { ($0, Double(max(r.count, 1))) } }
        let w = weighted.reduce(0) { $0 + $1.1 }
        var a = LogSample(time: last.time, channel: last.channel, mode: last.mode, setpoint: last.setpoint, pressure: last.pressure,
                          pressureMin: rows.compactMap(\.pressureMin).min(), pressureMax: rows.compactMap(\.pressureMax).max(),
                          pressureMean: w > 0 ? weighted.reduce(0) { $0 + $1.0 * $1.1 } / w : nil,
                          force: mean(\.force), output: rows.reduce(0) { $0 + $1.output } / Double(rows.count),
                          temperature: mean(\.temperature), current: mean(\.current), resistance: mean(\.resistance), count: ticks)
        a.nonUniformity = mean(\.nonUniformity)
        a.voltage = mean(\.voltage)
        for e in LogSample.extraSignals {
            let v = rows.compactMap { $0.signals[e] }
            if !v.isEmpty { a.signals[e] = v.reduce(0, +) / Double(v.count) }
        }
        let cells = rows.compactMap(\.loadCellForces)
        if let n = cells.first?.count, cells.count == rows.count, cells.allSatisfy({ $0.count == n }) {
            a.loadCellForces = (0..<n).map { i in cells.reduce(0) { $0 + $1[i] } / Double(cells.count) }
        }
        a.period = period
        return a
    }

    /// Rows of samples as logged, and rows that stand for a downsampled period.
    public func sampleCounts() throws -> (native: Int, downsampled: Int) {
        try pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM samples WHERE period_s IS NULL") ?? 0,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM samples WHERE period_s IS NOT NULL") ?? 0)
        }
    }

    /// Bytes the run log takes on disk now (the database and its write-ahead log).
    public func diskBytes() -> Int {
        [path, path + "-wal"].reduce(0) { sum, p in
            sum + ((try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0)
        }
    }

    /// Stores the restart state of every channel given.
    public func saveState(_ states: [PersistedChannel]) throws {
        let enc = JSONEncoder()
        try pool.write { db in
            for s in states {
                try db.execute(sql: "INSERT OR REPLACE INTO channel_state VALUES (?,?,?)",
                               arguments: [s.channel, String(decoding: try enc.encode(s), as: UTF8.self), s.updated])
            }
        }
    }

    /// The stored restart state, by channel name.
    public func loadState() throws -> [String: PersistedChannel] {
        try pool.read { db in
            var out: [String: PersistedChannel] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT channel, json FROM channel_state") {
                let json: String = row["json"]
                if let s = try? JSONDecoder().decode(PersistedChannel.self, from: Data(json.utf8)) { out[row["channel"]] = s }
            }
            return out
        }
    }

    public func setMetadata(_ m: RunMetadata, channel: String, time: Double) throws {
        let json = String(decoding: try JSONEncoder().encode(m), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO run_metadata VALUES (?,?,?)", arguments: [channel, json, time])
        }
    }

    public func metadata(channel: String) throws -> RunMetadata? {
        try pool.read { db in
            guard let json = try String.fetchOne(db, sql: "SELECT json FROM run_metadata WHERE channel = ?", arguments: [channel]) else { return nil }
            return try JSONDecoder().decode(RunMetadata.self, from: Data(json.utf8))
        }
    }

    /// Deletes samples and events older than `time` (unix s). Returns rows deleted.
    @discardableResult
    public func prune(before time: Double) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM samples WHERE t < ?", arguments: [time])
            var n = db.changesCount
            try db.execute(sql: "DELETE FROM events WHERE t < ?", arguments: [time])
            n += db.changesCount
            return n
        }
    }

    /// Samples in [since, until), oldest first, optionally of one channel.
    public func samples(since: Double, until: Double, channel: String? = nil, limit: Int = .max) throws -> [LogSample] {
        try pool.read { db in
            try Self.window(db, "SELECT * FROM samples", since: since, until: until, channelClause: channel.map { (" AND channel = ?", $0) },
                            order: " ORDER BY t, channel", limit: limit == .max ? -1 : limit).map(Self.sample)
        }
    }

    /// A stored row as a sample.
    static func sample(_ r: Row) -> LogSample {
        var s = LogSample(time: r["t"], channel: r["channel"], mode: r["mode"], setpoint: r["setpoint_mpa"], pressure: r["pressure_mpa"],
                          pressureMin: r["pressure_min_mpa"], pressureMax: r["pressure_max_mpa"], pressureMean: r["pressure_mean_mpa"],
                          force: r["force_n"], output: r["output"], temperature: r["temperature_c"], current: r["current_ma"],
                          resistance: r["resistance_ohm_cm2"], count: r["ticks"])
        s.nonUniformity = r["nonuniformity"]
        s.voltage = r["voltage_v"]
        s.loadCellForces = Self.forces(r["load_cell_forces_n"])
        s.period = r["period_s"]
        for e in LogSample.extraSignals { if let v = r[e.descriptor.logColumn] as Double? { s.signals[e] = v } }
        return s
    }

    /// Rows of `select` with t in [since, until), optionally narrowed to a channel by
    /// `channelClause` (its SQL and the name), ordered by `order`, at most `limit`.
    static func window(_ db: Database, _ select: String, since: Double, until: Double, channelClause: (String, String)?,
                       order: String, limit: Int? = nil) throws -> [Row] {
        var sql = select + " WHERE t >= ? AND t < ?"
        var args: [any DatabaseValueConvertible] = [since, until]
        if let (clause, name) = channelClause { sql += clause; args.append(name) }
        sql += order
        if let limit { sql += " LIMIT ?"; args.append(limit) }
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args))
    }

    /// Events in [since, until), oldest first.
    public func events(since: Double, until: Double, channel: String? = nil) throws -> [RunLogEvent] {
        try pool.read { db in
            try Self.window(db, "SELECT * FROM events", since: since, until: until,
                            channelClause: channel.map { (" AND (channel = ? OR channel = '')", $0) }, order: " ORDER BY t").map { r in
                RunLogEvent(time: r["t"], channel: r["channel"], kind: r["kind"], detail: r["detail"], uid: r["uid"], pid: r["pid"])
            }
        }
    }

    /// The newest sample or event time, Unix s (nil for an empty log).
    public func lastTime() throws -> Double? {
        try pool.read { db in
            let a = try Double.fetchOne(db, sql: "SELECT max(t) FROM samples")
            let b = try Double.fetchOne(db, sql: "SELECT max(t) FROM events")
            return [a, b].compactMap { $0 }.max()
        }
    }

    /// `PRAGMA integrity_check`: "ok" when the database is sound.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "no answer" }
    }

    /// Load-cell forces as stored and exported: `;`-separated N (no comma, so one CSV field).
    public static func forcesText(_ f: [Double]?) -> String? { f.map { $0.map { String(format: "%.6g", $0) }.joined(separator: ";") } }
    /// The inverse of ``forcesText(_:)``.
    public static func forces(_ text: String?) -> [Double]? {
        guard let text, !text.isEmpty else { return nil }
        let v = text.split(separator: ";").compactMap { Double($0) }
        return v.isEmpty ? nil : v
    }

    /// The columns of the signals without a field of their own (``LogSample/extraSignals``),
    /// in the run log's `samples` table and its CSV.
    public static let signalColumns: [String] = LogSample.extraSignals.map(\.descriptor.logColumn)

    /// The CSV header of ``csvLine(_:)``.
    public static let csvHeader = "time_unix,time_iso,channel,mode,setpoint_mpa,pressure_mpa,pressure_min_mpa,pressure_max_mpa,pressure_mean_mpa,force_n,output,temperature_c,current_ma,resistance_ohm_cm2,ticks,nonuniformity,voltage_v,load_cell_forces_n,period_s"
        + signalColumns.map { "," + $0 }.joined()

    /// One sample as a CSV line (RFC 4180; empty fields for absent values; text fields
    /// through ``SafeText/csvField(_:)``, so a row is always one line of 19 fields and one per signal in ``LogSample/extraSignals``).
    public static func csvLine(_ s: LogSample) -> String {
        func v(_ d: Double?) -> String { d.map { String(format: "%.6g", $0) } ?? "" }
        let iso = ISO8601DateFormatter.string(from: Date(timeIntervalSince1970: s.time), timeZone: .gmt,
                                              formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        return [String(format: "%.3f", s.time), iso, SafeText.csvField(s.channel), SafeText.csvField(s.mode), v(s.setpoint), v(s.pressure), v(s.pressureMin), v(s.pressureMax),
                v(s.pressureMean), v(s.force), v(s.output), v(s.temperature), v(s.current), v(s.resistance), "\(s.count)",
                v(s.nonUniformity), v(s.voltage), forcesText(s.loadCellForces) ?? "", v(s.period)]
            .joined(separator: ",") + LogSample.extraSignals.map { "," + v(s.signals[$0]) }.joined()
    }
}

/// A run log that cannot be opened for reading.
public struct RunLogOpenError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path) \(reason)" }
}
