import ArgumentParser
import Foundation
import PressPlot
import PressProtocol

/// Parses the run log's CSV (see `RunLog.csvHeader`) into trace points.
func tracePoints(csv: String) -> [(channel: String, point: TracePoint)] {
    var out: [(String, TracePoint)] = []
    for line in csv.split(separator: "\n").dropFirst() {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 15, let t = Double(f[0]) else { continue }
        out.append((f[2], TracePoint(time: t, pressure: Double(f[5]), setpoint: Double(f[4]), min: Double(f[6]), max: Double(f[7]), mode: f[3])))
    }
    return out
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a pressure report of a time window: an SVG plot and a Markdown summary.",
        discussion: "The summary keeps preparation and stack pressure apart, gives time in band (±5 %, ±1 %), min/max/mean, the worst error, and lists faults and interventions from the run log.")
    @Option(help: "Start: ISO 8601, unix seconds, now, or a time ago (2h, 30m, 1d).") var since = "1h"
    @Option(help: "End (exclusive), same forms.") var until = "now"
    @Option(name: .shortAndLong, help: "Output file stem: writes STEM.svg and STEM.md.") var output = "pressure-report"
    @Option(help: "Seconds after a setpoint change that count as settling, not as time in band.") var settle = 10.0
    @OptionGroup var conn: Connection

    func run() throws {
        let s = try parseTime(since), u = try parseTime(until)
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        var csv = ""
        _ = exportCSV(c, since: s, until: u, channel: ch) { csv += $0 }
        let pts = tracePoints(csv: csv).map(\.point)
        let events = call(c, "log_events", LogExportParams(since: s, until: u, channel: ch), as: LogEventsResult.self)
        let meta = call(c, "run_get", ChannelParams(channel: ch), as: RunResult.self).metadata
        let status = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self)
        let chStatus = status.channels.first
        let sum = WindowSummary(pts, settle: settle)
        let iso = ISO8601DateFormatter()
        let title = "pressd channel \(ch): \(iso.string(from: Date(timeIntervalSince1970: s))) – \(iso.string(from: Date(timeIntervalSince1970: u)))"
        try SVGReport.render(pts, title: title).write(toFile: output + ".svg", atomically: true, encoding: .utf8)
        let md = markdown(ch: ch, title: title, sum: sum, events: events, meta: meta, status: chStatus, svg: (output as NSString).lastPathComponent + ".svg")
        try md.write(toFile: output + ".md", atomically: true, encoding: .utf8)
        if conn.json { return printJSON(sum) }
        print("\(output).svg and \(output).md: \(sum.samples) samples, \(fixed(sum.within5 * 100, 2)) % of regulating samples within ±5 %")
    }

    func markdown(ch: String, title: String, sum: WindowSummary, events: LogEventsResult, meta: RunMetadataInfo, status: ChannelStatus?, svg: String) -> String {
        func pct(_ v: Double) -> String { fixed(v * 100, 2) + " %" }
        func mpa(_ v: Double?) -> String { v.map { fixed($0, 3) + " MPa" } ?? "—" }
        let faults = events.events.filter { $0.kind == "fault" }
        let interventions = events.events.filter { $0.kind == "request" || $0.kind == "ack" || $0.kind == "program" }
        var s = """
        # Pressure report: channel \(ch)

        \(title)

        ![pressure](\(svg))

        ## Cell and pressures

        | | |
        |---|---|
        | cell id | \(meta.cellId ?? "—") |
        | chemistry | \(meta.chemistry ?? "—") |
        | preparation (fabrication) pressure | \(meta.preparationPressureMpa.map { "\($0) MPa" } ?? "not recorded") |
        | stack pressure (regulated by pressd) | setpoints in the window: \(sum.regulatingSamples > 0 ? "see plot" : "none") |
        | active cell area | \(status.map { "\($0.cellAreaCm2) cm²" } ?? "—") |
        | where measured | \(status.map { "\($0.actuator) channel, total force from the load cell(s) ÷ cell area" } ?? "—") |
        | operator note | \(meta.operatorNote ?? "—") |

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

        ## Faults (\(faults.count))


        """
        s += faults.isEmpty ? "None.\n" : faults.map { "- \(Date(timeIntervalSince1970: $0.timeUnix)): \($0.detail)" }.joined(separator: "\n") + "\n"
        s += "\n## Interventions (\(interventions.count))\n\n"
        s += interventions.isEmpty ? "None.\n" : interventions.prefix(200).map { e in
            "- \(Date(timeIntervalSince1970: e.timeUnix)) \(e.kind)\(e.uid.map { " (uid \($0))" } ?? ""): \(e.detail)"
        }.joined(separator: "\n") + "\n"
        s += "\nUniformity across several load cells and the critical stack pressure are not measured by this build.\n"
        return s
    }
}
