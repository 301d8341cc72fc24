import ArgumentParser
import Foundation
import PressProtocol

/// `pressctl tune`: the relay autotune, with progress.
struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Autotune a channel's PID with a relay experiment (admin).",
        discussion: """
        The channel must be regulating, settled in band at the pressure to tune at, with no program loaded. The \
        experiment swings the actuator around the output that holds that pressure; the pressure stays within \
        ±EXCURSION of it (the experiment aborts first). On success the gains (and the static feedforward it \
        measured) replace the configured ones and are kept across restarts; on failure nothing changes and the \
        reason is printed. Exit status 1 when it fails or is refused.
        """)
    @Option(help: "Tuning rule: ziegler-nichols, tyreus-luyben, simc or amigo (default: the channel's configured rule).", completion: Completions.tuneRules) var rule: String?
    @Option(help: "Largest pressure deviation the experiment may cause: 0.25MPa, 2.5bar, a force through the cell area, or a bare number in MPa.") var excursion: String?
    @Option(help: "Oscillation periods to average.") var cycles: Int?
    @Option(help: "Give up after this many seconds.") var timeout: Double?
    @Flag(help: "Cancel a running autotune.") var cancel = false
    @Flag(help: "Start and return at once (follow progress with 'pressctl status').") var noWait = false
    @OptionGroup var conn: Connection

    func validate() throws { try validatePressureOption(excursion, "--excursion") }

    func run() throws {
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        let excursion = try self.excursion.map { try pressureOption($0, "--excursion", area: { cellArea(c, ch) }) }
        if cancel {
            let r = call(c, "tune", TuneParams(channel: ch, action: .cancel), as: ActionResult.self)
            return conn.json ? printJSON(r) : print("\(r.channel): autotune cancelled; old gains kept")
        }
        let before = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first?.control?.lastTune
        let started = Date().timeIntervalSince1970
        let r = call(c, "tune", TuneParams(channel: ch, action: .start, rule: rule, excursionMpa: excursion, cycles: cycles, timeoutS: timeout),
                     as: ActionResult.self)
        if noWait { return conn.json ? printJSON(r) : print("\(r.channel): autotune started") }
        var lastLine = ""
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            guard let s = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first, let ctl = s.control else { break }
            if let a = ctl.autotune {
                let line = "\(ch): \(a.phase)" + (a.phase == "relay" ? " \(a.cycles)/\(a.cyclesWanted) periods" : "")
                    + String(format: "  %.1f s of %.0f s  pressure %@ MPa (±%.2f around %.2f)", a.elapsedS, a.timeoutS, f(s.pressureMpa), a.excursionMpa, a.setpointMpa)
                if line != lastLine && !conn.json { print(line); fflush(nil) }
                lastLine = line
                continue
            }
            if let t = ctl.lastTune, t != before {
                if conn.json { return printJSON(t) }
                print("\(ch): tuned (\(t.rule)): kp \(f(t.kp, 4)) ki \(f(t.ki, 4))")
                print(String(format: "  ultimate gain %.4g, period %.3f s; process gain %.4g MPa/%@, time constant %.3f s, dead time %.3f s",
                             t.ultimateGain, t.ultimatePeriodS, t.processGain, displayUnit(s.outputUnit), t.timeConstantS, t.deadTimeS))
                return
            }
            // Neither running nor a new result: it failed or was cancelled; the reason is in the event log.
            let events = call(c, "log_events", LogExportParams(since: started - 1, until: Date().timeIntervalSince1970 + 1, channel: ch),
                              as: LogEventsResult.self).events.filter { $0.kind == "autotune" }
            let why = events.last?.detail ?? "stopped (see 'pressctl log events')"
            if conn.json { printJSON(events.last) } else { print("\(ch): autotune \(why)") }
            throw ExitCode(Exit.refused.rawValue)
        }
    }
}
