import Foundation
import Testing
@testable import PressPlot

/// The report's run figure as a reader sees it: rendered to PNG by librsvg
/// (`rsvg-convert`, Debian's librsvg2-bin, installed by scripts/deps) and measured by
/// Tests/figures/svg_boxes.py — every label's ink box, and the pixels of the ±band.
@Suite("The run figure, rendered")
struct FigureRenderingTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let tool = repo + "/Tests/figures/svg_boxes.py"

    /// 30 min at 1 Hz holding 5 MPa: a ramp from 0, then a dozen events in the first
    /// minute — setpoint changes, disturbances, an injected 1600 N force bias on 1 cm²
    /// (the reading jumps to 21 MPa, 20…35 s) that trips the channel (released at 0 MPa,
    /// 35…45 s) — and a quiet half hour.
    static func run() -> (points: [TracePoint], events: [PlotEvent], injected: [ClosedRange<Double>]) {
        let t0 = 1_770_000_000.0
        var pts: [TracePoint] = []
        for k in 0..<1800 {
            let t = Double(k)
            var p = min(5, t) + 0.03 * sin(t * 0.7), mode = "regulating"
            var sp: Double? = 5
            if (20..<35).contains(t) { p = 21 + 0.2 * sin(t) }
            if (35..<45).contains(t) { p = 0.01; mode = "tripped"; sp = nil }
            if (45..<50).contains(t) { p = t - 45; mode = "regulating"; sp = 5 }
            pts.append(TracePoint(time: t0 + t, pressure: p, setpoint: sp, min: p - 0.04, max: p + 0.04, mode: mode))
        }
        let ev: [(Double, PlotEvent.Kind, String)] = [
            (1, .setpoint, "root: set the stack-pressure setpoint to 5 MPa"),
            (6, .injection, "root: inject into the simulated rig: cell thickness step 400 µm"),
            (6.4, .excursion, "out of band for 0.368 s, worst 0.735 MPa from 5.0 MPa, cause disturbance"),
            (8, .injection, "root: inject into the simulated rig: cell thickness step -400 µm"),
            (8.4, .excursion, "out of band for 0.41 s, worst -0.792 MPa from 5.0 MPa, cause disturbance"),
            (12, .setpoint, "root: set the stack-pressure setpoint to 5.5 MPa"),
            (15, .setpoint, "root: set the stack-pressure setpoint to 5 MPa"),
            (20, .injection, "root: inject into the simulated rig: load-cell force bias 1600 N"),
            (20.2, .fault, "over_pressure (release): stack pressure 20.998 MPa above trip level 15.0 MPa"),
            (20.2, .fault, "sensor_range (hold): force 2099.75 N outside plausible range -50.0…2000.0 N"),
            (35, .injection, "root: inject into the simulated rig: load-cell force bias 0 N"),
            (44, .intervention, "root: acknowledge the latched faults"),
            (45, .setpoint, "root: set the stack-pressure setpoint to 5 MPa"),
            (52, .excursion, "out of band for 4.914 s, worst 14.961 MPa from 5.0 MPa, cause fault"),
        ]
        return (pts, ev.map { PlotEvent(time: t0 + $0.0, kind: $0.1, label: $0.2) }, [(t0 + 20)...(t0 + 35)])
    }

    /// Runs svg_boxes.py on `svg`.
    static func measure(_ svg: String, _ args: [String]) throws -> Any {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/rsvg-convert") else {
            throw FigureError("rsvg-convert is missing: run scripts/deps (it installs librsvg2-bin)")
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("figure-\(UUID().uuidString.prefix(8)).svg").path
        try svg.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [tool, args[0], file] + args.dropFirst()
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw FigureError("svg_boxes.py \(args[0]): \(String(decoding: e, as: UTF8.self))") }
        return try JSONSerialization.jsonObject(with: data)
    }

    struct Label { var text: String; var cls: String; var box: [Double] }

    static func labels(_ svg: String) throws -> [Label] {
        (try measure(svg, ["boxes"]) as? [[String: Any]] ?? []).map {
            Label(text: $0["text"] as? String ?? "", cls: $0["class"] as? String ?? "", box: ($0["box"] as? [Double]) ?? [])
        }
    }

    /// The plot area's rectangle (x0, y0, x1, y1) from the figure's frame.
    static func plotArea(_ svg: String) -> [Double]? {
        guard let line = svg.split(separator: "\n").first(where: { $0.contains("class=\"plot-area\"") }) else { return nil }
        func attr(_ k: String) -> Double? {
            guard let r = line.range(of: " \(k)=\"") else { return nil }
            return Double(line[r.upperBound...].prefix { $0 != "\"" })
        }
        guard let x = attr("x"), let y = attr("y"), let w = attr("width"), let h = attr("height") else { return nil }
        return [x, y, x + w, y + h]
    }

    static func overlap(_ a: [Double], _ b: [Double]) -> Bool { a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3] }

    @Test("a dozen events in the first minute: no two labels' rendered ink overlaps, and no label sits on the data")
    func labelsApart() throws {
        let r = Self.run()
        let svg = SVGReport.render(r.points, title: "Stack pressure, channel A", events: r.events, injected: r.injected)
        let boxes = try Self.labels(svg)
        #expect(boxes.count >= r.events.count * 2, "every event numbered and listed: \(boxes.count) labels")
        var clashes: [String] = []
        for i in boxes.indices { for j in boxes.indices where j > i && Self.overlap(boxes[i].box, boxes[j].box) {
            clashes.append("'\(boxes[i].text.prefix(30))' \(boxes[i].box) × '\(boxes[j].text.prefix(30))' \(boxes[j].box)")
        } }
        #expect(clashes.isEmpty, "overlapping labels:\n\(clashes.joined(separator: "\n"))")
        let area = try #require(Self.plotArea(svg), "the figure marks its plot area")
        let inside = boxes.filter { Self.overlap($0.box, area) }.map { "'\($0.text.prefix(40))' \($0.box)" }
        #expect(inside.isEmpty, "text on the data (plot area \(area)): \(inside)")
        // Every label is on the canvas.
        let size = svg.split(separator: "\n")[0]
        let w = Double(size[size.range(of: "width=\"")!.upperBound...].prefix { $0 != "\"" })!
        let h = Double(size[size.range(of: "height=\"")!.upperBound...].prefix { $0 != "\"" })!
        #expect(boxes.allSatisfy { $0.box[0] >= 0 && $0.box[1] >= 0 && $0.box[2] <= w && $0.box[3] <= h }, "labels cut off at the edge")
    }

    @Test("an injected 21 MPa reading does not stretch the y axis: the 5 MPa hold and its ±5 % band keep their height; the interval is marked")
    func injectedNotScaled() throws {
        let r = Self.run()
        let svg = SVGReport.render(r.points, title: "Stack pressure, channel A", events: r.events, injected: r.injected)
        // The ±5 % band around 5 MPa (0.5 MPa tall) as rendered: with an axis from the
        // regulated data (0…6 MPa) about 25 px of a 300 px plot; scaled to the injected
        // reading (−5…25 MPa) it would be 5 px.
        let band = try #require(try Self.measure(svg, ["colour", "d9f2d9"]) as? [String: Any])
        let rows = band["rows"] as? Int ?? 0
        let plotHeight = Self.plotArea(svg).map { $0[3] - $0[1] } ?? 300
        #expect(Double(rows) >= 0.06 * plotHeight, "the band is \(rows) px tall of \(plotHeight): the axis was stretched")
        let ticks = try Self.labels(svg).filter { $0.cls == "tick-y" }.compactMap { Double($0.text) }
        #expect(ticks.count >= 3 && (ticks.max() ?? 99) <= 8, "y ticks \(ticks)")
        // The injected interval is shaded where it was, and what went off the scale is marked.
        #expect(svg.contains("class=\"marked-injected\""), "the injected reading's interval is marked")
        #expect(svg.contains("class=\"marked-tripped\""), "the tripped interval is marked")
        #expect(svg.contains("class=\"off-scale\""), "the injected reading above the axis is marked at the edge")
    }
}

struct FigureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
