#if canImport(Glibc)
import PressNumerics
import Glibc
#endif
import PressProtocol

/// One point of a pressure trace.
public struct TracePoint: Sendable, Equatable {
    /// Seconds (any origin; only differences matter).
    public var time: Double
    public var pressure: Double?
    public var setpoint: Double?
    /// Envelope of the fast loop over the point's period, when known.
    public var min: Double?
    public var max: Double?
    public var mode: String
    public init(time: Double, pressure: Double?, setpoint: Double?, min: Double? = nil, max: Double? = nil, mode: String = "regulating") {
        self.time = time; self.pressure = pressure; self.setpoint = setpoint; self.min = min; self.max = max; self.mode = mode
    }
}

/// The y range that shows the pressures, the setpoints and their ±band.
func yRange(_ pts: [TracePoint], band: Double) -> (Double, Double) {
    var lo = Double.infinity, hi = -Double.infinity
    for p in pts {
        for v in [p.pressure, p.min, p.max].compactMap({ $0 }) { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
        if let s = p.setpoint { lo = Swift.min(lo, s * (1 - 2 * band)); hi = Swift.max(hi, s * (1 + 2 * band)) }
    }
    if !lo.isFinite || !hi.isFinite { return (0, 1) }
    if hi - lo < 1e-6 { return (lo - 0.5, hi + 0.5) }
    let pad = (hi - lo) * 0.05
    return (lo - pad, hi + pad)
}

/// A live terminal chart: pressure (`●`, a vertical run `│` where it moved within one
/// column), setpoint (`─`) and the ±band (`┄`), newest on the right, with a y axis in
/// MPa and a time axis. The setpoint's row is also marked `◀` at the right edge, so
/// that it stays visible where the pressure sits on it.
public enum TerminalPlot {
    /// Renders `points` into `height` rows of `width` columns (axes included).
    /// `window`: the time span shown, s, ending at the newest point; every point in it
    /// is drawn, binned by time into columns (nil: the points' own span).
    public static func render(_ points: [TracePoint], width: Int, height: Int, band: Double = 0.05, title: String = "",
                              window: Double? = nil) -> [String] {
        let axis = 8
        let cols = Swift.max(10, width - axis - 1)
        // Title, two axis lines.
        let rows = Swift.max(4, height - (title.isEmpty ? 2 : 3))
        let end = points.last?.time ?? 0
        let span = Swift.max(1e-9, window ?? (end - (points.first?.time ?? end)))
        let start = end - span
        let pts = points.filter { $0.time >= start - 1e-9 }
        let (lo, hi) = yRange(pts, band: band)
        func row(_ v: Double) -> Int { Swift.min(rows - 1, Swift.max(0, Int(((hi - v) / (hi - lo) * Double(rows - 1)).rounded()))) }
        func inRange(_ v: Double) -> Int? { let r = Int(((hi - v) / (hi - lo) * Double(rows - 1)).rounded()); return (0..<rows).contains(r) ? r : nil }
        // Bin by time: each column holds the pressure range and the last setpoint.
        var pLo = [Double?](repeating: nil, count: cols), pHi = [Double?](repeating: nil, count: cols), sp = [Double?](repeating: nil, count: cols)
        for p in pts {
            let x = Swift.min(cols - 1, Swift.max(0, Int((p.time - start) / span * Double(cols))))
            if let s = p.setpoint { sp[x] = s }
            if let v = p.pressure {
                pLo[x] = Swift.min(pLo[x] ?? v, p.min ?? v, v)
                pHi[x] = Swift.max(pHi[x] ?? v, p.max ?? v, v)
            }
        }
        var grid = Array(repeating: Array(repeating: Character(" "), count: cols + 1), count: rows)
        for x in 0..<cols {
            if let s = sp[x] {
                for (v, ch) in [(s * (1 + band), Character("┄")), (s * (1 - band), Character("┄")), (s, Character("─"))] {
                    if let r = inRange(v) { grid[r][x] = ch }
                }
            }
            if let a = pLo[x], let b = pHi[x] {
                let top = row(b), bottom = row(a)
                for r in top...bottom { grid[r][x] = "│" }
                grid[row((a + b) / 2)][x] = "●"
            }
        }
        if let s = pts.last(where: { $0.setpoint != nil })?.setpoint, let r = inRange(s) { grid[r][cols] = "◀" }
        var out: [String] = []
        if !title.isEmpty { out.append(title) }
        for r in 0..<rows {
            let v = hi - Double(r) / Double(rows - 1) * (hi - lo)
            let label = r % Swift.max(1, rows / 4) == 0 || r == rows - 1 ? fixed(v, 3).leftPad(axis - 2) + " ┤" : String(repeating: " ", count: axis - 1) + "│"
            out.append(label + String(grid[r]))
        }
        let left = "−" + durationLabel(span)
        out.append(String(repeating: " ", count: axis - 1) + "└" + String(repeating: "─", count: cols) + " now")
        out.append(String(repeating: " ", count: axis) + left)
        return out
    }

    /// `90 s`, `10 min`, `2 h`: a span as the time axis shows it.
    static func durationLabel(_ s: Double) -> String {
        if s < 120 { return "\(Int(s.rounded())) s" }
        if s < 7200 { return "\(Int((s / 60).rounded())) min" }
        return "\(Int((s / 3600).rounded())) h"
    }
}

/// Statistics of a window of samples, as the standard pressure report gives them.
///
/// The stack-pressure statistics (band fractions, worst error, min/mean/max) are over
/// **regulating time only**: samples while regulating with a setpoint, after settling,
/// and outside the `excluding` intervals (injected, i.e. falsified, readings). Released,
/// tripped, held and settling samples are counted per mode but never enter them.
public struct WindowSummary: Sendable, Equatable, Codable {
    public var start: Double
    public var end: Double
    public var samples: Int
    /// Samples while regulating with a setpoint, after settling, not excluded: the
    /// samples every statistic below is over.
    public var regulatingSamples: Int
    /// Regulating samples within `settle` seconds of a setpoint change: reported, but
    /// left out of the band statistics.
    public var settlingSamples: Int
    /// Regulating samples inside an excluded interval (an injected reading).
    public var excludedSamples: Int
    public var settleSeconds: Double
    /// Fraction of the regulating samples (after settling) within ±5 % / ±1 % of their setpoint.
    public var within5: Double
    public var within1: Double
    /// Time of those samples, s (each sample stands for the time to the next one).
    public var regulatingSeconds: Double
    /// Time in band (±5 %) of regulating time, s.
    public var secondsWithin5: Double
    /// Fraction of regulating samples whose fast-loop envelope stayed within ±5 %.
    public var envelopeWithin5: Double?
    /// Logged pressure over the regulating samples, MPa.
    public var pressureMin: Double?
    public var pressureMax: Double?
    public var pressureMean: Double?
    /// Standard deviation of (pressure − setpoint) over the regulating samples, MPa.
    public var errorSd: Double?
    /// Largest |pressure − setpoint| / setpoint while regulating.
    public var worstError: Double?
    public var trippedSamples: Int
    public var modes: [String: Int]

    public init(_ pts: [TracePoint], band: Double = 0.05, settle: Double = 10, excluding: [ClosedRange<Double>] = []) {
        settleSeconds = settle
        start = pts.first?.time ?? 0
        end = pts.last?.time ?? 0
        samples = pts.count
        var reg = 0, in5 = 0, in1 = 0, env5 = 0, envN = 0, settling = 0, excluded = 0
        var lastSetpoint: Double?, changedAt = -Double.infinity
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, n = 0
        var errSum = 0.0, errSq = 0.0
        var worst = 0.0, regTime = 0.0, inTime = 0.0
        var modes: [String: Int] = [:]
        for (i, p) in pts.enumerated() {
            modes[p.mode, default: 0] += 1
            if p.setpoint != lastSetpoint || p.mode != "regulating" { changedAt = p.time; lastSetpoint = p.setpoint }
            guard p.mode == "regulating", let s = p.setpoint, s > 0, let v = p.pressure else { continue }
            if p.time - changedAt < settle { settling += 1; continue }
            if excluding.contains(where: { $0.contains(p.time) }) { excluded += 1; continue }
            reg += 1
            let dt = i + 1 < pts.count ? pts[i + 1].time - p.time : 0
            regTime += dt
            lo = Swift.min(lo, v); hi = Swift.max(hi, v); sum += v; n += 1
            errSum += v - s; errSq += (v - s) * (v - s)
            let e = abs(v - s) / s
            worst = Swift.max(worst, e)
            if Band.contains(v, target: s, band: band) { in5 += 1; inTime += dt }
            if e <= 0.01 { in1 += 1 }
            if let a = p.min, let b = p.max {
                envN += 1
                if Band.contains(a, target: s, band: band) && Band.contains(b, target: s, band: band) { env5 += 1 }
            }
        }
        regulatingSamples = reg
        settlingSamples = settling
        excludedSamples = excluded
        regulatingSeconds = regTime
        secondsWithin5 = inTime
        within5 = reg > 0 ? Double(in5) / Double(reg) : 0
        within1 = reg > 0 ? Double(in1) / Double(reg) : 0
        envelopeWithin5 = envN > 0 ? Double(env5) / Double(envN) : nil
        pressureMin = n > 0 ? lo : nil
        pressureMax = n > 0 ? hi : nil
        pressureMean = n > 0 ? sum / Double(n) : nil
        errorSd = n > 1 ? Swift.max(0, (errSq - errSum * errSum / Double(n)) / Double(n - 1)).squareRoot() : nil
        worstError = reg > 0 ? worst : nil
        trippedSamples = modes["tripped"] ?? 0
        self.modes = modes
    }
}

/// One load cell's part of the total force over a window.
public struct LoadCellShare: Sendable, Equatable, Codable {
    /// Mean force of the cell, N.
    public var meanForceN: Double
    /// Its mean force ÷ the sum of the cells' mean forces.
    public var share: Double
}

/// Per-load-cell mean force and share of the total, from one force array per sample
/// (samples with another cell count than the last are left out). Empty when there is
/// at most one cell.
public func loadCellShares(_ forces: [[Double]]) -> [LoadCellShare] {
    guard let n = forces.last?.count, n > 1 else { return [] }
    let use = forces.filter { $0.count == n }
    var sums = Array(repeating: 0.0, count: n)
    for f in use { for k in 0..<n { sums[k] += f[k] } }
    let means = sums.map { $0 / Double(use.count) }
    let total = means.reduce(0, +)
    return means.map { LoadCellShare(meanForceN: $0, share: total != 0 ? $0 / total : 0) }
}

/// Round axis ticks: steps of 1, 2 or 5 × 10ⁿ covering `lo…hi` with about `count`
/// ticks, as a lab would draw them (0, 2, 4, 6 — never 22.05 / 17.43).
public func roundTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard lo.isFinite, hi.isFinite, hi > lo else { return [lo] }
    let raw = (hi - lo) / Double(Swift.max(1, count))
    var mag = 1.0
    while mag * 10 <= raw { mag *= 10 }
    while mag > raw { mag /= 10 }
    let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
    var out: [Double] = []
    var k = (lo / step).rounded(.up)
    while k * step <= hi + step * 1e-9 {
        let v = k * step
        out.append(abs(v) < step * 1e-9 ? 0 : v)
        k += 1
    }
    return out
}

/// Ticks every `step` from `lo` (already on the grid) to `hi`.
func ticks(_ lo: Double, _ hi: Double, step: Double) -> [Double] {
    guard step > 0, hi >= lo else { return [lo] }
    var out: [Double] = []
    var k = (lo / step).rounded()
    while k * step <= hi + step * 1e-9 { out.append(abs(k * step) < step * 1e-9 ? 0 : k * step); k += 1 }
    return out
}

/// A tick label with as many decimals as the step needs.
public func tickLabel(_ v: Double, step: Double) -> String {
    var d = 0, s = step
    while s < 1 - 1e-9 && d < 6 { s *= 10; d += 1 }
    return fixed(v, d)
}

/// Something that happened during a window, marked on the pressure figure.
public struct PlotEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case fault, injection, excursion, setpoint, intervention }
    public var time: Double
    public var kind: Kind
    public var label: String
    public init(time: Double, kind: Kind, label: String) { self.time = time; self.kind = kind; self.label = label }
}

/// An SVG chart of a window: the ±band around the setpoint (shaded), the setpoint
/// (dashed), the fast loop's min–max envelope (light) and the logged pressure.
public enum SVGReport {
    /// The run figure of the standard report, laid out for print (see ``RunFigure``).
    ///
    /// Axes have round 1-2-5 ticks; the y axis spans the regulated data, not the
    /// `injected` intervals (falsified readings) nor the tripped ones, which are shaded
    /// instead, with what went beyond the axis marked at its edge; time is run time
    /// from the first sample in s, min or h (whichever reads best), its origin in UTC in
    /// the axis title. `events` (faults, injections, excursions, setpoint changes,
    /// interventions) are marked where they happened: a coloured vertical line each
    /// (`class="event-KIND"`), numbered in a strip above the plot with a leader line to
    /// it, and listed below the plot. The key is above the plot, outside the data.
    public static func render(_ pts: [TracePoint], title: String, band: Double = 0.05, events: [PlotEvent] = [],
                              injected: [ClosedRange<Double>] = [], width: Int = 960, height: Int = 420) -> String {
        RunFigure(points: pts, title: title, band: band, events: events, injected: injected, width: width, height: height).svg()
    }

    /// Several pressure traces on one figure (a comparison of channels or run logs):
    /// each source's logged pressure against its own run time (from its first sample),
    /// one colour each with a legend, on round 1-2-5 ticks.
    public static func renderComparison(_ series: [(label: String, points: [(Double, Double)])], title: String,
                                        width: Int = 960, height: Int = 440) -> String {
        let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
        let legendRows = series.count
        let ml = 70.0, mr = 20.0, mt = 40.0, mb = 50.0 + Double(legendRows) * 14
        let totalHeight = height + legendRows * 14
        let w = Double(width) - ml - mr, h = Double(totalHeight) - mt - mb
        let spans = series.map { s in (s.points.last?.0 ?? 0) - (s.points.first?.0 ?? 0) }
        let span = Swift.max(spans.max() ?? 1, 1e-9)
        let values = series.flatMap { $0.points.map(\.1) }
        let lo0 = Swift.min(0, values.min() ?? 0), hi0 = Swift.max(values.max() ?? 1, 1e-9) * 1.05
        let yt0 = roundTicks(lo0, hi0), yStep = yt0.count > 1 ? yt0[1] - yt0[0] : 1
        let lo = (lo0 / yStep).rounded(.down) * yStep, hi = (hi0 / yStep).rounded(.up) * yStep
        let (unit, scale) = span >= 7200 ? ("h", 3600.0) : span >= 120 ? ("min", 60.0) : ("s", 1.0)
        let xt = roundTicks(0, span / scale), xStep = xt.count > 1 ? xt[1] - xt[0] : 1
        func x(_ t: Double) -> Double { ml + t / span * w }
        func y(_ v: Double) -> Double { mt + (hi - v) / (hi - lo) * h }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(totalHeight)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(ml)" y="24" font-size="15">\(escape(title))</text>

        """
        for v in ticks(lo, hi, step: yStep) { svg += "<line x1=\"\(ml)\" y1=\"\(fixed(y(v), 1))\" x2=\"\(ml + w)\" y2=\"\(fixed(y(v), 1))\" stroke=\"#eee\"/>\n" }
        for (i, s) in series.enumerated() where s.points.count > 1 {
            let t0 = s.points[0].0
            let pts = s.points.map { "\(fixed(x($0.0 - t0), 1)),\(fixed(y($0.1), 1))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" points=\"\(pts)\" fill=\"none\" stroke=\"\(palette[i % palette.count])\" stroke-width=\"1.2\"/>\n"
        }
        svg += axes(ml: ml, mt: mt, w: w, h: h, height: height, yLabel: "stack pressure, MPa", xLabel: "run time from each source's first sample, \(unit)",
                    yTicks: ticks(lo, hi, step: yStep).map { (y($0), tickLabel($0, step: yStep)) },
                    xTicks: xt.map { (x($0 * scale), tickLabel($0, step: xStep)) })
        for (i, s) in series.enumerated() {
            svg += "<text x=\"\(ml)\" y=\"\(height + i * 14)\" font-size=\"11\" fill=\"\(palette[i % palette.count])\">— \(escape(s.label))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// `YYYY-MM-DDTHH:MM:SS` of a unix time (no Foundation).
    static func isoSeconds(_ t: Double) -> String {
        var tt = time_t(t.rounded(.down))
        var tmv = tm()
        gmtime_r(&tt, &tmv)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(two(tmv.tm_mon + 1))-\(two(tmv.tm_mday))T\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec))"
    }

    /// Interfacial resistance against stack pressure from a critical-stack-pressure
    /// sweep: the measured levels (± one standard deviation), the fitted knee and the
    /// CSP with its 95 % interval shaded.
    public static func renderKnee(points: [(pressure: Double, resistance: Double, sd: Double)], curve: ((Double) -> Double)?,
                                  csp: (value: Double, low: Double, high: Double)?, title: String, width: Int = 720, height: Int = 420,
                                  margin: (value: Double, threshold: Double)? = nil, upLeg: Set<Int> = []) -> String {
        let ml = 70.0, mr = 20.0, mt = 40.0, mb = 50.0
        let w = Double(width) - ml - mr, h = Double(height) - mt - mb
        let ps = points.map(\.pressure), rs = points.map { $0.resistance + $0.sd } + points.map { $0.resistance - $0.sd }
        // Round 1-2-5 ticks, the axes ending on a tick.
        let pt0 = roundTicks(0, Swift.max(ps.max() ?? 1, 1e-9) * 1.05), pStep = pt0.count > 1 ? pt0[1] - pt0[0] : 1
        let p0 = 0.0, p1 = ((Swift.max(ps.max() ?? 1, 1e-9) * 1.05) / pStep).rounded(.up) * pStep
        let rt0 = roundTicks(Swift.min(0, rs.min() ?? 0), Swift.max(rs.max() ?? 1, 1e-9) * 1.1), rStep = rt0.count > 1 ? rt0[1] - rt0[0] : 1
        let r0 = (Swift.min(0, rs.min() ?? 0) / rStep).rounded(.down) * rStep, r1 = ((Swift.max(rs.max() ?? 1, 1e-9) * 1.1) / rStep).rounded(.up) * rStep
        let pt = ticks(p0, p1, step: pStep), rt = ticks(r0, r1, step: rStep)
        func x(_ p: Double) -> Double { ml + (p - p0) / (p1 - p0) * w }
        func y(_ r: Double) -> Double { mt + (r1 - r) / (r1 - r0) * h }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(ml)" y="24" font-size="15">\(escape(title))</text>

        """
        if let c = csp {
            svg += "<rect x=\"\(fixed(x(c.low), 1))\" y=\"\(mt)\" width=\"\(fixed(Swift.max(1, x(c.high) - x(c.low)), 1))\" height=\"\(h)\" fill=\"#fde0c5\"/>\n"
            svg += "<line x1=\"\(fixed(x(c.value), 1))\" y1=\"\(mt)\" x2=\"\(fixed(x(c.value), 1))\" y2=\"\(mt + h)\" stroke=\"#e6550d\" stroke-dasharray=\"5 3\"/>\n"
            svg += "<text x=\"\(fixed(x(c.value) + 4, 1))\" y=\"\(fixed(mt + 14, 1))\" fill=\"#e6550d\">CSP \(fixed(c.value, 2)) MPa</text>\n"
        }
        if let m = margin {
            svg += "<line x1=\"\(ml)\" y1=\"\(fixed(y(m.threshold), 1))\" x2=\"\(ml + w)\" y2=\"\(fixed(y(m.threshold), 1))\" stroke=\"#31a354\" stroke-dasharray=\"2 3\"/>\n"
            svg += "<line x1=\"\(fixed(x(m.value), 1))\" y1=\"\(mt)\" x2=\"\(fixed(x(m.value), 1))\" y2=\"\(mt + h)\" stroke=\"#31a354\" stroke-dasharray=\"5 3\"/>\n"
            svg += "<text x=\"\(fixed(x(m.value) + 4, 1))\" y=\"\(fixed(mt + 30, 1))\" fill=\"#31a354\">P_m \(fixed(m.value, 2)) MPa</text>\n"
        }
        if let curve {
            let line = (0...200).map { i -> String in
                let p = p1 * 0.02 + Double(i) / 200 * (p1 * 0.98)
                return "\(fixed(x(p), 1)),\(fixed(y(Swift.min(Swift.max(curve(p), r0), r1)), 1))"
            }.joined(separator: " ")
            svg += "<polyline points=\"\(line)\" fill=\"none\" stroke=\"#1f4e9c\" stroke-width=\"1.5\"/>\n"
        }
        for (i, p) in points.enumerated() {
            let colour = upLeg.contains(i) ? "#9e4fbf" : "#333"
            svg += "<line x1=\"\(fixed(x(p.pressure), 1))\" y1=\"\(fixed(y(p.resistance - p.sd), 1))\" x2=\"\(fixed(x(p.pressure), 1))\" y2=\"\(fixed(y(p.resistance + p.sd), 1))\" stroke=\"\(colour)\"/>\n"
            svg += "<circle cx=\"\(fixed(x(p.pressure), 1))\" cy=\"\(fixed(y(p.resistance), 1))\" r=\"3.5\" fill=\"\(colour)\"/>\n"
        }
        if !upLeg.isEmpty { svg += "<text x=\"\(fixed(ml + w - 4, 1))\" y=\"\(fixed(mt + 14, 1))\" text-anchor=\"end\" fill=\"#9e4fbf\">up leg</text>\n" }
        svg += axes(ml: ml, mt: mt, w: w, h: h, height: height, yLabel: "interfacial resistance, Ω·cm²", xLabel: "stack pressure, MPa",
                    yTicks: rt.map { (y($0), tickLabel($0, step: rStep)) },
                    xTicks: pt.map { (x($0), tickLabel($0, step: pStep)) })
        return svg + "</svg>\n"
    }

    /// Both axes, their tick labels (positions already in pixels) and titles.
    static func axes(ml: Double, mt: Double, w: Double, h: Double, height: Int, yLabel: String, xLabel: String,
                     yTicks: [(Double, String)], xTicks: [(Double, String)], xLabelY: Double? = nil) -> String {
        var svg = "<line x1=\"\(ml)\" y1=\"\(mt + h)\" x2=\"\(ml + w)\" y2=\"\(mt + h)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(ml)\" y1=\"\(mt)\" x2=\"\(ml)\" y2=\"\(mt + h)\" stroke=\"black\"/>\n"
        for (y, label) in yTicks { svg += "<text class=\"tick-y\" x=\"\(fixed(ml - 6, 1))\" y=\"\(fixed(y + 4, 1))\" text-anchor=\"end\">\(label)</text>\n" }
        for (x, label) in xTicks { svg += "<text class=\"tick-x\" x=\"\(fixed(x, 1))\" y=\"\(fixed(mt + h + 18, 1))\" text-anchor=\"middle\">\(label)</text>\n" }
        svg += "<text x=\"16\" y=\"\(fixed(mt + h / 2, 1))\" transform=\"rotate(-90 16 \(fixed(mt + h / 2, 1)))\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        svg += "<text x=\"\(fixed(ml + w / 2, 1))\" y=\"\(fixed(xLabelY ?? Double(height - 12), 1))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        return svg
    }

    /// Text for SVG: control characters escaped and XML's special characters as entities.
    static func escape(_ s: String) -> String { SafeText.xml(s) }
}

/// A number with a fixed count of decimals (no Foundation needed).
public func fixed(_ v: Double, _ digits: Int) -> String {
    guard v.isFinite else { return "\(v)" }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (v * p).rounded() / p
    var s = "\(abs(r))"
    if s.contains("e") { return "\(r)" }
    if !s.contains(".") { s += "." }
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    var frac = String(parts[1])
    while frac.count < digits { frac += "0" }
    frac = String(frac.prefix(digits))
    let sign = r < 0 ? "-" : ""
    return digits == 0 ? sign + String(parts[0]) : sign + String(parts[0]) + "." + frac
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
