import ArgumentParser
import Foundation
import PressProtocol

/// `pressctl sweep`: the critical-stack-pressure sweep, with progress and result.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the critical stack pressure: step down through a pressure window measuring interfacial resistance (admin).",
        discussion: """
        The channel must be regulating and have an interfacial-resistance signal. The sweep takes over the setpoint, \
        goes to --from, then steps down to --to in --steps levels, dwelling --dwell seconds at each (resistance is \
        averaged over the second half of the dwell). It aborts on impedance runaway (resistance above 20× the lowest \
        seen) or a level not reached, stays inside the channel's limits, and returns the setpoint to --return \
        (default --from) when it ends. The critical stack pressure is the middle of the fitted resistance knee, with \
        its 95 % interval. Exit status 1 when refused or aborted.
        """)
    @Option(help: "Highest pressure, MPa (the sweep starts here).") var from: Double?
    @Option(help: "Lowest pressure, MPa.") var to: Double?
    @Option(help: "Pressure levels including both ends (≥ 6).") var steps: Int?
    @Option(help: "Seconds at each level.") var dwell: Double?
    @Option(name: .customLong("return"), help: "Setpoint when the sweep ends, MPa (default: --from).") var returnTo: Double?
    @Flag(help: "Cancel a running sweep (what was measured is kept and fitted).") var cancel = false
    @Flag(help: "Start and return at once (follow with 'pressctl status').") var noWait = false
    @OptionGroup var conn: Connection

    func run() throws {
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        if cancel {
            let r = call(c, "sweep", SweepParams(channel: ch, action: .cancel), as: ActionResult.self)
            return conn.json ? printJSON(r) : print("\(r.channel): sweep cancelled")
        }
        guard let from, let to else { throw ValidationError("--from and --to are required") }
        let before = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first?.control?.lastSweep
        let r = call(c, "sweep", SweepParams(channel: ch, action: .start, fromMpa: from, toMpa: to, steps: steps, dwellS: dwell, returnMpa: returnTo),
                     as: ActionResult.self)
        if noWait { return conn.json ? printJSON(r) : print("\(r.channel): sweep started") }
        var shown = 0
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            guard let s = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first, let ctl = s.control else { break }
            if let p = ctl.sweep {
                if p.pointsMeasured > shown && !conn.json {
                    shown = p.pointsMeasured
                    print("\(ch): level \(p.pointsMeasured)/\(p.levels) measured; now at \(f(p.setpointMpa)) MPa")
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
        print("  P MPa     R Ω·cm²   ± sd")
        for p in r.points { print("  " + pad(f(p.pressureMpa), 10) + pad(f(p.resistanceOhmCm2, 2), 10) + f(p.resistanceSd, 2)) }
        if let csp = r.cspMpa, let lo = r.cspLowMpa, let hi = r.cspHighMpa {
            print(String(format: "  critical stack pressure %.2f MPa (95 %% %.2f–%.2f); 90 %% of the excess resistance gone at %.2f MPa; plateau %.1f Ω·cm²",
                         csp, lo, hi, r.p90Mpa ?? .nan, r.plateauOhmCm2 ?? .nan))
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
    @Option(help: "Interfacial resistance, Ω·cm².") var resistance: Double?
    @Option(help: "Cell temperature, °C.") var temperature: Double?
    @Option(help: "Cell current, mA (charging positive).") var current: Double?
    @Option(help: "Cell voltage, V.") var voltage: Double?
    @OptionGroup var conn: Connection
    func run() throws {
        guard resistance != nil || temperature != nil || current != nil || voltage != nil else { throw ValidationError("give --resistance, --temperature, --current or --voltage") }
        let c = try conn.connect()
        let p = PushSignalsParams(channel: try conn.requireChannel(c), interfacialResistanceOhmCm2: resistance, temperatureC: temperature, currentMa: current, voltageV: voltage)
        let r = call(c, "push_signals", p, as: ActionResult.self)
        conn.json ? printJSON(r) : print("\(r.channel): \(r.state)")
    }
}
