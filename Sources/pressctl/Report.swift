import ArgumentParser
import Foundation
import PressLog
import PressPlot
import PressProtocol

/// One row of the run log's CSV (see `RunLog.csvHeader`), its fields found by the
/// header's names.
struct CSVSample {
    var channel: String
    var point: TracePoint
    var nonUniformity: Double?
    var resistance: Double?
    var temperature: Double?
    var current: Double?
    /// Per-load-cell mean forces, N (several cells under the plate).
    var loadCellForces: [Double]? = nil
    /// The other signals' columns (`thickness_um`, …), by column name.
    var signals: [String: Double] = [:]
}

/// Parses the run log's CSV into samples, by the header's column names (an older
/// export's missing columns are absent values).
func csvSamples(_ csv: String) -> [CSVSample] {
    var out: [CSVSample] = []
    var lines = csv.split(separator: "\n")[...]
    guard let header = lines.popFirst() else { return [] }
    let names = header.split(separator: ",").map(String.init)
    let at = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    let others = names.filter(RunLog.signalColumns.contains)
    for line in lines {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        func text(_ k: String) -> String? { at[k].flatMap { $0 < f.count ? f[$0] : nil } }
        func num(_ k: String) -> Double? { text(k).flatMap(Double.init) }
        guard let t = num("time_unix"), let ch = text("channel"), let mode = text("mode") else { continue }
        var row = CSVSample(channel: ch, point: TracePoint(time: t, pressure: num("pressure_mpa"), setpoint: num("setpoint_mpa"), min: num("pressure_min_mpa"),
                                                           max: num("pressure_max_mpa"), mode: mode),
                            nonUniformity: num("nonuniformity"), resistance: num("resistance_ohm_cm2"), temperature: num("temperature_c"),
                            current: num("current_ma"), loadCellForces: RunLog.forces(text("load_cell_forces_n")))
        for k in others { if let v = num(k) { row.signals[k] = v } }
        out.append(row)
    }
    return out
}

/// Everything a report is built from, read either from the daemon (`log_export`,
/// `log_events`, `run_get`, `sweeps`, `status`) or, with `--state-dir`, from the run
/// log itself (read-only, through the same reader as `log export --state-dir`).
struct ReportData {
    var channel: String
    var since: Double
    var until: Double
    var rows: [CSVSample]
    var events: [LogEventInfo]
    var metadata: RunMetadataInfo
    var sweeps: [SweepRecordInfo]
    var descriptor: ChannelDescriptor?
    /// The daemon's live status (online only): supervisor and controller state.
    var status: ChannelStatus?

    /// From a running daemon.
    static func online(_ c: ControlClient, channel ch: String, since s: Double, until u: Double) -> ReportData {
        var csv = ""
        _ = exportCSV(c, since: s, until: u, channel: ch) { csv += $0 }
        let events = call(c, "log_events", LogExportParams(since: s, until: u, channel: ch), as: LogEventsResult.self).events
        let meta = call(c, "run_get", ChannelParams(channel: ch), as: RunResult.self).metadata
        let status = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first
        let sweeps = call(c, "sweeps", LogExportParams(since: s, until: u, channel: ch), as: SweepsResult.self).sweeps
        var d = descriptor(in: events, channel: ch)
        if d == nil, let st = status {
            // Started before the window: the live configuration describes the channel.
            d = ChannelDescriptor(channel: ch, description: "", actuator: st.actuator, pressureApplied: st.actuator == "pneumatic" ? "pneumatic" : "spring",
                                  backend: "", cellAreaCm2: st.cellAreaCm2, loadCells: (0..<(st.loadCellForcesN?.count ?? 1)).map { "\(ch).load_cells[\($0)]" },
                                  loadCellRangeN: .nan, limits: st.limits, preset: st.chemistryPreset, bandPercent: 5)
        }
        return ReportData(channel: ch, since: s, until: u, rows: csvSamples(csv), events: onLogClock(events, d), metadata: meta, sweeps: sweeps, descriptor: d, status: status)
    }

    /// From a state directory's run log, without a daemon (read-only; safe beside a
    /// running writer).
    static func offline(_ log: RunLog, channel ch: String, since s: Double, until u: Double) throws -> ReportData {
        var csv = ""
        _ = try OfflineLog.exportCSV(log, since: s, until: u, channel: ch) { csv += $0 }
        let events = try log.events(since: s, until: u, channel: ch).map(LogEventInfo.init)
        // The channel's descriptor: the last one logged before the window ends.
        var d = descriptor(in: events, channel: ch)
        if d == nil { d = descriptor(in: try log.events(since: 0, until: u, channel: ch).filter { $0.kind == "config" }.map(LogEventInfo.init), channel: ch) }
        let sweeps = try log.sweeps(since: s, until: u, channel: ch).map { SweepRecordInfo(timeUnix: $0.time, channel: $0.channel, sweep: SweepInfo($0.result)) }
        return ReportData(channel: ch, since: s, until: u, rows: csvSamples(csv), events: onLogClock(events, d), metadata: RunMetadataInfo(try log.metadata(channel: ch)) as RunMetadataInfo,
                          sweeps: sweeps, descriptor: d, status: nil)
    }

    /// Request events (stamped by the wall clock) put on the run log's clock, where the
    /// samples and the loop's events are, and everything sorted by time again.
    static func onLogClock(_ events: [LogEventInfo], _ d: ChannelDescriptor?) -> [LogEventInfo] {
        guard let d else { return events }
        return events.map { e in
            var e = e
            if e.kind == "request" { e.timeUnix = d.logTime(wall: e.timeUnix) }
            return e
        }.sorted { $0.timeUnix < $1.timeUnix }
    }

    /// The last `config` event "channel descriptor {json}" of `channel` in `events`.
    static func descriptor(in events: [LogEventInfo], channel: String) -> ChannelDescriptor? {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        for e in events.reversed() where e.kind == "config" && e.channel == channel && e.detail.hasPrefix(ChannelDescriptor.prefix) {
            if let d = try? dec.decode(ChannelDescriptor.self, from: Data(e.detail.dropFirst(ChannelDescriptor.prefix.count).utf8)) { return d }
        }
        return nil
    }
}

/// Intervals whose readings were injected (simulator `sim_inject` of a force bias, a
/// gain error or a disconnected sensor): the logged pressure there is not the cell's,
/// so the statistics leave them out.
func injectedIntervals(_ events: [LogEventInfo], until: Double) -> [StandardReport.Interval] {
    var out: [StandardReport.Interval] = []
    var start: Double?
    var what: [String: String] = [:]
    for e in events where e.kind == "request" {
        guard !e.detail.hasPrefix("REFUSED"), !e.detail.hasPrefix("TIMEOUT"), let req = requestJSON(e.detail), req.method == "sim_inject" else { continue }
        let p = req.params
        if let b = p["force_bias_n"] as? Double { what["force_bias_n"] = b != 0 ? "force bias \(fixed(b, 1)) N" : nil }
        if let g = p["force_gain"] as? Double { what["force_gain"] = g != 1 ? "load-cell gain \(fixed(g, 3))" : nil }
        if let d = p["sensor_disconnected"] as? Bool { what["sensor_disconnected"] = d ? "sensor disconnected" : nil }
        if !what.isEmpty, start == nil { start = e.timeUnix }
        if what.isEmpty, let s0 = start {
            out.append(.init(from: s0, until: e.timeUnix, reason: "injected reading"))
            start = nil
        }
    }
    if let s0 = start { out.append(.init(from: s0, until: until, reason: "injected reading (not reset in the window)")) }
    return out
}

/// A request event's JSON (`{"id", "method", "params"}`), after any REFUSED/TIMEOUT prefix.
func requestJSON(_ detail: String) -> (method: String, params: [String: Any])? {
    guard let i = detail.firstIndex(of: "{"),
          let obj = try? JSONSerialization.jsonObject(with: Data(detail[i...].utf8)) as? [String: Any],
          let m = obj["method"] as? String else { return nil }
    return (m, obj["params"] as? [String: Any] ?? [:])
}

/// The login name of a uid on this machine, if it has one.
func userName(_ uid: Int) -> String? {
    guard let pw = getpwuid(uid_t(uid)), let n = pw.pointee.pw_name else { return nil }
    return String(cString: n)
}

/// An audited request in words: what was asked ("set the stack-pressure setpoint to 8 MPa").
func describeRequest(_ detail: String) -> String {
    var prefix = ""
    if detail.hasPrefix("REFUSED") || detail.hasPrefix("TIMEOUT") {
        let head = detail[..<(detail.firstIndex(of: "{") ?? detail.endIndex)].trimmingCharacters(in: .whitespaces)
        prefix = head.hasPrefix("REFUSED") ? "was refused (" + head.dropFirst("REFUSED".count).trimmingCharacters(in: CharacterSet(charactersIn: " ()")) + ") when trying to " : "timed out trying to "
    }
    guard let (m, p) = requestJSON(detail) else { return detail }
    func num(_ k: String) -> String? { (p[k] as? Double).map { v in v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(v) } }
    func str(_ k: String) -> String? { p[k] as? String }
    let text: String
    switch m {
    case "set":
        text = "set the stack-pressure setpoint to \(num("value") ?? "?") \(str("unit") ?? "MPa")" + (num("ramp_mpa_per_s").map { ", ramping at \($0) MPa/s" } ?? "")
    case "hold": text = "hold the channel at its present pressure"
    case "release": text = "release the pressure (actuator to its safe output)"
    case "ack": text = "acknowledge the latched faults"
    case "run_set":
        let md = p["metadata"] as? [String: Any] ?? [:]
        let parts = [(md["cell_id"] as? String).map { "cell \($0)" }, (md["chemistry"] as? String).map { "chemistry \($0)" },
                     (md["preparation_pressure_mpa"] as? Double).map { "preparation pressure \($0) MPa" },
                     (md["preparation"] as? [Any]).map { "\($0.count) preparation step(s)" },
                     (p["clear"] as? [String]).map { "cleared \($0.joined(separator: ", "))" }].compactMap { $0 }
        text = "record the cell under test" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    case "sweep":
        if str("action") == "start" || str("action") == nil {
            text = "start a critical-stack-pressure sweep from \(num("from_mpa") ?? "?") to \(num("to_mpa") ?? "?") MPa" + (num("steps").map { " in \($0) steps" } ?? "")
                + (num("dwell_s").map { ", \($0) s each" } ?? "")
        } else { text = "\(str("action") ?? "") the sweep" }
    case "tune": text = "\(str("action") ?? "start") an autotune" + (str("rule").map { " (\($0))" } ?? "")
    case "supervisor": text = "\(str("action") ?? "change") the impedance-aware supervisor"
    case "program_start": text = "start a pressure program"
    case "program_pause", "program_resume", "program_stop": text = "\(m.dropFirst("program_".count)) the pressure program"
    case "calibrate": text = "calibrate the load cell (\(str("action") ?? "?"))"
    case "reload": text = "reload the configuration"
    case "sim_inject":
        text = "inject into the simulated rig: " + SimVocabulary.describe(p)
    default:
        text = m + (p.isEmpty ? "" : " (" + p.keys.sorted().map { "\($0) \(p[$0]!)" }.joined(separator: ", ") + ")")
    }
    return prefix + text
}

/// Markdown text from users: control characters and bidi overrides escaped, Markdown
/// structure characters (`\ * _ ` < > [ ] | # ! ~ &`) backslash-escaped (``SafeText/markdown(_:)``).
func mdText(_ s: String) -> String { SafeText.markdown(s) }

/// A Markdown table cell: `mdText` (which escapes `|` too), so `Li|Li6PS5Cl|NMC811` stays one cell.
func mdCell(_ s: String) -> String { SafeText.markdown(s) }

/// The standard pressure report of a channel and a time window, as JSON (`STEM.json`)
/// and the data behind the Markdown (`STEM.md`) and the plots. Documented field by
/// field in docs/pressctl.md ("Report JSON").
struct StandardReport: Codable {
    struct Cell: Codable {
        var cellId: String?
        var chemistry: String?
        var chemistryPreset: String?
        var operatorNote: String?
        var cellAreaCm2: Double?
    }
    struct Fixture: Codable {
        /// `spring-fixture` or `pneumatic`.
        var actuator: String?
        /// How pressure is applied, in words (spring / pneumatic / constant-volume).
        var pressureApplied: String?
        var description: String?
        var backend: String?
    }
    struct Pressures: Codable {
        /// Preparation (fabrication) steps, never mixed with stack pressure.
        var preparation: [PreparationStepInfo]
        /// The single preparation pressure of `pressctl run set --preparation-pressure`.
        var preparationPressureMpa: Double?
        /// Stack-pressure setpoints regulated in the window and the time at each, s.
        var stackSetpoints: [SetpointTime]
        var limits: LimitsInfo?
    }
    struct SetpointTime: Codable { var setpointMpa: Double; var seconds: Double }
    struct Measurement: Codable {
        /// How the pressure was obtained.
        var method: String
        /// The load cells under the plate (signal ids).
        var loadCellIds: [String]
        var loadCells: Int?
        /// The area the pressure refers to: the active cell area, cm².
        var areaCm2: Double?
        var loadCellRangeN: Double?
        /// Mean and largest (max − min)/mean of the load cells over the window, when
        /// there are several; and `non_uniform_load` alarms raised.
        var nonUniformityMean: Double?
        var nonUniformityMax: Double?
        var nonUniformAlarms: Int
        /// Each load cell's mean force and share of the total over regulating time
        /// (several cells only).
        var perLoadCell: [PerLoadCell]
    }
    struct PerLoadCell: Codable { var id: String; var meanForceN: Double; var share: Double }
    struct Interval: Codable { var from: Double; var until: Double; var reason: String }
    struct Range3: Codable { var min: Double; var mean: Double; var max: Double; var samples: Int }
    struct Conditions: Codable {
        /// Cell temperature over the window, °C.
        var temperatureC: Range3?
        /// |current| / active area over the window, mA/cm².
        var currentDensityMaCm2: Range3?
        /// Every other logged signal (the run log's signal columns: `thickness_um`, …).
        var signals: [SignalRange]? = nil
    }
    struct SignalRange: Codable { var column: String; var range: Range3 }
    /// An interval in one mode (`regulating`, `constant_gap`, `holding`, …), from the
    /// logged samples' modes.
    struct ModeInterval: Codable { var mode: String; var from: Double; var until: Double }
    struct CSP: Codable {
        var timeUnix: Double
        var sweep: SweepInfo
        var plot: String?
    }
    struct Intervention: Codable {
        var timeUnix: Double
        var kind: String
        var uid: Int?
        /// Login name of the uid on the machine that wrote the report.
        var user: String?
        /// What was done, in words.
        var text: String
        /// The logged record (the raw request for `request` events).
        var detail: String
    }
    var channel: String
    var since: Double
    var until: Double
    /// `daemon` (over the socket) or `state-dir` (read from the run log directly).
    var source: String
    var cell: Cell
    var fixture: Fixture
    var pressures: Pressures
    var measurement: Measurement
    /// Stack-pressure statistics over regulating time only (see WindowSummary).
    var timeInBand: WindowSummary
    /// Intervals left out of the statistics (injected readings).
    var excludedIntervals: [Interval]
    var conditions: Conditions
    /// The modes the channel was in, interval by interval (constant-gap time is not
    /// regulated pressure: its pressure is what the cell developed, reported apart).
    var modeIntervals: [ModeInterval]
    /// The pressure the cell developed while its gap was held (constant-gap mode).
    var constantGapPressure: Range3?
    var criticalStackPressure: [CSP]
    var supervisor: SupervisorInfo?
    var control: ControlInfo?
    var faults: [LogEventInfo]
    var excursions: Excursions
    var interventions: [Intervention]

    /// Every time the settled, regulated pressure left its band in the window, from the
    /// run log's `excursion` events, with the recoveries and losses of authority.
    struct Excursions: Codable {
        var count: Int
        var timeOutOfBandS: Double
        var longestS: Double
        var worstAbsErrorMpa: Double
        /// Excursions during an injected reading (`cause injected`, or inside an interval the
        /// report leaves out as injected): the injection's, not the cell's, so listed but
        /// left out of `count` and the times, as the statistics leave the samples out.
        var duringInjection: Int
        var events: [LogEventInfo]

        /// Reads "out of band for D s …, worst E MPa from S MPa, cause C" (RunLogWriter's format).
        init(_ events: [LogEventInfo], injected: (Double) -> Bool = { _ in false }) {
            self.events = events
            let all = events.filter { $0.kind == "excursion" }
            let x = all.filter { !$0.detail.hasSuffix("cause injected") && !injected($0.timeUnix) }
            duringInjection = all.count - x.count
            count = x.count
            func number(after key: String, in text: String) -> Double? {
                guard let r = text.range(of: key) else { return nil }
                return Double(text[r.upperBound...].prefix { "-0123456789.e".contains($0) })
            }
            let durations = x.compactMap { number(after: "out of band for ", in: $0.detail) }
            timeOutOfBandS = durations.reduce(0, +)
            longestS = durations.max() ?? 0
            worstAbsErrorMpa = x.compactMap { number(after: "worst ", in: $0.detail).map(abs) }.max() ?? 0
        }
    }

    /// Builds the report from its data; writes the CSP plots beside `output` (none
    /// when `writePlots` is false).
    init(_ d: ReportData, settle: Double, output: String, source: String, writePlots: Bool = true) throws {
        let ch = d.channel
        let pts = d.rows.map(\.point)
        let stem = (output as NSString).lastPathComponent
        let iso = ISO8601DateFormatter()
        var held: [Double: Double] = [:]
        for (a, b) in zip(pts, pts.dropFirst()) where a.mode == "regulating" {
            if let sp = a.setpoint { held[(sp * 1000).rounded() / 1000, default: 0] += b.time - a.time }
        }
        let uniform = d.rows.compactMap(\.nonUniformity)
        var csp: [CSP] = []
        for (i, r) in d.sweeps.enumerated() {
            var plot: String?
            if writePlots, !r.sweep.points.isEmpty {
                let name = "\(stem)-csp-\(i + 1).svg"
                let f = r.sweep
                let curve: ((Double) -> Double)? = f.cspMpa.map { pc in { p in (f.plateauOhmCm2 ?? 0) + (f.riseOhmCm2 ?? 0) / (1 + pow(max(p, 1e-9) / pc, f.sharpness ?? 4)) } }
                let svg = SVGReport.renderKnee(points: f.points.map { ($0.pressureMpa, $0.resistanceOhmCm2, $0.resistanceSd) }, curve: curve,
                                               csp: f.cspMpa.map { ($0, f.cspLowMpa ?? $0, f.cspHighMpa ?? $0) },
                                               title: "Critical stack pressure sweep, channel \(ch), \(iso.string(from: Date(timeIntervalSince1970: r.timeUnix)))"
                                                   + (f.currentDensityMaCm2.map { ", |J| \(fixed($0, 3)) mA/cm²" } ?? ""),
                                               margin: f.margin.flatMap { m in m.pressureMpa.map { ($0, m.thresholdOhmCm2) } },
                                               upLeg: Set(f.points.indices.filter { f.points[$0].leg == "up" }))
                try svg.write(toFile: (output as NSString).deletingLastPathComponent.appendingPathComponentIfAny(name), atomically: true, encoding: .utf8)
                plot = name
            }
            csp.append(.init(timeUnix: r.timeUnix, sweep: r.sweep, plot: plot))
        }
        let desc = d.descriptor
        let area = desc?.cellAreaCm2 ?? d.status?.cellAreaCm2
        let excluded = injectedIntervals(d.events, until: d.until)
        func range(_ v: [Double]) -> Range3? { v.isEmpty ? nil : Range3(min: v.min()!, mean: v.reduce(0, +) / Double(v.count), max: v.max()!, samples: v.count) }
        let cells = desc?.loadCells ?? []
        channel = ch; since = d.since; until = d.until; self.source = source
        cell = .init(cellId: d.metadata.cellId, chemistry: d.metadata.chemistry, chemistryPreset: desc?.preset ?? d.status?.chemistryPreset,
                     operatorNote: d.metadata.operatorNote, cellAreaCm2: area)
        fixture = .init(actuator: desc?.actuator ?? d.status?.actuator, pressureApplied: desc?.pressureApplied, description: desc?.description, backend: desc?.backend)
        pressures = .init(preparation: d.metadata.preparation ?? [], preparationPressureMpa: d.metadata.preparationPressureMpa,
                          stackSetpoints: held.sorted { $0.key < $1.key }.map { .init(setpointMpa: $0.key, seconds: $0.value) },
                          limits: desc?.limits ?? d.status?.limits)
        measurement = .init(method: area.map { "total force of \(max(cells.count, 1)) load cell\(cells.count > 1 ? "s" : "") under the plate, in series with the cell stack, ÷ the active cell area (\(fixed($0, 3)) cm²)" } ?? "—",
                            loadCellIds: cells, loadCells: cells.isEmpty ? nil : cells.count, areaCm2: area,
                            loadCellRangeN: desc?.loadCellRangeN.isFinite == true ? desc?.loadCellRangeN : nil,
                            nonUniformityMean: uniform.isEmpty ? nil : uniform.reduce(0, +) / Double(uniform.count),
                            nonUniformityMax: uniform.max(),
                            nonUniformAlarms: d.events.filter { $0.kind == "fault" && $0.detail.hasPrefix("non_uniform_load") }.count,
                            perLoadCell: loadCellShares(d.rows.filter { r in r.point.mode == "regulating" && !excluded.contains { $0.from...$0.until ~= r.point.time } }
                                                            .compactMap(\.loadCellForces)).enumerated().map { k, v in
                                                                PerLoadCell(id: k < cells.count ? cells[k] : "load cell \(k + 1)", meanForceN: v.meanForceN, share: v.share)
                                                            })
        timeInBand = WindowSummary(pts, band: (desc?.bandPercent ?? 5) / 100, settle: settle, excluding: excluded.map { $0.from...$0.until })
        excludedIntervals = excluded
        conditions = .init(temperatureC: range(d.rows.compactMap(\.temperature)),
                           currentDensityMaCm2: area.flatMap { a in range(d.rows.compactMap(\.current).map { abs($0) / a }) })
        let signalColumns = Set(d.rows.flatMap(\.signals.keys)).sorted()
        if !signalColumns.isEmpty {
            conditions.signals = signalColumns.compactMap { k in range(d.rows.compactMap { $0.signals[k] }).map { SignalRange(column: k, range: $0) } }
        }
        modeIntervals = []
        for r in d.rows {
            if let last = modeIntervals.last, last.mode == r.point.mode { modeIntervals[modeIntervals.count - 1].until = r.point.time }
            else { modeIntervals.append(ModeInterval(mode: r.point.mode, from: r.point.time, until: r.point.time)) }
        }
        let gap = d.rows.filter { $0.point.mode == "constant_gap" }.compactMap(\.point.pressure)
        constantGapPressure = range(gap)
        criticalStackPressure = csp
        supervisor = d.status?.control?.supervisor
        control = d.status?.control
        faults = d.events.filter { $0.kind == "fault" }
        excursions = Excursions(d.events.filter { ["excursion", "recovery", "authority"].contains($0.kind) },
                                injected: { t in excluded.contains { $0.from <= t && t <= $0.until } })
        interventions = d.events.filter { ["request", "ack", "program", "autotune", "sweep", "supervisor", "config"].contains($0.kind) && !$0.detail.hasPrefix(ChannelDescriptor.prefix) }
            .map { e in
                Intervention(timeUnix: e.timeUnix, kind: e.kind, uid: e.uid, user: e.uid.flatMap(userName),
                             text: e.kind == "request" ? describeRequest(e.detail) : e.detail, detail: e.detail)
            }
    }

    /// What the pressure figure marks: faults, injections, excursions, setpoint changes
    /// and the other interventions, where they happened.
    var plotEvents: [PlotEvent] {
        var out: [PlotEvent] = faults.map { PlotEvent(time: $0.timeUnix, kind: .fault, label: $0.detail) }
        out += excursions.events.filter { $0.kind == "excursion" }.map { PlotEvent(time: $0.timeUnix, kind: .excursion, label: $0.detail) }
        for i in interventions where i.kind == "request" {
            let kind: PlotEvent.Kind = i.text.hasPrefix("inject") ? .injection : i.text.hasPrefix("set the stack-pressure setpoint") ? .setpoint : .intervention
            if i.text.hasPrefix("record the cell") || i.text.contains("refused") { continue }
            out.append(PlotEvent(time: i.timeUnix, kind: kind, label: (i.user ?? i.uid.map { "uid \($0)" } ?? "") + ": " + i.text))
        }
        return out.sorted { $0.time < $1.time }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the standard pressure report of a time window: Markdown, JSON and SVG plots.",
        discussion: """
        Following the field's proposed reporting standard: preparation (component, pressure, hold time, temperature) \
        and stack pressure kept apart; the fixture and how pressure is applied; where the pressure was measured, \
        over which area and how uniform it was; stack-pressure statistics over regulating time only, time in band \
        and every excursion; temperature and current density; the critical stack pressure of every sweep with its \
        current density; faults and interventions in words, with user names. Writes STEM.md, STEM.json, STEM.svg \
        and STEM-csp-N.svg. With --state-dir it reads the run log directly, without a daemon (read-only, safe \
        beside a running pressd, like journalctl -D). 'pressctl compare' puts several channels or run logs in one \
        table and one figure.
        """)
    @Option(help: "Start: ISO 8601, unix seconds, now, or a time ago (2h, 30m, 1d).") var since = "1h"
    @Option(help: "End (exclusive), same forms.") var until = "now"
    @Option(name: .shortAndLong, help: "Output file stem: writes STEM.md, STEM.json, STEM.svg (and STEM-csp-N.svg).") var output = "pressure-report"
    @Option(help: "Seconds after a setpoint change that count as settling, not as time in band.") var settle = 10.0
    @Option(help: ArgumentHelp("Read the run log in this state directory directly, without a daemon (read-only; safe beside a running pressd). Needs --channel.", valueName: "dir"))
    var stateDir: String?
    @OptionGroup var conn: Connection

    func run() throws {
        let s = try parseTime(since), u = try parseTime(until)
        guard u > s else { throw ValidationError("--until must be after --since") }
        let data: ReportData
        if let stateDir {
            guard let ch = conn.channel else { throw ValidationError("--state-dir needs --channel (the run log holds every channel)") }
            data = try ReportData.offline(OfflineLog.open(stateDir), channel: ch, since: s, until: u)
        } else {
            let c = try conn.connect()
            data = ReportData.online(c, channel: try conn.requireChannel(c), since: s, until: u)
        }
        let report = try StandardReport(data, settle: settle, output: output, source: stateDir == nil ? "daemon" : "state-dir")
        let iso = ISO8601DateFormatter()
        let title = "pressd channel \(data.channel): \(iso.string(from: Date(timeIntervalSince1970: s))) – \(iso.string(from: Date(timeIntervalSince1970: u)))"
        let stem = (output as NSString).lastPathComponent
        // The figure's caption is in one time base, run time from the first sample (its
        // UTC time in the axis title), so the title does not repeat the window.
        let figureTitle = "Stack pressure, channel \(data.channel)" + (report.cell.cellId.map { ", cell \($0)" } ?? "")
        try SVGReport.render(data.rows.map(\.point), title: figureTitle, band: (data.descriptor?.bandPercent ?? 5) / 100, events: report.plotEvents,
                             injected: report.excludedIntervals.map { $0.from...max($0.from, $0.until) })
            .write(toFile: output + ".svg", atomically: true, encoding: .utf8)
        try Report.markdown(report, title: title, svg: stem + ".svg").write(toFile: output + ".md", atomically: true, encoding: .utf8)
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try enc.encode(report).write(to: URL(fileURLWithPath: output + ".json"))
        if conn.json { return printJSON(report) }
        print("\(output).md, .json, .svg\(report.criticalStackPressure.isEmpty ? "" : " and \(report.criticalStackPressure.count) CSP plot(s)"): \(report.timeInBand.samples) samples, "
              + "\(fixed(report.timeInBand.within5 * 100, 2)) % of steady regulating samples within ±5 %")
    }

    static func markdown(_ r: StandardReport, title: String, svg: String) -> String {
        func pct(_ v: Double) -> String { fixed(v * 100, 2) + " %" }
        func mpa(_ v: Double?) -> String { v.map { fixed($0, 3) + " MPa" } ?? "—" }
        func num(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(v) }
        func when(_ t: Double) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
        func duration(_ s: Double) -> String { s >= 3600 ? fixed(s / 3600, 2) + " h" : s >= 120 ? fixed(s / 60, 1) + " min" : fixed(s, 0) + " s" }
        let sum = r.timeInBand
        let m = r.measurement
        let uniformity = (m.loadCells ?? 1) > 1
            ? "\(m.nonUniformityMean.map(pct) ?? "—") / \(m.nonUniformityMax.map(pct) ?? "—")"
            : "one load cell: not measurable (a single cell cannot show tilt)"
        let setpoints = r.pressures.stackSetpoints.isEmpty ? "none regulated in the window"
            : r.pressures.stackSetpoints.map { "\(fixed($0.setpointMpa, 3)) MPa for \(fixed($0.seconds, 0)) s" }.joined(separator: "; ")
        var s = """
        # Pressure report: channel \(mdText(r.channel))

        \(mdText(title)) (read from \(r.source == "daemon" ? "the daemon" : "the run log in a state directory, without a daemon"))

        ![pressure](\(svg))

        *Stack pressure against run time from the window's first sample (its UTC time in the axis title); the y axis spans the regulated data: injected readings and trips are shaded, what went beyond the axis marked at its edge; events numbered above the plot and listed below it.*

        ## Cell

        | | |
        |---|---|
        | cell id | \(r.cell.cellId.map(mdCell) ?? "—") |
        | chemistry | \(r.cell.chemistry.map(mdCell) ?? "—")\(r.cell.chemistryPreset.map { " (limits from the `\($0)` preset)" } ?? "") |
        | active cell area (the area the pressure refers to) | \(r.cell.cellAreaCm2.map { "\(num($0)) cm²" } ?? "—") |
        | operator note | \(r.cell.operatorNote.map(mdCell) ?? "—") |

        ## Preparation pressure (fabrication, before assembly)

        Preparation (fabrication) pressure and stack pressure are different quantities and are
        reported apart.


        """
        if r.pressures.preparation.isEmpty {
            s += r.pressures.preparationPressureMpa.map { "One preparation pressure was recorded: \(num($0)) MPa (component, hold time and temperature not recorded; `pressctl run set --preparation`).\n" }
                ?? "Not recorded (`pressctl run set --preparation COMPONENT,MPA,HOLD_S,TEMP_C`).\n"
        } else {
            s += "| component | pressure | hold time | temperature |\n|---|---:|---:|---:|\n"
            for p in r.pressures.preparation {
                s += "| \(mdCell(p.component)) | \(num(p.pressureMpa)) MPa | \(p.holdS.map { duration($0) } ?? "—") | \(p.temperatureC.map { "\(num($0)) °C" } ?? "—") |\n"
            }
        }
        let fx = r.fixture
        s += """

        ## Stack pressure (held by pressd during operation)

        | | |
        |---|---|
        | fixture | \(fx.actuator.map { mdCell($0) } ?? "—")\(fx.description.flatMap { $0.isEmpty ? nil : " (\(mdCell($0)))" } ?? "") |
        | how pressure is applied | \(fx.pressureApplied.map(mdCell) ?? "—") |
        | stack pressure setpoints (regulated by pressd) | \(setpoints) |
        | channel limits | \(r.pressures.limits.map { "setpoints \(num($0.minMpa))–\(num($0.maxMpa)) MPa, trip at \(num($0.tripMpa)) MPa" } ?? "—") |

        ## Where pressure was measured, over which area, and how uniform it was

        | | |
        |---|---|
        | method | \(mdCell(m.method)) |
        | area the pressure refers to | \(m.areaCm2.map { "\(num($0)) cm² (active cell area)" } ?? "—") |
        | load cells | \(m.loadCellIds.isEmpty ? "—" : m.loadCellIds.map(mdCell).joined(separator: ", "))\(m.loadCellRangeN.map { " (range \(num($0)) N each)" } ?? "") |
        | per load cell: mean force and share of the total (regulating time) | \(m.perLoadCell.isEmpty ? "—" : m.perLoadCell.map { "\(mdCell($0.id)) \(fixed($0.meanForceN, 1)) N (\(fixed($0.share * 100, 1)) %)" }.joined(separator: "; ")) |
        | non-uniformity (max − min)/mean across the load cells, mean / largest | \(uniformity) |
        | `non_uniform_load` alarms | \(m.nonUniformAlarms) |

        ## Stack pressure statistics and time in band

        Over **regulating time only**: samples while regulating a setpoint, after \(fixed(sum.settleSeconds, 0)) s of settling, outside
        injected readings. Released, tripped and held samples are counted by mode and left out.

        | | |
        |---|---|
        | samples in the window (one per log period) | \(sum.samples) |
        | samples per mode | \(sum.modes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) |
        | regulating samples (the statistics below) | \(sum.regulatingSamples) (\(duration(sum.regulatingSeconds))) |
        | settling samples (left out) | \(sum.settlingSamples) |
        | injected-reading samples (left out) | \(sum.excludedSamples) |
        | time in band ±5 % | \(duration(sum.secondsWithin5)) of \(duration(sum.regulatingSeconds)) (\(pct(sum.within5)) of samples) |
        | within ±1 % of setpoint | \(pct(sum.within1)) |
        | fast-loop envelope within ±5 % | \(sum.envelopeWithin5.map(pct) ?? "—") |
        | worst error | \(sum.worstError.map(pct) ?? "—") |
        | pressure min / mean / max | \(mpa(sum.pressureMin)) / \(mpa(sum.pressureMean)) / \(mpa(sum.pressureMax)) |
        | sd of (pressure − setpoint) | \(mpa(sum.errorSd)) |


        """
        if r.modeIntervals.count > 1 || r.modeIntervals.first?.mode != "regulating" {
            let shown = r.modeIntervals.prefix(40)
            s += "Modes, interval by interval: " + shown.map { "\(when($0.from)) – \(when($0.until)) \(mdText($0.mode))" }.joined(separator: "; ")
                + (r.modeIntervals.count > shown.count ? "; … \(r.modeIntervals.count - shown.count) more" : "") + ".\n\n"
        }
        if let g = r.constantGapPressure {
            s += "Constant gap (the stack thickness held, the pressure free): the cell developed \(mpa(g.min)) … \(mpa(g.max)) (mean \(mpa(g.mean)), \(g.samples) samples).\n\n"
        }
        for sig in r.conditions.signals ?? [] {
            s += "\(mdText(sig.column)): min / mean / max \(fixed(sig.range.min, 3)) / \(fixed(sig.range.mean, 3)) / \(fixed(sig.range.max, 3)) over \(sig.range.samples) samples.\n\n"
        }
        if !r.excludedIntervals.isEmpty {
            s += "Left out: " + r.excludedIntervals.map { "\(when($0.from)) – \(when($0.until)) (\(mdText($0.reason)))" }.joined(separator: "; ") + ".\n\n"
        }
        let c = r.conditions
        s += """
        ## Temperature and current density

        | | min | mean | max | samples |
        |---|---:|---:|---:|---:|
        | cell temperature, °C | \(c.temperatureC.map { "\(fixed($0.min, 1)) | \(fixed($0.mean, 1)) | \(fixed($0.max, 1)) | \($0.samples)" } ?? "— | — | — | 0") |
        | current density \\|J\\| (\\|current\\| ÷ area), mA/cm² | \(c.currentDensityMaCm2.map { "\(fixed($0.min, 3)) | \(fixed($0.mean, 3)) | \(fixed($0.max, 3)) | \($0.samples)" } ?? "— | — | — | 0") |

        ## Critical stack pressure


        """
        if r.criticalStackPressure.isEmpty {
            s += "No sweep in this window (`pressctl sweep`).\n\n"
        }
        for (i, c) in r.criticalStackPressure.enumerated() {
            let f = c.sweep
            s += "### Sweep \(i + 1), \(when(c.timeUnix)): \(f.status)\(f.note.map { " — \($0)" } ?? "")\n\n"
            if let v = f.cspMpa {
                s += "**CSP \(fixed(v, 2)) MPa** (95 % interval \(fixed(f.cspLowMpa ?? v, 2))–\(fixed(f.cspHighMpa ?? v, 2)) MPa): the middle of the fitted "
                s += "resistance knee R(P) = \(fixed(f.plateauOhmCm2 ?? 0, 1)) + \(fixed(f.riseOhmCm2 ?? 0, 1)) / (1 + (P/\(fixed(v, 2)))^\(fixed(f.sharpness ?? 0, 1))) Ω·cm²; "
                s += "90 % of the excess resistance is gone at P90 = \(fixed(f.p90Mpa ?? 0, 2)) MPa"
                if let a = f.p90LowMpa, let b = f.p90HighMpa { s += " (95 % interval \(fixed(a, 2))–\(fixed(b, 2)) MPa)" }
                s += ".\n\n"
            }
            if let m = f.margin {
                let crit = "the highest pressure below which interfacial resistance exceeds \(fixed(1 + m.margin, 2)) × the high-pressure reference \(fixed(m.referenceOhmCm2, 2)) Ω·cm² (mean of the two highest-pressure levels)"
                if let p = m.pressureMpa {
                    s += "**Margin pressure P_m \(fixed(p, 2)) MPa** (95 % interval \(m.lowMpa.map { fixed($0, 2) } ?? "< \(fixed(m.lowestPressureMpa, 2))")–\(fixed(m.highMpa ?? p, 2)) MPa): \(crit)"
                    s += f.cspMpa == nil ? ". No knee inside the swept range: this is the stated criterion.\n\n" : ".\n\n"
                } else {
                    s += "Margin pressure below the swept range: resistance stays within \(fixed(m.margin * 100, 0)) % of the reference \(fixed(m.referenceOhmCm2, 2)) Ω·cm² down to \(fixed(m.lowestPressureMpa, 2)) MPa.\n\n"
                }
            }
            if let d = f.dynamic {
                let thr = "\(fixed(d.thresholdPerH * 100, 1)) %/h"
                if let p = d.cspMpa, let g = d.grewAtMpa {
                    s += "**Dynamic CSP \(fixed(p, 2)) MPa** (bracket \(fixed(g, 2))–\(fixed(p, 2)) MPa): the lowest level, scanning down, at which interfacial resistance did not grow faster than \(thr) while the cell was stripped"
                    s += (d.currentDensityMaCm2.map { ", at |J| \(fixed($0, 3)) mA/cm²" } ?? "") + ".\n\n"
                } else if let p = d.cspMpa {
                    s += "Dynamic CSP at or below \(fixed(p, 2)) MPa: no level grew faster than \(thr).\n\n"
                } else {
                    s += "Dynamic CSP above the swept range: resistance grew faster than \(thr) at the highest level.\n\n"
                }
            }
            if f.currentDensityMaCm2 != nil || f.temperatureC != nil {
                s += "Held at " + [f.currentDensityMaCm2.map { "mean |J| \(fixed($0, 3)) mA/cm²" }, f.temperatureC.map { "\(fixed($0, 1)) °C" }].compactMap { $0 }.joined(separator: ", ")
                s += " (means over the measured levels; direction \(f.direction ?? "down"), protocol \(f.sweepProtocol ?? "static")).\n\n"
            }
            if let legs = f.legs, legs.count > 1 {
                for l in legs.dropFirst() {
                    s += "\(l.leg.capitalized) leg: " + (l.cspMpa.map { "knee P_c \(fixed($0, 2)) MPa (95 % \(fixed(l.cspLowMpa ?? $0, 2))–\(fixed(l.cspHighMpa ?? $0, 2)))" } ?? "no knee")
                    s += (l.margin?.pressureMpa).map { "; P_m \(fixed($0, 2)) MPa" } ?? "; P_m below the swept range"
                    s += (l.dynamic?.cspMpa).map { "; dynamic CSP \(fixed($0, 2)) MPa" } ?? ""
                    s += ".\n\n"
                }
            }
            if let h = f.hysteresis {
                var parts: [String] = []
                if let d = h.cspShiftMpa { parts.append("P_c up − down \(fixed(d, 2)) ± \(fixed(h.cspShiftHalfWidthMpa ?? .nan, 2)) MPa") }
                if let d = h.marginShiftMpa { parts.append("P_m up − down \(fixed(d, 2)) ± \(fixed(h.marginShiftHalfWidthMpa ?? .nan, 2)) MPa") }
                if let m = h.meanRelativeResistanceDifference { parts.append("resistance on the way up \(fixed(m * 100, 1)) % against the way down (mean over \(h.pairs) setpoints)") }
                s += "Hysteresis: " + (parts.isEmpty ? "not measurable" : parts.joined(separator: "; ")) + ".\n\n"
            }
            if let p = c.plot { s += "![resistance against pressure](\(p))\n\n" }
            let dyn = f.sweepProtocol == "dynamic"
            s += "| stack pressure, MPa | interfacial resistance, Ω·cm² | ± sd | samples | mean abs. current density, mA/cm² | T °C | leg |" + (dyn ? " dR/dt %/h | grows |" : "") + "\n"
            s += "|---:|---:|---:|---:|---:|---:|---|" + (dyn ? "---:|---|" : "") + "\n"
            for p in f.points {
                s += "| \(fixed(p.pressureMpa, 3)) | \(fixed(p.resistanceOhmCm2, 2)) | \(fixed(p.resistanceSd, 2)) | \(p.samples) | "
                s += "\(p.currentDensityMaCm2.map { fixed($0, 3) } ?? "—") | \(p.temperatureC.map { fixed($0, 1) } ?? "—") | \(p.leg ?? "down") |"
                if dyn {
                    let se = (p.slopeSeOhmCm2PerH ?? .nan) / max(p.resistanceOhmCm2, 1e-12) * 100
                    s += " \(p.slopePctPerH.map { fixed($0, 2) + " ± " + fixed(se, 2) } ?? "—") | \(p.grows == true ? "yes" : "no") |"
                }
                s += "\n"
            }
            s += "\n"
        }
        if let v = r.supervisor {
            s += "### Impedance-aware supervisor\n\n"
            s += "\(v.locked ? "Locked (\(v.lockReason ?? ""))" : (v.converged ? "Converged" : "Active")); window \(v.windowMinMpa)–\(v.windowMaxMpa) MPa; "
            s += "resistance kept within \(fixed(1 + v.margin, 2)) × its learned minimum \(v.minimumOhmCm2.map { fixed($0, 2) + " Ω·cm²" } ?? "(not yet learned)").\n"
            if let l = v.lastReason { s += "Last decision: \(l)\n" }
            s += "\n"
        }
        if let k = r.control {
            s += "## Control\n\nStrategy `\(k.strategy)` (now `\(k.active)`), kp \(fixed(k.kp, 4)), ki \(fixed(k.ki, 4))"
            if let t = k.lastTune { s += "; autotuned (\(t.rule)) at \(fixed(t.setpointMpa, 2)) MPa" }
            s += ".\n\n"
        }
        s += "## Faults (\(r.faults.count))\n\n"
        s += r.faults.isEmpty ? "None.\n" : r.faults.map { "- \(when($0.timeUnix)): \(mdText($0.detail))" }.joined(separator: "\n") + "\n"
        let x = r.excursions
        s += "\n## Excursions out of band (\(x.count))\n\n"
        if x.count > 0 {
            s += "\(fixed(x.timeOutOfBandS, 1)) s out of band in all; longest \(fixed(x.longestS, 1)) s; worst \(fixed(x.worstAbsErrorMpa, 3)) MPa from the setpoint.\n\n"
        }
        func injected(_ e: LogEventInfo) -> Bool {
            e.kind == "excursion" && (e.detail.hasSuffix("cause injected") || r.excludedIntervals.contains { $0.from <= e.timeUnix && e.timeUnix <= $0.until })
        }
        if x.duringInjection > 0 {
            s += "Besides these, \(x.duringInjection) during an injected reading (the logged pressure there is not the cell's): listed, not counted.\n\n"
        }
        s += x.events.isEmpty ? "None.\n" : x.events.prefix(300).map {
            "- \(when($0.timeUnix)) \($0.kind): \(mdText($0.detail))" + (injected($0) ? " *(during an injected reading)*" : "")
        }.joined(separator: "\n") + "\n"
        s += "\n## Interventions (\(r.interventions.count))\n\n"
        s += r.interventions.isEmpty ? "None.\n" : r.interventions.prefix(300).map { e in
            let who = e.user.map { "\($0) (uid \(e.uid!))" } ?? e.uid.map { "uid \($0)" }
            return "- \(when(e.timeUnix)) \(e.kind): " + (who.map { "**\(mdText($0))** " } ?? "") + mdText(e.text)
        }.joined(separator: "\n") + "\n"
        return s
    }
}

extension Report {
    /// Several channels or run logs side by side: one table, one figure (`pressctl compare`).
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare",
            abstract: "Compare channels or run logs: one table (setpoint, time in band, mean, sd, excursions, faults, CSP, |J|, T) and one figure.",
            discussion: """
            Each SOURCE is CHANNEL (from the daemon, or from --state-dir when given) or DIR:CHANNEL (the run log in state \
            directory DIR, read-only). Statistics are the standard report's (regulating time only). Writes STEM.md, \
            STEM.json and STEM.svg (every source's pressure against run time, on round ticks); with --json it prints \
            the comparison and writes files only when --output is given.
            """)
        @Argument(help: ArgumentHelp("CHANNEL or DIR:CHANNEL, two or more.", valueName: "source")) var sources: [String]
        @Option(help: "Start: ISO 8601, unix seconds, now, or a time ago (2h, 30m, 1d).") var since = "1h"
        @Option(help: "End (exclusive), same forms.") var until = "now"
        @Option(name: .shortAndLong, help: "Output file stem: writes STEM.md, STEM.json, STEM.svg (default pressure-comparison; with --json, none unless given).") var output: String?
        @Option(help: "Seconds after a setpoint change that count as settling, not as time in band.") var settle = 10.0
        @Option(help: ArgumentHelp("Read sources without DIR: from this state directory instead of the daemon.", valueName: "dir")) var stateDir: String?
        @Option(name: .long, help: "Control socket path (as for the other commands).") var socket: String?
        @Flag(name: .long, help: "Print the comparison's JSON.") var json = false

        func validate() throws {
            guard !sources.isEmpty else { throw ValidationError("name at least one SOURCE (CHANNEL or DIR:CHANNEL)") }
            for s in sources where s.hasSuffix(":") || s.isEmpty { throw ValidationError("'\(s)' is not CHANNEL or DIR:CHANNEL") }
        }

        /// One compared source.
        struct Row: Codable {
            var source: String
            var channel: String
            var cellId: String?
            var chemistry: String?
            var preset: String?
            var fixture: String?
            var areaCm2: Double?
            var setpointsMpa: [Double]
            var regulatingSeconds: Double
            var within5: Double
            var pressureMeanMpa: Double?
            var errorSdMpa: Double?
            var worstError: Double?
            var excursions: Int
            var faults: Int
            var cspMpa: [Double]
            var currentDensityMeanMaCm2: Double?
            var temperatureMeanC: Double?
        }

        func run() throws {
            let s = try parseTime(since), u = try parseTime(until)
            guard u > s else { throw ValidationError("--until must be after --since") }
            var client: ControlClient?
            var logs: [String: RunLog] = [:]
            var rows: [Row] = []
            var series: [(label: String, points: [(Double, Double)])] = []
            for src in sources {
                var dir = stateDir, ch = src
                if let colon = src.lastIndex(of: ":") { dir = String(src[..<colon]); ch = String(src[src.index(after: colon)...]) }
                let data: ReportData
                if let dir {
                    if logs[dir] == nil { logs[dir] = try OfflineLog.open(dir) }
                    data = try ReportData.offline(logs[dir]!, channel: ch, since: s, until: u)
                } else {
                    if client == nil {
                        var conn = try Connection.parse(socket.map { ["--socket", $0] } ?? [])
                        conn.channel = ch
                        client = try conn.connect()
                    }
                    data = ReportData.online(client!, channel: ch, since: s, until: u)
                }
                let r = try StandardReport(data, settle: settle, output: output ?? "pressure-comparison", source: dir == nil ? "daemon" : "state-dir", writePlots: false)
                let t = r.timeInBand
                rows.append(Row(source: src, channel: ch, cellId: r.cell.cellId, chemistry: r.cell.chemistry, preset: r.cell.chemistryPreset,
                                fixture: r.fixture.actuator, areaCm2: r.cell.cellAreaCm2, setpointsMpa: r.pressures.stackSetpoints.map(\.setpointMpa),
                                regulatingSeconds: t.regulatingSeconds, within5: t.within5, pressureMeanMpa: t.pressureMean, errorSdMpa: t.errorSd,
                                worstError: t.worstError, excursions: r.excursions.count, faults: r.faults.count,
                                cspMpa: r.criticalStackPressure.compactMap(\.sweep.cspMpa),
                                currentDensityMeanMaCm2: r.conditions.currentDensityMaCm2?.mean, temperatureMeanC: r.conditions.temperatureC?.mean))
                series.append((src, data.rows.compactMap { row in row.point.pressure.map { (row.point.time, $0) } }))
            }
            // The files: always without --json, with it only when asked for by --output.
            if let output = output ?? (json ? nil : "pressure-comparison") {
                let iso = ISO8601DateFormatter()
                let title = "pressd comparison: \(iso.string(from: Date(timeIntervalSince1970: s))) – \(iso.string(from: Date(timeIntervalSince1970: u)))"
                let stem = (output as NSString).lastPathComponent
                try SVGReport.renderComparison(series, title: title).write(toFile: output + ".svg", atomically: true, encoding: .utf8)
                try Self.markdown(rows, title: title, svg: stem + ".svg").write(toFile: output + ".md", atomically: true, encoding: .utf8)
                let enc = JSONEncoder()
                enc.keyEncodingStrategy = .convertToSnakeCase
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                try enc.encode(rows).write(to: URL(fileURLWithPath: output + ".json"))
                if !json { print("\(output).md, .json, .svg: \(rows.count) sources") }
            }
            if json { printJSON(["sources": rows]) }
        }

        static func markdown(_ rows: [Row], title: String, svg: String) -> String {
            func o(_ v: Double?, _ d: Int) -> String { v.map { fixed($0, d) } ?? "—" }
            var s = "# Pressure comparison\n\n\(mdText(title))\n\n![pressure of every source](\(svg))\n\n"
            s += "Statistics over regulating time only (as in the standard report): settling, released, tripped, held and injected-reading samples left out.\n\n"
            s += "| source | cell | chemistry | preset | fixture | area, cm² | setpoints, MPa | regulating | in band ±5 % | mean, MPa | sd of error, MPa | worst error | excursions | faults | CSP, MPa | mean \\|J\\|, mA/cm² | mean T, °C |\n"
            s += "|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n"
            for r in rows {
                s += "| \(mdCell(r.source)) | \(r.cellId.map(mdCell) ?? "—") | \(r.chemistry.map(mdCell) ?? "—") | \(r.preset.map(mdCell) ?? "—") | \(r.fixture.map(mdCell) ?? "—") | "
                s += "\(o(r.areaCm2, 2)) | \(r.setpointsMpa.isEmpty ? "—" : r.setpointsMpa.map { fixed($0, 3) }.joined(separator: ", ")) | \(fixed(r.regulatingSeconds, 0)) s | "
                s += "\(fixed(r.within5 * 100, 2)) % | \(o(r.pressureMeanMpa, 3)) | \(o(r.errorSdMpa, 3)) | \(r.worstError.map { fixed($0 * 100, 2) + " %" } ?? "—") | "
                s += "\(r.excursions) | \(r.faults) | \(r.cspMpa.isEmpty ? "—" : r.cspMpa.map { fixed($0, 2) }.joined(separator: ", ")) | \(o(r.currentDensityMeanMaCm2, 3)) | \(o(r.temperatureMeanC, 1)) |\n"
            }
            return s
        }
    }
}

extension String {
    /// `self/name`, or just `name` when self is empty.
    func appendingPathComponentIfAny(_ name: String) -> String { isEmpty ? name : (self as NSString).appendingPathComponent(name) }
}
