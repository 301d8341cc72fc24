import ArgumentParser
import Foundation
import PressProtocol

/// `pressctl sweep`: the critical-stack-pressure sweep, with progress and result.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the critical stack pressure: step through a pressure window measuring interfacial resistance (admin).",
        discussion: """
        The channel must be regulating. Its interfacial resistance may still be on its way (pushed by an analyser's \
        software, or an analyser's first spectrum): the sweep starts and each level waits for its measurements. The \
        sweep takes over the setpoint, \
        goes to --from, then steps to --to in --steps levels (--direction down: from > to, the default; up: from < to; \
        down-up: from > to, down to --to and back up to --from, the turning level measured once), dwelling --dwell \
        seconds at each. Resistance is averaged over the measurements acquired in the second half of the dwell, each \
        counted once by its acquisition time; the dwell extends until a level has --min-measurements of them (an \
        impedance analyser reports every few minutes), and the sweep aborts if they do not come within \
        --measurement-timeout. It aborts on impedance runaway (resistance above 20× the lowest seen) or a level not \
        reached, stays inside the channel's limits, and returns the setpoint to --return (default --from) when it ends.

        What it reports, per leg (see docs/operations.md, "Critical stack pressure"): the knee P_c (the middle of the \
        fitted logistic resistance knee) with its 95 % interval and P90 (90 % of the excess resistance gone) with its \
        interval, when the curve has a lower plateau in the window; always the margin pressure P_m, the highest \
        pressure below which resistance exceeds the mean of the two highest-pressure levels by --margin (default 0.2 = \
        20 %), with its 95 % interval; the mean current density and temperature the figures hold at; for down-up the \
        hysteresis (up − down) of P_c and P_m and the mean relative resistance difference at equal setpoints.

        --protocol dynamic: run the cycler stripping lithium during the sweep (the sweep records the current). At each \
        level the growth rate of interfacial resistance is the least-squares slope of its measurements against \
        acquisition time; a level grows when the slope is significantly positive (95 %) and above \
        --growth-threshold (fraction per hour, default 0.05 = 5 %/h). The dynamic CSP is the lowest level, scanning \
        down from the top, at which resistance does not grow, bracketed by the next lower level. Needs --dwell ≥ 120 \
        (minutes to hours in practice) and --min-measurements ≥ 3. Exit status 1 when refused or aborted.
        """)
    @Option(help: "First pressure (the sweep starts here): 8MPa, 80bar, a force through the cell area (800N), or a bare number in MPa.") var from: String?
    @Option(help: "Last pressure of the first leg, with a unit as for --from.") var to: String?
    @Option(help: "Pressure levels of one leg including both ends (≥ 6).") var steps: Int?
    @Option(help: "Seconds at each level.") var dwell: Double?
    @Option(name: .customLong("return"), help: "Setpoint when the sweep ends, with a unit as for --from (default: --from).") var returnTo: String?
    @Option(help: "Distinct resistance measurements each level needs, acquired after it settled (default 3).") var minMeasurements: Int?
    @Option(help: "Seconds past the dwell to wait for them before aborting (default 900).") var measurementTimeout: Double?
    @Option(help: "down (default), up, or down-up.") var direction: String?
    @Option(name: .customLong("protocol"), help: "static (default) or dynamic (growth rate while the cycler strips).") var sweepProtocol: String?
    @Option(help: "Margin criterion: resistance above the high-pressure reference by this fraction (default 0.2).") var margin: Double?
    @Option(help: "Dynamic protocol: growth threshold, fraction per hour (default 0.05 = 5 %/h).") var growthThreshold: Double?
    @Flag(help: "Cancel a running sweep (what was measured is kept and fitted).") var cancel = false
    @Flag(help: "Start and return at once (follow with 'pressctl status').") var noWait = false
    @OptionGroup var conn: Connection

    func validate() throws {
        try validatePressureOption(from, "--from")
        try validatePressureOption(to, "--to")
        try validatePressureOption(returnTo, "--return")
    }

    func run() throws {
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        if cancel {
            let r = call(c, "sweep", SweepParams(channel: ch, action: .cancel), as: ActionResult.self)
            return conn.json ? printJSON(r) : print("\(r.channel): sweep cancelled")
        }
        guard let fromText = from, let toText = to else { throw ValidationError("--from and --to are required") }
        let area = { cellArea(c, ch) }
        let from = try pressureOption(fromText, "--from", area: area), to = try pressureOption(toText, "--to", area: area)
        let returnTo = try returnTo.map { try pressureOption($0, "--return", area: area) }
        let dir = direction.map { $0.replacingOccurrences(of: "-", with: "_") }
        if let d = dir, !["down", "up", "down_up"].contains(d) { throw ValidationError("--direction is down, up or down-up") }
        if let k = sweepProtocol, !["static", "dynamic"].contains(k) { throw ValidationError("--protocol is static or dynamic") }
        let present = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first
        let before = present?.control?.lastSweep
        let r = call(c, "sweep", SweepParams(channel: ch, action: .start, fromMpa: from, toMpa: to, steps: steps, dwellS: dwell, returnMpa: returnTo,
                                                   minMeasurements: minMeasurements, measurementTimeoutS: measurementTimeout,
                                                   direction: dir, sweepProtocol: sweepProtocol, margin: margin, growthThresholdPerH: growthThreshold),
                     as: ActionResult.self)
        if !conn.json, present?.interfacialResistanceOhmCm2 == nil {
            // Fed by pushes or an analyser whose first result is still to come.
            print("\(ch): no interfacial-resistance measurement yet: each level waits for pushed results ('pressctl push') or analysed "
                  + "spectra (spectra_dir); the sweep aborts if a level has none within \(f(measurementTimeout ?? 900, 0)) s past its dwell")
        }
        if noWait { return conn.json ? printJSON(r) : print("\(r.channel): sweep started") }
        var shown = 0
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            guard let s = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first, let ctl = s.control else { break }
            if let p = ctl.sweep {
                if p.pointsMeasured > shown && !conn.json {
                    shown = p.pointsMeasured
                    print("\(ch): level \(p.pointsMeasured)/\(p.levels) measured; now at \(f(p.setpointMpa)) MPa" + (p.leg == "up" ? " (up leg)" : "")); fflush(nil)
                }
                continue
            }
            guard let res = ctl.lastSweep, res != before else { break }
            if conn.json { printJSON(res) } else { Sweep.show(res, channel: ch) }
            if res.status != "done" { throw ExitCode(Exit.refused.rawValue) }
            return
        }
        print("\(ch): the sweep ended without a result (see 'pressctl log events')")
        throw ExitCode(Exit.refused.rawValue)
    }

    static func show(_ r: SweepInfo, channel: String) {
        print("\(channel): sweep \(r.status)" + (r.note.map { ": \($0)" } ?? ""))
        let dynamic = r.sweepProtocol == "dynamic"
        let legs = r.direction == "down_up"
        print("  P MPa     R Ω·cm²   ± sd      n     J mA/cm²  T °C" + (legs ? "   leg " : "") + (dynamic ? "   dR/dt %/h (± SE)" : ""))
        for p in r.points {
            var line = "  " + pad(f(p.pressureMpa), 10) + pad(f(p.resistanceOhmCm2, 2), 10) + pad(f(p.resistanceSd, 2), 10) + pad("\(p.samples)", 6)
                + pad(p.currentDensityMaCm2.map { f($0, 2) } ?? "–", 10) + pad(p.temperatureC.map { f($0, 1) } ?? "–", 7)
            if legs { line += pad(p.leg ?? "down", 6) }
            if dynamic {
                let se = (p.slopeSeOhmCm2PerH ?? .nan) / max(p.resistanceOhmCm2, 1e-12) * 100
                line += (p.slopePctPerH.map { f($0, 1) + " ± " + f(se, 1) } ?? "–") + (p.grows == true ? "  grows" : "")
            }
            print(line)
        }
        for (i, l) in (r.legs ?? []).enumerated() {
            let name = legs ? "\(l.leg) leg: " : ""
            if let csp = l.cspMpa, let lo = l.cspLowMpa, let hi = l.cspHighMpa {
                var s = "  " + name + String(format: "critical stack pressure (knee P_c) %.2f MPa (95 %% %.2f–%.2f); P90 %.2f MPa", csp, lo, hi, l.p90Mpa ?? .nan)
                if let a = l.p90LowMpa, let b = l.p90HighMpa { s += String(format: " (95 %% %.2f–%.2f)", a, b) }
                if i == 0, let pl = r.plateauOhmCm2 { s += String(format: "; plateau %.1f Ω·cm²", pl) }
                print(s)
            } else {
                print("  \(name)no knee inside the swept range")
            }
            if let m = l.margin {
                let crit = String(format: "R > %.2f × %.2f Ω·cm² (mean of the two highest-pressure levels)", 1 + m.margin, m.referenceOhmCm2)
                if let p = m.pressureMpa {
                    print("  \(name)margin pressure P_m \(f(p)) MPa (95 % \(m.lowMpa.map { f($0) } ?? "< \(f(m.lowestPressureMpa))")–\(f(m.highMpa ?? p))): \(crit)")
                } else {
                    print("  \(name)margin pressure below the swept range: \(crit) nowhere down to \(f(m.lowestPressureMpa)) MPa")
                }
            }
            if let d = l.dynamic {
                let thr = f(d.thresholdPerH * 100, 1) + " %/h"
                if let p = d.cspMpa, let g = d.grewAtMpa {
                    print("  \(name)dynamic CSP \(f(p)) MPa: no growth above \(thr) here, growth at \(f(g)) MPa (bracket \(f(g))–\(f(p)))"
                          + (d.currentDensityMaCm2.map { ", |J| \(f($0, 2)) mA/cm²" } ?? ""))
                } else if let p = d.cspMpa {
                    print("  \(name)dynamic CSP at or below \(f(p)) MPa: no level grew above \(thr)")
                } else {
                    print("  \(name)dynamic CSP above the swept range: resistance grew above \(thr) at the highest level")
                }
            }
        }
        if r.legs == nil, let csp = r.cspMpa, let lo = r.cspLowMpa, let hi = r.cspHighMpa {
            print(String(format: "  critical stack pressure %.2f MPa (95 %% %.2f–%.2f); 90 %% of the excess resistance gone at %.2f MPa; plateau %.1f Ω·cm²",
                         csp, lo, hi, r.p90Mpa ?? .nan, r.plateauOhmCm2 ?? .nan))
        }
        if r.currentDensityMaCm2 != nil || r.temperatureC != nil {
            print("  held at " + [r.currentDensityMaCm2.map { "mean |J| \(f($0, 3)) mA/cm²" }, r.temperatureC.map { "\(f($0, 1)) °C" }]
                .compactMap { $0 }.joined(separator: ", "))
        }
        if let h = r.hysteresis {
            var s: [String] = []
            if let d = h.cspShiftMpa { s.append("P_c up − down \(f(d)) ± \(f(h.cspShiftHalfWidthMpa ?? .nan)) MPa") }
            if let d = h.marginShiftMpa { s.append("P_m up − down \(f(d)) ± \(f(h.marginShiftHalfWidthMpa ?? .nan)) MPa") }
            if let m = h.meanRelativeResistanceDifference { s.append("R up vs down \(f(m * 100, 1)) % (mean over \(h.pairs) setpoints)") }
            print("  hysteresis: " + (s.isEmpty ? "not measurable" : s.joined(separator: "; ")))
        }
    }
}

/// `pressctl supervisor lock|unlock`.
struct Supervisor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lock or unlock a channel's impedance-aware supervisor (it keeps learning while locked).",
        discussion: "An operator setpoint locks it too. 'pressctl status' shows its state and its last reason.")
    @Argument(help: "lock or unlock") var action: String
    @OptionGroup var conn: Connection
    func run() throws {
        guard let act = SupervisorAction(rawValue: action) else { throw ValidationError("ACTION is lock or unlock") }
        let c = try conn.connect()
        let r = call(c, "supervisor", SupervisorParams(channel: try conn.requireChannel(c), action: act), as: ActionResult.self)
        conn.json ? printJSON(r) : print("\(r.channel): supervisor \(r.state)")
    }
}

/// `pressctl push`: auxiliary measurements from other software.
struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push a channel's interfacial resistance, temperature, current or voltage from other software (operator).",
        discussion: """
        For instruments pressd does not read itself (an impedance analyser driven by its own software, a cycler's \
        export): the values are used in place of the channel's own until they are older than the channel's \
        pushed_stale_after_s (default 900 s). Example, after each EIS fit: pressctl push -c A --resistance 23.4
        """)
    // `.unconditional`: a negative value (`--current -2.5`) is a value, not an option.
    @Option(parsing: .unconditional, help: "Interfacial resistance, Ω·cm².") var resistance: Double?
    @Option(parsing: .unconditional, help: "Cell temperature, °C.") var temperature: Double?
    @Option(parsing: .unconditional, help: "Cell current, mA (charging positive).") var current: Double?
    @Option(parsing: .unconditional, help: "Cell voltage, V.") var voltage: Double?
    @Option(name: .customLong("signal"), parsing: .unconditionalSingleValue,
            help: "Any pushable signal by its key, KEY=VALUE (e.g. thickness_um=812.5, bulk_resistance_ohm_cm2=4.1; the keys are those of status --json's signals). Repeatable.")
    var signals: [String] = []
    @Option(help: "When the values were measured: ISO 8601 (2026-11-28T14:03:12Z, 2026-11-28T15:03:12+01:00), Unix seconds, or a time ago (90s, 5m); default now. For an analyser, the spectrum's start time.")
    var acquiredAt: String?
    @OptionGroup var conn: Connection
    func validate() throws {
        guard resistance != nil || temperature != nil || current != nil || voltage != nil || !signals.isEmpty else {
            throw ValidationError("give --resistance, --temperature, --current, --voltage or --signal KEY=VALUE")
        }
        _ = try signals.map(Push.signalValue)
        _ = try acquiredAt.map(Push.acquiredTime)
    }
    func run() throws {
        let at = try acquiredAt.map(Push.acquiredTime)
        let c = try conn.connect()
        let p = PushSignalsParams(channel: try conn.requireChannel(c), interfacialResistanceOhmCm2: resistance, temperatureC: temperature, currentMa: current,
                                  voltageV: voltage, acquiredAt: at, signals: signals.isEmpty ? nil : try signals.map(Push.signalValue))
        let r = call(c, "push_signals", p, as: ActionResult.self)
        conn.json ? printJSON(r) : print("\(r.channel): \(r.state)")
    }
}

extension Push {
    /// `--signal KEY=VALUE`.
    static func signalValue(_ text: String) throws -> SignalValue {
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, let v = Double(parts[1]), v.isFinite else {
            throw ValidationError("--signal '\(text)': give KEY=VALUE with a finite number, e.g. thickness_um=812.5")
        }
        return SignalValue(key: parts[0], value: v)
    }

    /// `--acquired-at`: any time `log events --since` takes (ISO 8601, Unix seconds,
    /// now, or a time ago such as 90s), named in the error.
    static func acquiredTime(_ text: String) throws -> Double {
        do { return try parseTime(text) } catch { throw ValidationError("--acquired-at: \(error)") }
    }
}
