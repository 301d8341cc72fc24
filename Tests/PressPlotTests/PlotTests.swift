import Testing
@testable import PressPlot

@Suite("Plots and window statistics")
struct PlotTests {
    func trace() -> [TracePoint] {
        (0..<100).map { k in
            let t = Double(k)
            let sp = k < 50 ? 5.0 : 6.0
            let p = k < 50 ? 5.0 + 0.02 * Double(k % 3 - 1) : (k < 53 ? 5.5 : 6.0)
            return TracePoint(time: t, pressure: p, setpoint: sp, min: p - 0.05, max: p + 0.05)
        }
    }

    @Test("summary: band fractions over steady samples; settling after a setpoint change is set apart")
    func summary() {
        let s = WindowSummary(trace(), settle: 5)
        #expect(s.samples == 100)
        // t = 0…4 (the window's first setpoint) and t = 50…54 (the change to 6 MPa).
        #expect(s.settlingSamples == 10)
        #expect(s.regulatingSamples == 90)
        #expect(s.within5 == 1)
        #expect(abs(s.within1 - 1) < 1e-12)
        #expect(s.pressureMax == 6)
        let noSettle = WindowSummary(trace(), settle: 0)
        #expect(noSettle.within5 < 1)              // 5.5 MPa against a 6 MPa setpoint counts then
        #expect(abs(noSettle.worstError! - 0.5 / 6) < 1e-9)
    }

    @Test("tripped samples are counted, not judged for the band")
    func modes() {
        var pts = trace()
        for i in 60..<70 { pts[i].mode = "tripped"; pts[i].pressure = 0 }
        let s = WindowSummary(pts, settle: 0)
        #expect(s.trippedSamples == 10)
        #expect(s.modes["tripped"] == 10)
    }

    @Test("terminal plot: fixed size, pressure marks on the setpoint row when in band, the setpoint still marked")
    func terminal() {
        let pts = (0..<50).map { TracePoint(time: Double($0), pressure: 5, setpoint: 5) }
        let lines = TerminalPlot.render(pts, width: 60, height: 20, title: "A")
        #expect(lines.count == 20)
        #expect(lines[0] == "A")
        let body = lines.dropFirst().dropLast(2)
        let rowWithDots = body.filter { $0.contains("●") }
        #expect(rowWithDots.count == 1)
        // Found by a tester: the marker hid the setpoint line. Its row is marked at the edge.
        #expect(rowWithDots.first?.hasSuffix("◀") == true, "\(rowWithDots)")
        #expect(body.filter { $0.contains("┄") }.count == 2) // the two band edges
        #expect(lines.last!.contains("−49 s"))
    }

    /// Found by a tester: `watch --plot` kept only the last screen-width of points, about
    /// 15 s at 5 Hz, whatever the window.
    @Test("terminal plot: a 10 min window at 5 Hz shows all ten minutes, an early excursion included")
    func window() {
        var pts = (0..<3000).map { TracePoint(time: Double($0) * 0.2, pressure: 5, setpoint: 5) }
        for i in 100..<110 { pts[i].pressure = 7 }   // 20 s in: 9.5 min before the end
        let lines = TerminalPlot.render(pts, width: 80, height: 20, window: 600)
        let top = lines.first { $0.contains("●") && !$0.hasSuffix("◀") }
        #expect(top != nil, "the excursion at 20 s is on the chart: \(lines.joined(separator: "\n"))")
        if let top, let dot = top.firstIndex(of: "●") {
            let col = top.distance(from: top.startIndex, to: dot) - 8
            #expect(col >= 0 && col < 5, "near the left edge, column \(col)")
        }
        #expect(lines.last!.contains("−10 min"))
    }

    @Test("SVG report: band, setpoint, envelope and pressure are drawn; text is escaped")
    func svg() {
        let svg = SVGReport.render(trace(), title: "A <test> & co")
        #expect(svg.hasPrefix("<svg"))
        #expect(svg.contains("A &lt;test&gt; &amp; co"))
        #expect(svg.split(separator: "\n").filter { $0.hasPrefix("<polygon") }.count == 2) // one regulating run's band + envelope
        #expect(svg.contains("stroke-dasharray"))
        #expect(svg.hasSuffix("</svg>\n"))
    }

    @Test("fixed-point formatting")
    func formatting() {
        #expect(fixed(3.14159, 2) == "3.14")
        #expect(fixed(-0.5, 1) == "-0.5")
        #expect(fixed(2, 3) == "2.000")
        #expect(fixed(12.5, 0) == "13")
    }

    @Test("round ticks: 1-2-5 steps on the grid, never 22.05 / 17.43 / -1.06")
    func ticks() {
        #expect(roundTicks(17.43, 22.05) == [18, 19, 20, 21, 22])
        #expect(roundTicks(-1.06, 22.05) == [0, 5, 10, 15, 20])
        #expect(roundTicks(0, 0.9).map { fixed($0, 1) } == ["0.0", "0.2", "0.4", "0.6", "0.8"])
        #expect(roundTicks(0, 7200) == [0, 2000, 4000, 6000])
        #expect(tickLabel(0.4, step: 0.2) == "0.4" && tickLabel(20, step: 5) == "20")
    }

    @Test("the SVG report marks events where they happened and labels axes on round ticks")
    func events() {
        let ev = [PlotEvent(time: 30, kind: .fault, label: "over_pressure"), PlotEvent(time: 60, kind: .injection, label: "bias <50 N>")]
        let svg = SVGReport.render(trace(), title: "A", events: ev)
        let fault = svg.split(separator: "\n").first { $0.contains("class=\"event-fault\"") }
        // x = ml + (t − t0)/(t1 − t0) · w = 70 + 30/99 · 870.
        #expect(fault?.contains("x1=\"\(fixed(70 + 30.0 / 99 * 870, 1))\"") == true, "\(fault ?? "")")
        #expect(svg.contains("class=\"event-injection\"") && svg.contains("bias &lt;50 N&gt;"))
        #expect(svg.contains("run time, s"))
        #expect(svg.contains(">5.0</text>") && svg.contains(">5.5</text>"), "y ticks every 0.5 MPa")
    }

    @Test("per-load-cell shares: mean force of each cell and its part of the total")
    func shares() {
        // A sample with another cell count (a cell dropped out) is left out.
        let s = loadCellShares([[120], [100, 300], [140, 260]])
        #expect(s == [LoadCellShare(meanForceN: 120, share: 0.3), LoadCellShare(meanForceN: 280, share: 0.7)])
        let t = loadCellShares([[100, 300], [140, 260]])
        #expect(t.map(\.meanForceN) == [120, 280] && t.map(\.share) == [0.3, 0.7])
        #expect(loadCellShares([[500], [510]]).isEmpty, "one cell: no split")
    }
}
