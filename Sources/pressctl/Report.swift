import ArgumentParser
import Foundation
import PressPlot
import PressProtocol

/// One row of the run log's CSV (see `RunLog.csvHeader`).
struct CSVSample {
    var channel: String
    var point: TracePoint
    var nonUniformity: Double?
    var resistance: Double?
}

/// Parses the run log's CSV into samples.
func csvSamples(_ csv: String) -> [CSVSample] {
    var out: [CSVSample] = []
    for line in csv.split(separator: "\n").dropFirst() {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 15, let t = Double(f[0]) else { continue }
        out.append(CSVSample(channel: f[2], point: TracePoint(time: t, pressure: Double(f[5]), setpoint: Double(f[4]), min: Double(f[6]), max: Double(f[7]), mode: f[3]),
                             nonUniformity: f.count > 15 ? Double(f[15]) : nil, resistance: Double(f[13])))
    }
    return out
}

/// The standard pressure report of a channel and a time window, as JSON (`STEM.json`)
/// and the data behind the Markdown (`STEM.md`) and the plots.
struct StandardReport: Codable {
    struct Cell: Codable {
        var cellId: String?
        var chemistry: String?
        var chemistryPreset: String?
        var operatorNote: String?
        var cellAreaCm2: Double?
    }
    struct Pressures: Codable {
        /// Fabrication pressure (from `pressctl run set`), never mixed with stack pressure.
        var preparationPressureMpa: Double?
        /// Stack-pressure setpoints regulated in the window and the time at each, s.
        var stackSetpoints: [SetpointTime]
        var limits: LimitsInfo?
    }
    struct SetpointTime: Codable { var setpointMpa: Double; var seconds: Double }
    struct Measurement: Codable {
        /// How the pressure was obtained.
        var method: String
        var loadCells: Int?
        /// Mean and largest (max − min)/mean of the load cells over the window, when
        /// there are several; and `non_uniform_load` alarms raised.
        var nonUniformityMean: Double?
        var nonUniformityMax: Double?
        var nonUniformAlarms: Int
    }
    struct CSP: Codable {
        var timeUnix: Double
        var sweep: SweepInfo
        var plot: String?
    }
    var channel: String
    var since: Double
    var until: Double
    var cell: Cell
    var pressures: Pressures
    var measurement: Measurement
    var timeInBand: WindowSummary
    var criticalStackPressure: [CSP]
    var supervisor: SupervisorInfo?
    var control: ControlInfo?
    var faults: [LogEventInfo]
    var excursions: Excursions
    var interventions: [LogEventInfo]

    /// Every time the settled, regulated pressure left its band in the window, from the
    /// run log's `excursion` events, with the recoveries and losses of authority.
    struct Excursions: Codable {
        var count: Int
        var timeOutOfBandS: Double
        var longestS: Double
        var worstAbsErrorMpa: Double
        var events: [LogEventInfo]

        /// Reads "out of band for D s …, worst E MPa from S MPa, cause C" (RunLogWriter's format).
        init(_ events: [LogEventInfo]) {
            self.events = events
            let x = events.filter { $0.kind == "excursion" }
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
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the standard pressure report of a time window: Markdown, JSON and SVG plots.",
        discussion: """
        Following the field's proposed reporting standard: preparation and stack pressure kept apart; where the \
        pressure was measured and how uniform it was across load cells; time in band (±5 %, ±1 %); the critical \
        stack pressure of every sweep in the window (with its 95 % interval and a resistance–pressure plot); faults \
        and interventions (who, when). Writes STEM.md, STEM.json, STEM.svg and STEM-csp-N.svg.
        """)
    @Option(help: "Start: ISO 8601, unix seconds, now, or a time ago (2h, 30m, 1d).") var since = "1h"
    @Option(help: "End (exclusive), same forms.") var until = "now"
    @Option(name: .shortAndLong, help: "Output file stem: writes STEM.md, STEM.json, STEM.svg (and STEM-csp-N.svg).") var output = "pressure-report"
    @Option(help: "Seconds after a setpoint change that count as settling, not as time in band.") var settle = 10.0
    @OptionGroup var conn: Connection

    func run() throws {
        let s = try parseTime(since), u = try parseTime(until)
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        var csv = ""
        _ = exportCSV(c, since: s, until: u, channel: ch) { csv += $0 }
        let rows = csvSamples(csv)
        let pts = rows.map(\.point)
        let events = call(c, "log_events", LogExportParams(since: s, until: u, channel: ch), as: LogEventsResult.self).events
        let meta = call(c, "run_get", ChannelParams(channel: ch), as: RunResult.self).metadata
        let status = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first
        let sweeps = call(c, "sweeps", LogExportParams(since: s, until: u, channel: ch), as: SweepsResult.self).sweeps
        let stem = (output as NSString).lastPathComponent
        let iso = ISO8601DateFormatter()
        let title = "pressd channel \(ch): \(iso.string(from: Date(timeIntervalSince1970: s))) – \(iso.string(from: Date(timeIntervalSince1970: u)))"

        // Stack setpoints and the time regulated at each.
        var held: [Double: Double] = [:]
        for (a, b) in zip(pts, pts.dropFirst()) where a.mode == "regulating" {
            if let sp = a.setpoint { held[(sp * 1000).rounded() / 1000, default: 0] += b.time - a.time }
        }
        let uniform = rows.compactMap(\.nonUniformity)
        let loadCells = status?.loadCellForcesN?.count ?? 1
        var csp: [StandardReport.CSP] = []
        for (i, r) in sweeps.enumerated() {
            var plot: String?
            if !r.sweep.points.isEmpty {
                let name = "\(stem)-csp-\(i + 1).svg"
                let f = r.sweep
                let curve: ((Double) -> Double)? = f.cspMpa.map { pc in { p in (f.plateauOhmCm2 ?? 0) + (f.riseOhmCm2 ?? 0) / (1 + pow(max(p, 1e-9) / pc, f.sharpness ?? 4)) } }
                let svg = SVGReport.renderKnee(points: f.points.map { ($0.pressureMpa, $0.resistanceOhmCm2, $0.resistanceSd) }, curve: curve,
                                               csp: f.cspMpa.map { ($0, f.cspLowMpa ?? $0, f.cspHighMpa ?? $0) },
                                               title: "Critical stack pressure sweep, channel \(ch), \(iso.string(from: Date(timeIntervalSince1970: r.timeUnix)))",
                                               margin: f.margin.flatMap { m in m.pressureMpa.map { ($0, m.thresholdOhmCm2) } },
                                               upLeg: Set(f.points.indices.filter { f.points[$0].leg == "up" }))
                try svg.write(toFile: (output as NSString).deletingLastPathComponent.appendingPathComponentIfAny(name), atomically: true, encoding: .utf8)
                plot = name
            }
            csp.append(.init(timeUnix: r.timeUnix, sweep: r.sweep, plot: plot))
        }
        let report = StandardReport(
            channel: ch, since: s, until: u,
            cell: .init(cellId: meta.cellId, chemistry: meta.chemistry, chemistryPreset: status?.chemistryPreset, operatorNote: meta.operatorNote,
                        cellAreaCm2: status?.cellAreaCm2),
            pressures: .init(preparationPressureMpa: meta.preparationPressureMpa,
                             stackSetpoints: held.sorted { $0.key < $1.key }.map { .init(setpointMpa: $0.key, seconds: $0.value) },
                             limits: status?.limits),
            measurement: .init(method: status.map { "total force of \(loadCells) load cell\(loadCells == 1 ? "" : "s") under the plate ÷ active cell area (\($0.cellAreaCm2) cm²), \($0.actuator) channel" } ?? "—",
                               loadCells: status == nil ? nil : loadCells,
                               nonUniformityMean: uniform.isEmpty ? nil : uniform.reduce(0, +) / Double(uniform.count),
                               nonUniformityMax: uniform.max(),
                               nonUniformAlarms: events.filter { $0.kind == "fault" && $0.detail.hasPrefix("non_uniform_load") }.count),
            timeInBand: WindowSummary(pts, settle: settle), criticalStackPressure: csp,
            supervisor: status?.control?.supervisor, control: status?.control,
            faults: events.filter { $0.kind == "fault" },
            excursions: StandardReport.Excursions(events.filter { ["excursion", "recovery", "authority"].contains($0.kind) }),
            interventions: events.filter { ["request", "ack", "program", "autotune", "sweep", "supervisor", "config"].contains($0.kind) })

        try SVGReport.render(pts, title: title).write(toFile: output + ".svg", atomically: true, encoding: .utf8)
        try Report.markdown(report, title: title, svg: stem + ".svg").write(toFile: output + ".md", atomically: true, encoding: .utf8)
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(report).write(to: URL(fileURLWithPath: output + ".json"))
        if conn.json { return printJSON(report) }
        print("\(output).md, .json, .svg\(csp.isEmpty ? "" : " and \(csp.count) CSP plot(s)"): \(report.timeInBand.samples) samples, "
              + "\(fixed(report.timeInBand.within5 * 100, 2)) % of steady regulating samples within ±5 %")
    }

    static func markdown(_ r: StandardReport, title: String, svg: String) -> String {
        func pct(_ v: Double) -> String { fixed(v * 100, 2) + " %" }
        func mpa(_ v: Double?) -> String { v.map { fixed($0, 3) + " MPa" } ?? "—" }
        func when(_ t: Double) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
        let sum = r.timeInBand
        let uniformity = (r.measurement.loadCells ?? 1) > 1
            ? "\(r.measurement.nonUniformityMean.map(pct) ?? "—") / \(r.measurement.nonUniformityMax.map(pct) ?? "—")"
            : "one load cell: not measurable"
        let setpoints = r.pressures.stackSetpoints.isEmpty ? "none regulated in the window"
            : r.pressures.stackSetpoints.map { "\(fixed($0.setpointMpa, 3)) MPa for \(fixed($0.seconds, 0)) s" }.joined(separator: "; ")
        var s = """
        # Pressure report: channel \(r.channel)

        \(title)

        ![pressure](\(svg))

        ## Cell and pressures

        Preparation (fabrication) pressure and stack pressure are different quantities and are
        reported apart.

        | | |
        |---|---|
        | cell id | \(r.cell.cellId ?? "—") |
        | chemistry | \(r.cell.chemistry ?? "—")\(r.cell.chemistryPreset.map { " (limits from the `\($0)` preset)" } ?? "") |
        | preparation (fabrication) pressure | \(r.pressures.preparationPressureMpa.map { "\($0) MPa" } ?? "not recorded") |
        | stack pressure setpoints (regulated by pressd) | \(setpoints) |
        | channel limits | \(r.pressures.limits.map { "setpoints \($0.minMpa)–\($0.maxMpa) MPa, trip at \($0.tripMpa) MPa" } ?? "—") |
        | active cell area | \(r.cell.cellAreaCm2.map { "\($0) cm²" } ?? "—") |
        | operator note | \(r.cell.operatorNote ?? "—") |

        ## Where pressure was measured, and how uniform it was

        | | |
        |---|---|
        | method | \(r.measurement.method) |
        | load cells | \(r.measurement.loadCells.map(String.init) ?? "—") |
        | non-uniformity (max − min)/mean, mean / largest | \(uniformity) |
        | `non_uniform_load` alarms | \(r.measurement.nonUniformAlarms) |

        ## Time in band

        | | |
        |---|---|
        | samples (one per log period) | \(sum.samples) |
        | regulating samples (steady) | \(sum.regulatingSamples) |
        | settling samples (≤ \(fixed(sum.settleSeconds, 0)) s after a setpoint change, left out below) | \(sum.settlingSamples) |
        | within ±5 % of setpoint | \(pct(sum.within5)) |
        | within ±1 % of setpoint | \(pct(sum.within1)) |
        | fast-loop envelope within ±5 % | \(sum.envelopeWithin5.map(pct) ?? "—") |
        | worst error | \(sum.worstError.map(pct) ?? "—") |
        | pressure min / mean / max | \(mpa(sum.pressureMin)) / \(mpa(sum.pressureMean)) / \(mpa(sum.pressureMax)) |
        | samples per mode | \(sum.modes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) |

        ## Critical stack pressure


        """
        if r.criticalStackPressure.isEmpty {
            s += "No sweep in this window (`pressctl sweep`).\n"
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
        s += r.faults.isEmpty ? "None.\n" : r.faults.map { "- \(when($0.timeUnix)): \($0.detail)" }.joined(separator: "\n") + "\n"
        let x = r.excursions
        s += "\n## Excursions out of band (\(x.count))\n\n"
        if x.count > 0 {
            s += "\(fixed(x.timeOutOfBandS, 1)) s out of band in all; longest \(fixed(x.longestS, 1)) s; worst \(fixed(x.worstAbsErrorMpa, 3)) MPa from the setpoint.\n\n"
        }
        s += x.events.isEmpty ? "None.\n" : x.events.prefix(300).map { "- \(when($0.timeUnix)) \($0.kind): \($0.detail)" }.joined(separator: "\n") + "\n"
        s += "\n## Interventions (\(r.interventions.count))\n\n"
        s += r.interventions.isEmpty ? "None.\n" : r.interventions.prefix(300).map { e in
            "- \(when(e.timeUnix)) \(e.kind)\(e.uid.map { " (uid \($0))" } ?? ""): \(e.detail)"
        }.joined(separator: "\n") + "\n"
        return s
    }
}

extension String {
    /// `self/name`, or just `name` when self is empty.
    func appendingPathComponentIfAny(_ name: String) -> String { isEmpty ? name : (self as NSString).appendingPathComponent(name) }
}
