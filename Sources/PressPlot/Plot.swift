#if canImport(Glibc)
import Glibc
#endif

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
public struct WindowSummary: Sendable, Equatable, Codable {
    public var start: Double
    public var end: Double
    public var samples: Int
    /// Samples while regulating with a setpoint.
    public var regulatingSamples: Int
    /// Regulating samples within `settle` seconds of a setpoint change: reported, but
    /// left out of the band statistics.
    public var settlingSamples: Int
    public var settleSeconds: Double
    /// Fraction of the regulating samples (after settling) within ±5 % / ±1 % of their setpoint.
    public var within5: Double
    public var within1: Double
    /// Fraction of regulating samples whose fast-loop envelope stayed within ±5 %.
    public var envelopeWithin5: Double?
    public var pressureMin: Double?
    public var pressureMax: Double?
    public var pressureMean: Double?
    /// Largest |pressure − setpoint| / setpoint while regulating.
    public var worstError: Double?
    public var trippedSamples: Int
    public var modes: [String: Int]

    public init(_ pts: [TracePoint], band: Double = 0.05, settle: Double = 10) {
        settleSeconds = settle
        start = pts.first?.time ?? 0
        end = pts.last?.time ?? 0
        samples = pts.count
        var reg = 0, in5 = 0, in1 = 0, env5 = 0, envN = 0, settling = 0
        var lastSetpoint: Double?, changedAt = -Double.infinity
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0, n = 0
        var worst = 0.0
        var modes: [String: Int] = [:]
        for p in pts {
            modes[p.mode, default: 0] += 1
            if let v = p.pressure { lo = Swift.min(lo, v); hi = Swift.max(hi, v); sum += v; n += 1 }
            if p.setpoint != lastSetpoint || p.mode != "regulating" { changedAt = p.time; lastSetpoint = p.setpoint }
            guard p.mode == "regulating", let s = p.setpoint, s > 0, let v = p.pressure else { continue }
            if p.time - changedAt < settle { settling += 1; continue }
            reg += 1
            let e = abs(v - s) / s
            worst = Swift.max(worst, e)
            if e <= band { in5 += 1 }
            if e <= 0.01 { in1 += 1 }
            if let a = p.min, let b = p.max {
                envN += 1
                if abs(a - s) / s <= band && abs(b - s) / s <= band { env5 += 1 }
            }
        }
        regulatingSamples = reg
        settlingSamples = settling
        within5 = reg > 0 ? Double(in5) / Double(reg) : 0
        within1 = reg > 0 ? Double(in1) / Double(reg) : 0
        envelopeWithin5 = envN > 0 ? Double(env5) / Double(envN) : nil
        pressureMin = n > 0 ? lo : nil
        pressureMax = n > 0 ? hi : nil
        pressureMean = n > 0 ? sum / Double(n) : nil
        worstError = reg > 0 ? worst : nil
        trippedSamples = modes["tripped"] ?? 0
        self.modes = modes
    }
}

/// An SVG chart of a window: the ±band around the setpoint (shaded), the setpoint
/// (dashed), the fast loop's min–max envelope (light) and the logged pressure.
public enum SVGReport {
    public static func render(_ pts: [TracePoint], title: String, band: Double = 0.05, width: Int = 960, height: Int = 420) -> String {
        let ml = 70.0, mr = 20.0, mt = 40.0, mb = 50.0
        let w = Double(width) - ml - mr, h = Double(height) - mt - mb
        let t0 = pts.first?.time ?? 0, t1 = Swift.max(t0 + 1e-9, pts.last?.time ?? 1)
        let (lo, hi) = yRange(pts, band: band)
        func x(_ t: Double) -> Double { ml + (t - t0) / (t1 - t0) * w }
        func y(_ v: Double) -> Double { mt + (hi - v) / (hi - lo) * h }
        func path(_ values: [(Double, Double)]) -> String {
            values.map { "\(fixed(x($0.0), 1)),\(fixed(y($0.1), 1))" }.joined(separator: " ")
        }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(ml)" y="24" font-size="15">\(escape(title))</text>

        """
        // Band: one polygon per run of points with a setpoint.
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
        if pp.count > 1 { svg += "<polyline points=\"\(path(pp))\" fill=\"none\" stroke=\"#1f4e9c\" stroke-width=\"1.5\"/>\n" }
        svg += axes(ml: ml, mt: mt, w: w, h: h, height: height, yLabel: "stack pressure, MPa", xLabel: "time from the first sample",
                    yTicks: (0...5).map { i in let v = lo + Double(i) / 5 * (hi - lo); return (y(v), fixed(v, 2)) },
                    xTicks: (0...5).map { i in let t = t0 + Double(i) / 5 * (t1 - t0); return (x(t), fixed(t - t0, 0) + " s") })
        svg += "<text x=\"\(fixed(ml + w - 4, 1))\" y=\"\(fixed(mt + 14, 1))\" text-anchor=\"end\" fill=\"#555\">blue: pressure (shaded: loop min–max) · green dashed: setpoint, shaded: ±\(Int((band * 100).rounded())) %</text>\n"
        return svg + "</svg>\n"
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
        let p0 = 0.0, p1 = Swift.max(ps.max() ?? 1, 1e-9) * 1.05
        let r0 = Swift.min(0, rs.min() ?? 0), r1 = Swift.max(rs.max() ?? 1, 1e-9) * 1.1
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
                    yTicks: (0...5).map { i in let r = r0 + Double(i) / 5 * (r1 - r0); return (y(r), fixed(r, 0)) },
                    xTicks: (0...5).map { i in let p = p0 + Double(i) / 5 * (p1 - p0); return (x(p), fixed(p, 1)) })
        return svg + "</svg>\n"
    }

    /// Both axes, their tick labels (positions already in pixels) and titles.
    static func axes(ml: Double, mt: Double, w: Double, h: Double, height: Int, yLabel: String, xLabel: String,
                     yTicks: [(Double, String)], xTicks: [(Double, String)]) -> String {
        var svg = "<line x1=\"\(ml)\" y1=\"\(mt + h)\" x2=\"\(ml + w)\" y2=\"\(mt + h)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(ml)\" y1=\"\(mt)\" x2=\"\(ml)\" y2=\"\(mt + h)\" stroke=\"black\"/>\n"
        for (y, label) in yTicks { svg += "<text x=\"\(fixed(ml - 6, 1))\" y=\"\(fixed(y + 4, 1))\" text-anchor=\"end\">\(label)</text>\n" }
        for (x, label) in xTicks { svg += "<text x=\"\(fixed(x, 1))\" y=\"\(fixed(mt + h + 18, 1))\" text-anchor=\"middle\">\(label)</text>\n" }
        svg += "<text x=\"16\" y=\"\(fixed(mt + h / 2, 1))\" transform=\"rotate(-90 16 \(fixed(mt + h / 2, 1)))\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        svg += "<text x=\"\(fixed(ml + w / 2, 1))\" y=\"\(height - 12)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        return svg
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
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
