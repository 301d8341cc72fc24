/// A stretch of a run whose logged pressure is not the regulated cell's: an injected
/// (falsified) reading, or a trip. The run figure shades it instead of scaling to it.
public struct MarkedInterval: Sendable, Equatable {
    public enum Kind: String, Sendable { case injected, tripped }
    public var range: ClosedRange<Double>
    public var kind: Kind
    public init(_ range: ClosedRange<Double>, kind: Kind) { self.range = range; self.kind = kind }

    /// The tripped stretches of `pts`: from the first tripped sample of a run to the next
    /// sample (or the run's last one).
    public static func tripped(in pts: [TracePoint]) -> [MarkedInterval] {
        var out: [MarkedInterval] = []
        var start: Double?
        for (i, p) in pts.enumerated() {
            if p.mode == "tripped" { if start == nil { start = p.time } }
            else if let s = start { out.append(.init(s...Swift.max(s, p.time), kind: .tripped)); start = nil }
            if i == pts.count - 1, let s = start { out.append(.init(s...Swift.max(s, p.time), kind: .tripped)) }
        }
        return out
    }
}

/// Where labels go on a print figure, from an estimate of their width (DejaVu Sans,
/// librsvg's and most systems' sans-serif, at most about 0.62 em per character on
/// average; the rendered figure is checked by `FigureRenderingTests`).
enum LabelLayout {
    /// Estimated advance of `text` at `size` px.
    static func width(_ text: String, size: Double) -> Double { Double(text.count) * size * 0.62 }

    /// Left edges for labels of `widths` wanted centred on `centres` (ascending), in one
    /// row between `left` and `right`, at least `gap` apart, each as near its centre as
    /// the others allow. Nil when they do not fit.
    static func spread(centres: [Double], widths: [Double], left: Double, right: Double, gap: Double) -> [Double]? {
        guard centres.count == widths.count else { return nil }
        var pos: [Double] = []
        for (c, w) in zip(centres, widths) {
            let after = pos.last.map { $0 + widths[pos.count - 1] + gap } ?? left
            pos.append(Swift.max(c - w / 2, after))
        }
        var limit = right
        for i in pos.indices.reversed() {
            pos[i] = Swift.min(pos[i], limit - widths[i])
            limit = pos[i] - gap
        }
        return (pos.first.map { $0 >= left - 1e-9 } ?? true) ? pos : nil
    }
}

/// The report's run figure laid out for print: title; a key above the plot (outside the
/// data); event numbers in a strip between key and plot, spread so that none touches
/// another, each with a leader line to its event's vertical line; the plot, with the y
/// axis from the regulated data and injected or tripped stretches shaded (what went
/// beyond the axis marked at its edge); round 1-2-5 ticks; run time with its origin in
/// UTC; the numbered event list below.
struct RunFigure {
    var points: [TracePoint]
    var title: String
    var band: Double
    var events: [PlotEvent]
    var injected: [ClosedRange<Double>]
    var width: Int
    var height: Int

    /// Events listed under the plot (and numbered in the strip); the rest are lines only.
    static let listed = 12
    static let colours: [PlotEvent.Kind: String] = [.fault: "#d62728", .injection: "#9467bd", .excursion: "#ff7f0e", .setpoint: "#2ca02c", .intervention: "#7f7f7f"]
    static let pressureColour = "#1f4e9c"

    /// The y range: regulating samples with a setpoint outside the marked stretches and
    /// their ±2·band; failing those, every sample outside them; failing those, all.
    static func yRange(_ pts: [TracePoint], band: Double, marked: [MarkedInterval]) -> (Double, Double) {
        let outside = pts.filter { p in !marked.contains { $0.range.contains(p.time) } }
        let regulated = outside.filter { $0.mode == "regulating" && $0.setpoint != nil }
        return PressPlot.yRange(!regulated.isEmpty ? regulated : !outside.isEmpty ? outside : pts, band: band)
    }

    /// One entry of the key: a swatch and its words.
    enum Swatch { case line(String, dashed: Bool), box(String), marker(String) }

    func svg() -> String {
        let pts = points
        let ml = 70.0, mr = 20.0
        let w = Double(width) - ml - mr, h = Double(Swift.max(120, height - 120))
        let t0 = pts.first?.time ?? 0, t1 = Swift.max(t0 + 1e-9, pts.last?.time ?? 1)
        // Tripped first, so that an injected reading (the cause of the trip, often) is
        // drawn over it.
        let marked = MarkedInterval.tripped(in: pts) + injected.map { MarkedInterval($0, kind: .injected) }
        var (lo0, hi0) = Self.yRange(pts, band: band, marked: marked)
        // Data at zero (or a released sensor's noise just below it): the axis starts at 0.
        if lo0 < 0, lo0 > -0.1 * (hi0 - lo0) { lo0 = 0 }
        let yt = roundTicks(lo0, hi0)
        let yStep = yt.count > 1 ? yt[1] - yt[0] : 1
        let lo = Swift.min(lo0, (lo0 / yStep).rounded(.down) * yStep), hi = Swift.max(hi0, (hi0 / yStep).rounded(.up) * yStep)
        let span = t1 - t0
        let (unit, scale) = span >= 7200 ? ("h", 3600.0) : span >= 120 ? ("min", 60.0) : ("s", 1.0)
        let xt = roundTicks(0, span / scale)
        let xStep = xt.count > 1 ? xt[1] - xt[0] : 1
        func x(_ t: Double) -> Double { ml + (t - t0) / (t1 - t0) * w }
        let offScale = Self.offScale(pts, lo: lo, hi: hi)
        let hasEnvelope = pts.contains { $0.min != nil && $0.max != nil }

        // The key, wrapped to the plot's width.
        var key: [(Swatch, String)] = [(.line(Self.pressureColour, dashed: false), "pressure")]
        if hasEnvelope { key.append((.box("#c6dbef"), "loop min–max")) }
        key.append((.line("#2e7d32", dashed: true), "setpoint"))
        key.append((.box("#d9f2d9"), "±\(Int((band * 100).rounded())) % band"))
        if marked.contains(where: { $0.kind == .injected }) { key.append((.box("url(#hatch-injected)"), "injected reading (not the cell's; left out of the statistics)")) }
        if marked.contains(where: { $0.kind == .tripped }) { key.append((.box("#f6d5d5"), "tripped")) }
        if !offScale.isEmpty { key.append((.marker(Self.pressureColour), "beyond the axis")) }
        var keyRows: [[(Swatch, String, Double)]] = [[]]
        var cursor = ml
        for (s, text) in key {
            let itemWidth = 22 + LabelLayout.width(text, size: 11)
            if cursor + itemWidth > ml + w, !keyRows[keyRows.count - 1].isEmpty { keyRows.append([]); cursor = ml }
            keyRows[keyRows.count - 1].append((s, text, cursor))
            cursor += itemWidth + 18
        }
        let keyBaseline = 44.0
        let keyBottom = keyBaseline + Double(keyRows.count - 1) * 16
        // The event strip: numbers of the listed events inside the window.
        let listed = Array(events.enumerated().prefix(Self.listed))
        let inWindow = listed.filter { $0.element.time >= t0 && $0.element.time <= t1 }.sorted { $0.element.time < $1.element.time }
        let stripTop = keyBottom + 8
        let mt = stripTop + (inWindow.isEmpty ? 4 : 30)
        func y(_ v: Double) -> Double { mt + (hi - v) / (hi - lo) * h }
        func path(_ values: [(Double, Double)]) -> String {
            values.map { "\(fixed(x($0.0), 1)),\(fixed(y($0.1), 1))" }.joined(separator: " ")
        }
        let listTop = mt + h + 58
        let totalHeight = Int((listed.isEmpty ? mt + h + 50 : listTop + Double(listed.count - 1) * 14 + 10).rounded(.up))

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(totalHeight)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <defs><clipPath id="clip-plot"><rect x="\(ml)" y="\(fixed(mt, 1))" width="\(w)" height="\(h)"/></clipPath>
        <pattern id="hatch-injected" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#efe6f7"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b9a3d9" stroke-width="2"/></pattern></defs>
        <text class="title" x="\(ml)" y="24" font-size="15">\(SVGReport.escape(title))</text>

        """
        for (r, row) in keyRows.enumerated() {
            let base = keyBaseline + Double(r) * 16
            for (s, text, left) in row {
                switch s {
                case .line(let c, let dashed):
                    svg += "<line x1=\"\(fixed(left, 1))\" y1=\"\(fixed(base - 4, 1))\" x2=\"\(fixed(left + 18, 1))\" y2=\"\(fixed(base - 4, 1))\" stroke=\"\(c)\" stroke-width=\"1.5\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
                case .box(let fill):
                    svg += "<rect x=\"\(fixed(left, 1))\" y=\"\(fixed(base - 9, 1))\" width=\"18\" height=\"10\" fill=\"\(fill)\"/>\n"
                case .marker(let c):
                    svg += "<polygon points=\"\(Self.triangle(x: left + 9, edge: base - 9, up: true))\" fill=\"\(c)\"/>\n"
                }
                svg += "<text class=\"key\" x=\"\(fixed(left + 22, 1))\" y=\"\(fixed(base, 1))\" font-size=\"11\">\(SVGReport.escape(text))</text>\n"
            }
        }
        for v in ticks(lo, hi, step: yStep) { svg += "<line x1=\"\(ml)\" y1=\"\(fixed(y(v), 1))\" x2=\"\(ml + w)\" y2=\"\(fixed(y(v), 1))\" stroke=\"#eee\"/>\n" }
        svg += "<g clip-path=\"url(#clip-plot)\">\n"
        for m in marked {
            let a = x(Swift.max(t0, m.range.lowerBound)), b = x(Swift.min(t1, m.range.upperBound))
            guard b >= a else { continue }
            svg += "<rect class=\"marked-\(m.kind.rawValue)\" x=\"\(fixed(a, 1))\" y=\"\(fixed(mt, 1))\" width=\"\(fixed(Swift.max(1, b - a), 1))\" height=\"\(h)\" fill=\"\(m.kind == .injected ? "url(#hatch-injected)" : "#f6d5d5")\"/>\n"
        }
        // Band: one polygon per run of points regulating with a setpoint.
        var runs: [[TracePoint]] = [[]]
        for p in pts { if p.setpoint != nil && p.mode == "regulating" { runs[runs.count - 1].append(p) } else if !runs[runs.count - 1].isEmpty { runs.append([]) } }
        for r in runs where r.count > 1 {
            let upper = r.map { ($0.time, $0.setpoint! * (1 + band)) }, lower = r.reversed().map { ($0.time, $0.setpoint! * (1 - band)) }
            svg += "<polygon points=\"\(path(upper + lower))\" fill=\"#d9f2d9\" stroke=\"none\"/>\n"
            svg += "<polyline points=\"\(path(r.map { ($0.time, $0.setpoint!) }))\" fill=\"none\" stroke=\"#2e7d32\" stroke-dasharray=\"6 4\"/>\n"
        }
        let env = pts.filter { $0.min != nil && $0.max != nil }
        if env.count > 1 {
            svg += "<polygon points=\"\(path(env.map { ($0.time, $0.max!) } + env.reversed().map { ($0.time, $0.min!) }))\" fill=\"#c6dbef\" stroke=\"none\"/>\n"
        }
        let pp = pts.compactMap { p in p.pressure.map { (p.time, $0) } }
        if pp.count > 1 { svg += "<polyline points=\"\(path(pp))\" fill=\"none\" stroke=\"\(Self.pressureColour)\" stroke-width=\"1.5\"/>\n" }
        for (i, e) in events.enumerated() where e.time >= t0 && e.time <= t1 {
            let c = Self.colours[e.kind] ?? "#000"
            svg += "<line class=\"event-\(e.kind.rawValue)\" x1=\"\(fixed(x(e.time), 1))\" y1=\"\(fixed(mt, 1))\" x2=\"\(fixed(x(e.time), 1))\" y2=\"\(fixed(mt + h, 1))\" stroke=\"\(c)\" stroke-dasharray=\"3 2\"><title>\(i + 1): \(SVGReport.escape(e.label))</title></line>\n"
        }
        svg += "</g>\n"
        for o in offScale {
            svg += "<polygon class=\"off-scale\" points=\"\(Self.triangle(x: x(o.time), edge: o.up ? mt + 1 : mt + h - 1, up: o.up))\" fill=\"\(Self.pressureColour)\"><title>beyond the axis: \(fixed(o.value, 2)) MPa</title></polygon>\n"
        }
        svg += "<rect class=\"plot-area\" x=\"\(ml)\" y=\"\(fixed(mt, 1))\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"none\"/>\n"
        // The strip: numbers spread along the plot's top edge, leader lines down to it.
        let labels = inWindow.map { "\($0.offset + 1)" }
        let widths = labels.map { LabelLayout.width($0, size: 10) + 2 }
        if let lefts = LabelLayout.spread(centres: inWindow.map { x($0.element.time) }, widths: widths, left: ml - 10, right: ml + w + 10, gap: 5) {
            for (k, item) in inWindow.enumerated() {
                let c = Self.colours[item.element.kind] ?? "#000", mid = lefts[k] + widths[k] / 2
                svg += "<text class=\"event-number\" x=\"\(fixed(mid, 1))\" y=\"\(fixed(stripTop + 10, 1))\" text-anchor=\"middle\" font-size=\"10\" fill=\"\(c)\">\(labels[k])</text>\n"
                svg += "<line x1=\"\(fixed(mid, 1))\" y1=\"\(fixed(stripTop + 13, 1))\" x2=\"\(fixed(x(item.element.time), 1))\" y2=\"\(fixed(mt, 1))\" stroke=\"\(c)\" stroke-width=\"0.8\"/>\n"
            }
        }
        svg += SVGReport.axes(ml: ml, mt: mt, w: w, h: h, height: height, yLabel: "stack pressure, MPa",
                              xLabel: "run time, \(unit) (0 = \(String(SVGReport.isoSeconds(t0).map { $0 == "T" ? " " : $0 })) UTC)",
                              yTicks: ticks(lo, hi, step: yStep).map { (y($0), tickLabel($0, step: yStep)) },
                              xTicks: xt.map { (x(t0 + $0 * scale), tickLabel($0, step: xStep)) }, xLabelY: mt + h + 36)
        let room = Int((Double(width) - ml - 10) / (11 * 0.62))
        for (i, e) in listed {
            let more = i == listed.count - 1 && events.count > listed.count ? " (and \(events.count - listed.count) more: see the report)" : ""
            var line = "\(i + 1) \(e.kind.rawValue) at \(fixed((e.time - t0) / scale, xStep < 1 ? 2 : 1)) \(unit): \(e.label)"
            if line.count + more.count > room { line = String(line.prefix(Swift.max(10, room - more.count - 1))) + "…" }
            svg += "<text class=\"event-list\" x=\"\(ml)\" y=\"\(fixed(listTop + Double(i) * 14, 1))\" font-size=\"11\" fill=\"\(Self.colours[e.kind] ?? "#000")\">\(SVGReport.escape(line + more))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// Where the logged pressure (or its envelope) left the axis: one mark per run of
    /// samples beyond it, at the most extreme one. A value within 1 % of the axis span beyond it is not marked.
    static func offScale(_ pts: [TracePoint], lo: Double, hi: Double) -> [(time: Double, value: Double, up: Bool)] {
        let tolerance = 0.01 * (hi - lo)
        var out: [(time: Double, value: Double, up: Bool)] = []
        var run: (time: Double, value: Double, up: Bool)?
        for p in pts {
            let top = [p.pressure, p.max].compactMap { $0 }.max(), bottom = [p.pressure, p.min].compactMap { $0 }.min()
            var here: (time: Double, value: Double, up: Bool)?
            if let v = top, v > hi + tolerance { here = (p.time, v, true) } else if let v = bottom, v < lo - tolerance { here = (p.time, v, false) }
            if let hr = here, let r = run, r.up == hr.up {
                if hr.up ? hr.value > r.value : hr.value < r.value { run = hr }
            } else {
                if let r = run { out.append(r) }
                run = here
            }
        }
        if let r = run { out.append(r) }
        return out
    }

    /// A small triangle on the plot's edge pointing out of it.
    static func triangle(x: Double, edge: Double, up: Bool) -> String {
        let base = up ? edge + 8 : edge - 8
        return "\(fixed(x - 5, 1)),\(fixed(base, 1)) \(fixed(x + 5, 1)),\(fixed(base, 1)) \(fixed(x, 1)),\(fixed(edge, 1))"
    }
}
