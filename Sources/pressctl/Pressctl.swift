import ArgumentParser
import Foundation
import PressPlot
import PressProtocol

/// Exit codes (documented in docs/pressctl.md).
enum Exit {
    /// pressd answered with an error (out of range, fault latched, …).
    static let refused = ExitCode(1)
    /// pressd is not running or the socket cannot be reached.
    static let notRunning = ExitCode(3)
    /// pressd answered something pressctl does not understand.
    static let protocolError = ExitCode(4)
}

struct Connection: ParsableArguments {
    @Option(name: .long, help: "Control socket path (default: $PRESSD_SOCKET, else /run/pressd/pressd.sock when /run/pressd exists, else $XDG_RUNTIME_DIR/pressd/pressd.sock or /tmp/pressd-UID/pressd.sock).",
            completion: .file())
    var socket: String?

    @Option(name: .shortAndLong, help: "Channel name.", completion: Completions.channels)
    var channel: String?

    @Flag(name: .long, help: "Print the daemon's JSON answer instead of a table.")
    var json = false

    @Option(name: [.customShort("H"), .customLong("host")], help: "Drive the rig on another machine over SSH: [user@]host[:port]; several, comma-separated, for 'status' (see docs/pressctl.md).")
    var host: String?

    @Option(name: .customLong("ssh-command"), help: "The ssh program and its options for -H (default: $PRESSCTL_SSH, else ssh).")
    var sshCommand: String?

    /// Connects, or prints why not and exits (see `fail`).
    func connect() throws -> ControlClient {
        do { return try open() } catch let e as ClientError { fail(e) }
    }

    /// Connects, or throws why not (a `ClientError`; a usage error as `ValidationError`).
    func open() throws -> ControlClient {
        if host != nil { return try openRemote() }
        let path = socket ?? SocketPath.resolveClient()
        if socket == nil, SocketPath.isPerUserDefault(path), let why = SocketPath.untrustedDirectoryReason(of: path) {
            throw ClientError.untrustedDirectory(path: path, reason: why)
        }
        return try ControlClient(path: path)
    }

    /// The channel to act on: `--channel`, or the only channel when there is one.
    func requireChannel(_ client: ControlClient) throws -> String {
        if let channel { return channel }
        let all = client.hello?.channels ?? []
        if all.count == 1 { return all[0] }
        FileHandle.standardError.write(Data("pressctl: pressd has several channels (\(all.joined(separator: ", "))): name one with --channel\n".utf8))
        throw ExitCode.validationFailure
    }
}

/// Prints a client error on one line and exits with the matching code. With `--json`
/// the error is also a JSON object on standard output, `{"error": {"code", "message"}}`,
/// so that a script reading the output can tell a refusal from an answer.
func fail(_ error: ClientError) -> Never {
    FileHandle.standardError.write(Data("pressctl: \(safe("\(error)"))\n".utf8))
    if CommandLine.arguments.contains("--json") {
        let code: String
        switch error {
        case .notRunning, .pathTooLong, .io: code = "not_running"
        case .permissionDenied: code = "permission_denied"
        case .untrustedDirectory: code = "untrusted_directory"
        case .protocolViolation: code = "protocol_error"
        case .remote(let e): code = e.code.rawValue
        case .unreachable, .onRig: code = error.connectionCode
        }
        let message: String
        if case .remote(let e) = error { message = e.message } else { message = "\(error)" }
        print(JSONOutput.error(code: code, message: message))
    }
    switch error {
    case .notRunning, .pathTooLong, .io, .permissionDenied, .untrustedDirectory, .unreachable, .onRig: Foundation.exit(Exit.notRunning.rawValue)
    case .protocolViolation: Foundation.exit(Exit.protocolError.rawValue)
    case .remote: Foundation.exit(Exit.refused.rawValue)
    }
}

func call<P: Encodable, R: Codable>(_ c: ControlClient, _ method: String, _ params: P, as: R.Type) -> R {
    do { return try c.call(method, params, as: R.self) } catch { fail(error) }
}

/// Prints `v` as `--json` output: `{"ok": v}`, numbers rounded (see `JSONOutput`).
func printJSON<T: Encodable>(_ v: T) {
    print(JSONOutput.ok(v))
}

func f(_ v: Double?, _ digits: Int = 3) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "—" }

/// " (achieved ×N)" when the simulator's clock slipped behind its time scale (the host
/// could not keep up), else "".
func achievedScale(_ l: LoopInfo, uptime: Double) -> String {
    guard let slipped = l.slippedS, slipped > 0, uptime > 0 else { return "" }
    return " (achieved ×\(f(max(0, l.timeScale - slipped / uptime), 1)))"
}

/// A duration a person reads at a glance: 42 s, 7 min, 3 h 12 min, 6 d 4 h.
func humanDuration(_ seconds: Double) -> String {
    let s = max(0, Int(seconds.rounded()))
    switch s {
    case ..<120: return "\(s) s"
    case ..<3600: return "\(s / 60) min"
    case ..<86_400: return "\(s / 3600) h \(s % 3600 / 60) min"
    default: return "\(s / 86_400) d \(s % 86_400 / 3600) h"
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

@main
struct Pressctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pressctl",
        abstract: "Watch and steer pressd, the stack-pressure control daemon.",
        version: ControlProtocol.release,
        subcommands: [Status.self, SetCommand.self, Watch.self, Hold.self, Gap.self, Release.self, Ack.self, Program.self, Log.self, Run.self, Report.self, Report.Compare.self, Calibrate.self, Tune.self, Sweep.self, Supervisor.self, Push.self, Reload.self, Sim.self, Bridge.self],
        defaultSubcommand: Status.self)

    /// Accepts the common options before the subcommand too (`pressctl --socket P set
    /// 5MPa`), and answers an unknown subcommand with the nearest one.
    static func main() {
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        let args = CommandLineOrder.negativeValueAsArgument(CommandLineOrder.leadingOptionsMoved(Array(CommandLine.arguments.dropFirst())))
        if let word = args.first, !word.hasPrefix("-"), !names.contains(word) {
            let near = names.map { ($0, CommandLineOrder.distance($0, word)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
            FileHandle.standardError.write(Data(("pressctl: unknown command '\(word)'" + (near.map { "; did you mean '\($0)'?" } ?? "")
                                                  + " (commands: \(names.filter { $0 != Bridge._commandName }.joined(separator: ", ")))\n").utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        // Two channels named (`-c A -c B`): the parser would keep the last one silently,
        // and pressctl never guesses which cell to squeeze.
        // (Not in a shell-completion request, whose arguments are the words being typed.)
        var named: [String] = []
        let completing = args.first == "---completion"
        for (i, a) in args.enumerated() where !completing && i + 1 < args.count && (a == "-c" || a == "--channel") { named.append(args[i + 1]) }
        if !completing { named += args.filter { $0.hasPrefix("--channel=") }.map { String($0.dropFirst("--channel=".count)) } }
        if Set(named).count > 1 {
            FileHandle.standardError.write(Data("pressctl: --channel given more than once (\(named.map(safe).joined(separator: ", "))): name one channel\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
            // With --json a usage error is JSON on standard output too, like a refusal.
            if args.contains("--json"), !(error is ExitCode), !(error is CleanExit) {
                print(JSONOutput.error(code: "usage", message: message(for: error)))
            }
            exit(withError: error)
        }
    }
}

/// Command-line reordering for `Pressctl.main()`.
enum CommandLineOrder {
    /// Options that every command takes, with whether they take a value.
    static let common: [String: Bool] = ["--socket": true, "--channel": true, "-c": true, "--json": false,
                                         "-H": true, "--host": true, "--ssh-command": true]

    /// Moves the common options given before the subcommand to after it (before a `--`).
    static func leadingOptionsMoved(_ args: [String]) -> [String] {
        var lead: [String] = []
        var i = 0
        while i < args.count, args[i].hasPrefix("-") {
            let a = args[i]
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            guard let takesValue = common[name] else { break }
            lead.append(a)
            if takesValue && !a.contains("=") && i + 1 < args.count { lead.append(args[i + 1]); i += 1 }
            i += 1
        }
        guard !lead.isEmpty, i < args.count else { return args }
        var rest = Array(args[i...])
        let end = rest.firstIndex(of: "--") ?? rest.count
        rest.insert(contentsOf: lead, at: end)
        return rest
    }

    /// `set -1MPa`: a value that starts with a minus sign would be read as an option
    /// ("Missing expected argument"); it is moved behind `--` so that `set` sees it and
    /// explains why a negative pressure is refused.
    static func negativeValueAsArgument(_ args: [String]) -> [String] {
        guard args.first == "set", !args.contains("--") else { return args }
        let takesValue: Set<String> = ["--ramp", "--socket", "--channel", "-c"]
        for i in 1..<args.count where args[i].count > 1 && args[i].hasPrefix("-") {
            let second = args[i][args[i].index(after: args[i].startIndex)]
            guard second.isNumber || second == "." else { continue }
            if takesValue.contains(args[i - 1]) { continue }
            var out = args
            let value = out.remove(at: i)
            return out + ["--", value]
        }
        return args
    }

    /// Levenshtein distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var prev = row[0]; row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show every channel's mode, setpoint, pressure and faults.")
    @OptionGroup var conn: Connection

    func run() throws {
        if conn.isFleet { return try FleetStatus(conn: conn).run() }
        let c = try conn.connect()
        let s = call(c, "status", OptionalChannelParams(channel: conn.channel), as: StatusResult.self)
        if conn.json { return printJSON(s) }
        let l = s.loop
        let since = s.startedUnix.map { Date(timeIntervalSince1970: $0) } ?? Date().addingTimeInterval(-s.uptimeS)
        let df = DateFormatter(); df.dateFormat = "yyyy-MM-dd HH:mm"
        print("pressd \(s.version) (\(s.backend))  up \(humanDuration(s.uptimeS)) (since \(df.string(from: since)))  loop \(f(l.rateHz, 0)) Hz ×\(f(l.timeScale, 1))\(achievedScale(l, uptime: s.uptimeS))  ticks \(l.ticks)  overruns \(l.overruns)  jitter max \(f(l.maxJitterUs, 0)) µs")
        for a in s.alarms ?? [] { print("ALARM: \(a)") }
        print([pad("CH", 4), pad("MODE", 11), pad("SETPOINT MPa", 13), pad("PRESSURE MPa", 13), pad("ERROR", 9), pad("FORCE N", 9), pad("OUTPUT", 16), pad("T °C", 6), "FAULTS"].joined())
        for ch in s.channels {
            // A released or holding channel is not regulated: no setpoint, no error. While
            // ramping, the setpoint in force is the working one: shown, and the error is
            // against it (the target is named on the next line).
            let faults = ch.faults.isEmpty ? "—" : ch.faults.map { $0.code + ($0.active ? "" : " (cleared, ack)") }.joined(separator: ", ")
            print([pad(ch.name, 4), pad(ch.mode, 11), pad(ch.setpointText, 13), pad(f(ch.pressureMpa) + (ch.stale ? "!" : ""), 13),
                   pad(ch.errorText, 9), pad(f(ch.forceN, 1), 9), pad("\(f(ch.output, 3)) \(displayUnit(ch.outputUnit))", 16), pad(f(ch.temperatureC, 1), 6), faults].joined())
            if let target = ch.rampTarget {
                print("     ramping to \(f(target)) MPa: SETPOINT is the working setpoint on the way, ERROR is against it")
            }
            for flt in ch.faults { print("     \(flt.code): \(flt.message)") }
            if let r = ch.interfacialResistanceOhmCm2 {
                print("     interfacial resistance \(f(r, 1)) Ω·cm²" + (ch.interfacialResistanceAgeS.map { ", acquired \(humanDuration($0)) ago" } ?? "")
                      + (ch.bulkResistanceOhmCm2.map { "; bulk \(f($0, 1)) Ω·cm²" } ?? ""))
            }
            if let g = ch.gapTargetUm { print("     constant gap: holding the stack at \(f(g, 2)) µm; the pressure is what the cell develops") }
            // The signals without a column above, from their own descriptions (a signal
            // added to the daemon's table shows here without a change to pressctl).
            let shownAbove: Set<String> = ["force_n", "temperature_c", "interfacial_resistance_ohm_cm2", "bulk_resistance_ohm_cm2"]
            let more = (ch.signals ?? []).filter { !shownAbove.contains($0.key) }
            if !more.isEmpty {
                print("     " + more.map { "\($0.label) \(f($0.value, $0.decimals)) \($0.unit)" + ($0.ageS > 5 ? " (\(humanDuration($0.ageS)) old)" : "") }.joined(separator: ", "))
            }
            if ch.authorityLost == true { print("     authority lost: the pressure does not answer the output; output capped at what the setpoint needs") }
            if let x = ch.excursion {
                print("     OUT OF BAND for \(f(ch.timeS - x.startS, 1)) s, worst \(f(x.worstErrorMpa)) MPa from \(f(x.setpointMpa)) MPa (\(x.cause))")
            }
            if let x = ch.excursions, x.count > 0 {
                print("     excursions since start: \(x.count)\(x.brief.map { " (\($0) brief, not logged)" } ?? ""), \(f(x.timeOutOfBandS, 1)) s out of band, longest \(f(x.longestS, 1)) s, worst \(f(x.worstAbsErrorMpa)) MPa")
            }
            if let k = ch.control {
                print("     " + controlLine(k, unit: displayUnit(ch.outputUnit)))
                if let s = k.sweep { print("     sweep: level \(s.level + 1)/\(s.levels) at \(f(s.setpointMpa)) MPa, \(s.pointsMeasured) measured") }
                if let r = k.lastSweep, let csp = r.cspMpa {
                    print("     last sweep: CSP \(f(csp)) MPa (95 % \(f(r.cspLowMpa))–\(f(r.cspHighMpa)))")
                } else if let r = k.lastSweep { print("     last sweep \(r.status): \(r.note ?? "no fit")") }
                if let v = k.supervisor {
                    print("     supervisor " + (v.locked ? "locked (\(v.lockReason ?? ""))" : (v.converged ? "converged" : "active"))
                          + " window \(f(v.windowMinMpa))–\(f(v.windowMaxMpa)) MPa, R limit \(f(v.limitOhmCm2, 1)) Ω·cm²"
                          + (v.floorMpa.map { ", not below \(f($0)) MPa" } ?? "") + (v.lastReason.map { "; \($0)" } ?? ""))
                }
            }
        }
    }
}

struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Regulate a channel to a stack pressure (or force).",
        discussion: "VALUE takes a unit, spelt exactly (case-sensitive: mPa would be a millipascal): MPa, kPa, Pa, bar, psi, or N / kN (converted through the channel's cell area). Examples: 5MPa, 50bar, 500N.")
    @Argument(help: "Target with unit, e.g. 5MPa.", completion: Completions.quantity) var value: String
    @Option(name: .long, help: "Ramp rate for this change: 0.5MPa/s, 5bar/s, 6MPa/min, or a bare number in MPa/s (default: the channel's configured ramp).") var ramp: String?
    @OptionGroup var conn: Connection

    /// The unit is checked here, so that an error prints this command's usage line.
    func validate() throws {
        let q: Quantity
        do { q = try Quantity(parsing: value) } catch { throw ValidationError("\(error)") }
        if q.value < 0 {
            throw ValidationError("'\(value)' is negative: a stack pressure or force pushes on the cell, so it is ≥ 0; to take the load off, use 'pressctl release'")
        }
        if let ramp { do { _ = try Quantity.rateMPaPerS(parsing: ramp) } catch { throw ValidationError("--ramp: \(error)") } }
    }

    func run() throws {
        let q = try Quantity(parsing: value)
        let rate = try ramp.map { text in try Quantity.rateMPaPerS(parsing: text) }
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        let r = call(c, "set", SetParams(channel: ch, value: q.value, unit: q.unit.rawValue, rampMpaPerS: rate), as: SetResult.self)
        if conn.json { return printJSON(r) }
        print("\(r.channel): setpoint \(f(r.setpointMpa)) MPa" + (r.rampMpaPerS.map { ", ramp \($0) MPa/s" } ?? ", step"))
    }
}

struct Hold: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Freeze a channel's actuator where it is (stop regulating).")
    @OptionGroup var conn: Connection
    func run() throws {
        let c = try conn.connect()
        let r = call(c, "hold", ChannelParams(channel: try conn.requireChannel(c)), as: ModeResult.self)
        conn.json ? printJSON(r) : print("\(r.channel): \(r.mode)")
    }
}

struct Gap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hold a channel's stack thickness (constant-gap mode); the pressure is what the cell develops.",
        discussion: """
            Needs a thickness gauge (a thickness_um signal) to hold a given thickness; without THICKNESS it holds \
            the thickness measured now (or, with no gauge, the actuator where it is). Trips stay active; `set` \
            returns to pressure regulation without a bump. Example: pressctl gap -c A 812.5um
            """)
    @OptionGroup var conn: Connection
    @Argument(help: "Stack thickness to hold, with its unit: 812.5um, 812.5µm or 0.8125mm (default: as now).")
    var thickness: String?

    /// µm from "812.5um", "812.5µm", "0.8125mm".
    static func microns(_ text: String) throws -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in [("µm", 1.0), ("um", 1.0), ("mm", 1000.0)] where t.hasSuffix(suffix) {
            if let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v.isFinite, v > 0 { return v * scale }
        }
        throw ValidationError("'\(text)' is not a stack thickness: give a positive number with its unit, e.g. 812.5um, 812.5µm or 0.8125mm")
    }

    func validate() throws { if let t = thickness { _ = try Self.microns(t) } }

    func run() throws {
        let c = try conn.connect()
        let um = try thickness.map(Self.microns)
        let ch = try conn.requireChannel(c)
        let r = call(c, "gap", GapParams(channel: ch, thicknessUm: um), as: ModeResult.self)
        if conn.json { return printJSON(r) }
        let st = call(c, "status", OptionalChannelParams(channel: ch), as: StatusResult.self).channels.first
        print("\(r.channel): \(r.mode)" + (st?.gapTargetUm.map { ", holding the stack at \(String(format: "%.2f", $0)) µm" } ?? ", holding the actuator where it is (no thickness gauge)"))
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drive a channel's actuator to its safe (vented / backed-off) state.")
    @OptionGroup var conn: Connection
    func run() throws {
        let c = try conn.connect()
        let r = call(c, "release", ChannelParams(channel: try conn.requireChannel(c)), as: ModeResult.self)
        conn.json ? printJSON(r) : print("\(r.channel): \(r.mode)")
    }
}

struct Ack: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Acknowledge latched faults (all channels unless --channel).",
                                                    discussion: "Faults whose cause is still present stay latched. A tripped channel whose faults all clear goes to 'holding'; regulate again with 'set'.")
    @OptionGroup var conn: Connection
    func run() throws {
        let c = try conn.connect()
        let r = call(c, "ack", OptionalChannelParams(channel: conn.channel), as: AckResult.self)
        if conn.json { return printJSON(r) }
        for ch in r.channels {
            let cleared = ch.cleared.isEmpty ? "nothing to clear" : "cleared " + ch.cleared.joined(separator: ", ")
            let remaining = ch.remaining.isEmpty ? "" : "; still present: " + ch.remaining.joined(separator: ", ")
            print("\(ch.channel): \(cleared)\(remaining); mode \(ch.mode)")
        }
        if r.channels.contains(where: { !$0.remaining.isEmpty }) { throw Exit.refused }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show live pressure, setpoint and the ±5 % band (Ctrl-C to stop).",
        discussion: """
        On a terminal, --plot draws a scrolling chart of one channel (pressure ●, setpoint ─, band ┄). \
        When pressd goes away (a restart, a reboot), --reconnect waits for it, says so, and goes on watching; it is \
        the default when the output is not a terminal (a log file, nohup), from the first connection on. \
        --no-reconnect ends with exit status 3 instead.
        """)
    @Option(name: .long, help: "Updates per second.") var rate: Double = 5
    @Option(name: .long, help: "Stop after this many updates (default: run until interrupted).") var count: Int?
    @Flag(name: .long, help: "Draw a live chart of the channel (needs --channel when there are several).") var plot = false
    @Option(name: .long, help: "Chart size, columns x rows (default: the terminal's).") var size: String?
    @Option(name: .long, help: "Time span the chart shows: 90s, 10m, 2h (default 2m).") var window: String = "2m"
    @Flag(inversion: .prefixedNo, help: "When pressd goes away, wait for it and go on (also at start). Default: on when the output is not a terminal, after the first connection.")
    var reconnect: Bool?
    @OptionGroup var conn: Connection

    func validate() throws {
        guard let s = Watch.seconds(window), s > 0 else { throw ValidationError("--window '\(window)' is not a duration: write e.g. 90s, 10m or 2h") }
        if let size {
            let parts = size.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, (20...1000).contains(parts[0]), (8...500).contains(parts[1]) else {
                throw ValidationError("--size '\(size)' must be COLSxROWS with 20…1000 columns and 8…500 rows, e.g. 100x30")
            }
        }
    }

    /// `90s`, `10m`, `2h`, `1d` (see `parseDuration`) or plain seconds.
    static func seconds(_ text: String) -> Double? { parseDuration(text) ?? Double(text) }

    func run() throws {
        // A live chart needs a terminal. Piped, plain lines — or, with an explicit
        // --size, one chart after another without screen-clearing codes.
        let terminal = isatty(STDOUT_FILENO) == 1
        let reconnecting = reconnect ?? !terminal
        let clock = DateFormatter()
        clock.dateFormat = "HH:mm:ss.SS"
        // Notes about the connection: on standard output between plain lines (a log of
        // the watch shows the gap), on standard error beside JSON or a chart.
        let note = { (text: String) in
            if conn.json || self.plot { FileHandle.standardError.write(Data("pressctl: \(text)\n".utf8)) }
            else { print("\(clock.string(from: Date()))  \(text)"); fflush(nil) }
        }
        var c = reconnect == true ? try Watch.waitForDaemon(conn, since: nil, note: note) : try conn.connect()
        let plot = self.plot && (terminal || size != nil)
        if self.plot && !plot { FileHandle.standardError.write(Data("pressctl: standard output is not a terminal: plain lines instead of --plot (give --size to print charts)\n".utf8)) }
        let span = Watch.seconds(window) ?? 120
        let plotChannel = plot ? try conn.requireChannel(c) : nil
        let channels = (plotChannel ?? conn.channel).map { [$0] }
        let subscribe = { (c: ControlClient) in
            _ = call(c, "subscribe", SubscribeParams(channels: channels, rateHz: rate), as: SubscribeResult.self)
            c.setTimeout(max(5, 3 / rate))
        }
        subscribe(c)
        var n = 0
        var history: [TracePoint] = []
        let (cols, rows) = terminalSize()
        while count.map({ n < $0 }) ?? true {
            let e: SampleEvent
            do { e = try c.nextEvent() } catch {
                // A remote error (an unknown channel…) or a protocol error ends the watch;
                // a lost connection is waited out when reconnecting.
                guard reconnecting, Watch.isConnectionLoss(error) else { fail(error) }
                note("connection to pressd lost (\(error)); waiting for pressd to come back (Ctrl-C to stop)")
                c = try Watch.waitForDaemon(conn, since: Date(), note: note)
                subscribe(c)
                history.removeAll() // the daemon's loop time starts again at 0
                continue
            }
            n += 1
            if conn.json {
                // JSON lines: one envelope per update.
                print(JSONOutput.ok(e, pretty: false))
                fflush(nil)
                continue
            }
            if plot, let ch = e.channels.first {
                history.append(TracePoint(time: ch.timeS, pressure: ch.pressureMpa, setpoint: ch.setpointInForce ?? ch.setpointMpa, mode: ch.mode))
                // The window's span, at most 20 000 points (a 10 min window at 5 Hz is 3 000).
                if let cut = history.firstIndex(where: { $0.time >= ch.timeS - span }), cut > 0 { history.removeFirst(cut) }
                if history.count > 20_000 { history.removeFirst(history.count - 20_000) }
                let title = "\(ch.name) \(ch.mode)  \(f(ch.pressureMpa)) / \(f(ch.setpointInForce ?? ch.setpointMpa)) MPa"
                    + (ch.rampTarget.map { "  ramping to \(f($0)) MPa" } ?? (ch.inBand ? "  in band" : "  OUT OF BAND"))
                    + (ch.faults.isEmpty ? "" : "  FAULT " + ch.faults.map(\.code).joined(separator: ","))
                let lines = TerminalPlot.render(history, width: cols, height: rows - 1, title: title, window: span)
                print((terminal ? "\u{1B}[H\u{1B}[2J" : "\n") + lines.joined(separator: "\n"))
                fflush(nil)
                continue
            }
            let parts = e.channels.map { ch -> String in
                let p = f(ch.pressureMpa)
                // The setpoint in force; while ramping, the working one and the target.
                let sp = (ch.setpointInForce ?? ch.setpointMpa).map { f($0) } ?? "—"
                let band = ch.rampTarget != nil ? ch.rampArrow : ch.setpointMpa == nil ? " " : (ch.inBand ? "✓" : "✗")
                if let target = ch.rampTarget {
                    return "\(ch.name) \(pad(ch.mode, 10)) \(p)/\(sp) MPa → \(f(target)) \(band) \(bar(ch))" + (ch.faults.isEmpty ? "" : " FAULT:" + ch.faults.map(\.code).joined(separator: ","))
                }
                let flt = ch.faults.isEmpty ? "" : " FAULT:" + ch.faults.map(\.code).joined(separator: ",")
                return "\(ch.name) \(pad(ch.mode, 10)) \(p)/\(sp) MPa \(band) \(bar(ch))\(flt)"
            }
            let t = clock.string(from: Date())
            print("\(t)  " + parts.joined(separator: "   ") + (e.dropped > 0 ? "  (\(e.dropped) dropped)" : ""))
            fflush(nil)
        }
    }

    /// True for errors that mean pressd went away (or is not there yet), not that it
    /// refused something.
    static func isConnectionLoss(_ error: ClientError) -> Bool {
        switch error {
        case .notRunning, .io, .unreachable, .onRig: return true
        case .permissionDenied, .untrustedDirectory, .pathTooLong, .protocolViolation, .remote: return false
        }
    }

    /// Connects, retrying every 0.5…5 s while pressd is not there, with a note when it
    /// starts waiting (at start; a lost connection has its own), once a minute while it
    /// waits, and when pressd is back. Any other error ends pressctl as usual.
    static func waitForDaemon(_ conn: Connection, since: Date?, note: (String) -> Void) throws -> ControlClient {
        let start = since ?? Date()
        var delay = 0.5, lastNote = Date(), noted = since != nil
        while true {
            do {
                let c = try conn.open()
                if noted { note("pressd is back after \(humanDuration(Date().timeIntervalSince(start))); watching again") }
                return c
            } catch let e as ClientError {
                guard isConnectionLoss(e) else { fail(e) }
                if !noted { note("pressd is not reachable (\(e)); waiting for pressd (Ctrl-C to stop)"); noted = true; lastNote = Date() }
                else if Date().timeIntervalSince(lastNote) >= 60 {
                    note("still waiting for pressd (\(humanDuration(Date().timeIntervalSince(start))))"); lastNote = Date()
                }
            }
            Thread.sleep(forTimeInterval: delay)
            delay = min(5, delay * 2)
        }
    }

    /// Columns and rows: --size, else the terminal's (TIOCGWINSZ), else 100x30.
    func terminalSize() -> (Int, Int) {
        if let size, let x = size.firstIndex(of: "x"), let w = Int(size[..<x]), let h = Int(size[size.index(after: x)...]) { return (w, h) }
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 20, ws.ws_row > 8 { return (Int(ws.ws_col), Int(ws.ws_row)) }
        return (100, 30)
    }

    /// A 21-character bar: the ±5 % band around the setpoint in force, '|' at it and
    /// '*' at the pressure (clamped to ±10 %).
    func bar(_ ch: ChannelStatus) -> String {
        guard let sp = ch.setpointInForce ?? ch.setpointMpa, sp > 0, let p = ch.pressureMpa else { return "" }
        var cells = Array(repeating: Character("·"), count: 21)
        for i in 5...15 { cells[i] = "-" }
        cells[10] = "|"
        let x = Int(((p - sp) / sp / 0.01).rounded()) + 10
        cells[min(max(x, 0), 20)] = "*"
        return "[" + String(cells) + "]"
    }
}

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tare and span a channel's load cells (admin); stored per load cell, applied to every reading.",
        discussion: """
        tare: with no load on the cell, zero every load cell at its mean over the last second.
        span --known 500N: with a known load on the cell (a reference load cell, dead weights), scale the gains so the \
        tared readings add up to it (--cell N: one load cell only). show: the stored calibration.
        """,
        subcommands: [Tare.self, Span.self, Show.self])

    static func show(_ r: CalibrateResult, json: Bool) {
        if json { return printJSON(r) }
        if r.cells.isEmpty { return print("\(r.channel): not calibrated (raw readings)") }
        for (i, c) in r.cells.enumerated() { print("\(r.channel) load cell \(i): offset \(f(c.offsetN, 2)) N, gain \(f(c.gain, 5))") }
    }

    struct Tare: ParsableCommand {
        @OptionGroup var conn: Connection
        func run() throws {
            let c = try conn.connect()
            Calibrate.show(call(c, "calibrate", CalibrateParams(channel: try conn.requireChannel(c), action: .tare), as: CalibrateResult.self), json: conn.json)
        }
    }

    struct Span: ParsableCommand {
        @Option(help: "The known load now on the cell: 500N, 1.2kN, or a pressure (5MPa) through the cell area.", completion: Completions.quantity) var known: String
        @Option(help: "Span only this load cell (0-based).") var cell: Int?
        @OptionGroup var conn: Connection
        func validate() throws {
            do { _ = try Quantity(parsing: known) } catch { throw ValidationError("\(error)") }
        }
        func run() throws {
            let q = try Quantity(parsing: known)
            let c = try conn.connect()
            let p = CalibrateParams(channel: try conn.requireChannel(c), action: .span, value: q.value, unit: q.unit.rawValue, cell: cell)
            Calibrate.show(call(c, "calibrate", p, as: CalibrateResult.self), json: conn.json)
        }
    }

    struct Show: ParsableCommand {
        @OptionGroup var conn: Connection
        func run() throws {
            let c = try conn.connect()
            Calibrate.show(call(c, "calibrate", CalibrateParams(channel: try conn.requireChannel(c), action: .show), as: CalibrateResult.self), json: conn.json)
        }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reload pressd's configuration file (admin).",
        discussion: "Validated first: on an error the running configuration stays and the error names file, line and key. Same as SIGHUP.")
    @OptionGroup var conn: Connection
    func run() throws {
        let c = try conn.connect()
        let r = call(c, "reload", NoParams(), as: ReloadResult.self)
        conn.json ? printJSON(r) : print(r.message)
    }
}

struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inject a disturbance into the simulated rig (simulator backend only).",
        discussion: "For training and tests: e.g. 'pressctl sim --channel A --thickness-step-um 40' swells the cell by 40 µm at once.")
    // `.unconditional`: a negative value (`--force-bias -20`) is a value, not an option.
    @Option(name: .long, parsing: .unconditional, help: "Add this bias to the load-cell reading: 20N, 1.6kN, or a bare number in N.") var forceBias: String?
    @Option(name: .long, help: "Load-cell sensitivity error: reading = force × gain + bias.") var forceGain: Double?
    @Option(name: .long, help: "Disconnect (true) or reconnect (false) the load cell.") var sensorDisconnected: Bool?
    @Option(name: .long, parsing: .unconditional, help: "Ambient temperature, °C.") var ambient: Double?
    @Option(name: .long, help: "Pneumatic supply pressure: 0.6MPa, 6bar, or a bare number in MPa.") var supply: String?
    @Option(name: .long, parsing: .unconditional, help: "Cycler current, mA.") var current: Double?
    @Option(name: .long, help: "Cycler period (charge + discharge), s; 0 = constant current.") var cyclePeriod: Double?
    @Option(name: .long, parsing: .unconditional, help: "Sudden cell thickness change, µm.") var thicknessStepUm: Double?
    @Option(name: .long, help: "Block the next sensor read this many seconds (a hung device; stalls the loop).") var stall: Double?
    @Option(name: .long, help: "Drive the emergency-stop input (true = stop).") var emergencyStop: Bool?
    @Option(name: .long, help: "Drive the cycler's charging signal.") var charging: Bool?
    @Option(name: .long, help: "Force a soft short: a shunt of this many Ω across the cell.") var shortOhm: Double?
    @OptionGroup var conn: Connection

    func validate() throws {
        try validatePressureOption(supply, "--supply", forceAllowed: false)
        if let forceBias { _ = try forceOption(forceBias, "--force-bias", area: { 1 }) }
    }

    func run() throws {
        let c = try conn.connect()
        let ch = try conn.requireChannel(c)
        let bias = try forceBias.map { try forceOption($0, "--force-bias", area: { cellArea(c, ch) }) }
        let p = SimInjectParams(channel: ch, forceBiasN: bias, forceGain: forceGain, sensorDisconnected: sensorDisconnected,
                                ambientC: ambient, supplyMpa: try supply.map { try pressureOption($0, "--supply") }, currentMa: current,
                                cyclePeriodS: cyclePeriod, thicknessStepUm: thicknessStepUm,
                                stallS: stall, emergencyStop: emergencyStop, charging: charging, shortOhm: shortOhm)
        let r = call(c, "sim_inject", p, as: OkResult.self)
        if conn.json { return printJSON(r) }
        // What was done, with units: the request as the daemon took it.
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        let sent = (try? JSONSerialization.jsonObject(with: enc.encode(p))) as? [String: Any] ?? [:]
        let what = SimVocabulary.describe(sent)
        print("\(ch) (simulated rig): " + (what.isEmpty ? "nothing to change (give a disturbance, see --help)" : what))
    }
}

/// One line describing the controller: strategy, gains, what the adaptive and learned
/// parts know.
func controlLine(_ k: ControlInfo, unit: String) -> String {
    var parts = ["control \(k.strategy)" + (k.active != k.strategy ? " (now \(k.active))" : ""),
                 "setpoint by \(k.setpointOwner ?? "operator")",
                 "kp \(f(k.kp, 4)) ki \(f(k.ki, 4))"]
    if let a = k.autotune { parts.append("autotune: \(a.phase) \(a.cycles)/\(a.cyclesWanted)") }
    if let t = k.lastTune { parts.append("tuned (\(t.rule) at \(f(t.setpointMpa)) MPa)") }
    if let a = k.adaptive {
        parts.append("scale \(f(a.scale, 2))" + (a.estimatedGain.map { String(format: ", plant %.3g MPa/%@ (tuned %.3g) from %d moves", $0, unit, a.baseGain, a.updates) }
                                                 ?? ", plant not yet identified (needs settled setpoint moves)"))
        if let e = a.recentErrorPercent { parts.append("last move predicted within \(f(e, 0)) %") }
        if a.fallbacks > 0 { parts.append("\(a.fallbacks) fallbacks") }
        if let o = a.oscillations, o > 0 { parts.append("\(o) oscillations damped" + (a.raiseBlockedS.map { ", gains held \(humanDuration($0))" } ?? "")) }
    }
    if let l = k.learned {
        parts.append("learned: " + (l.active ? "feedforward on" : "off") + String(format: ", confidence %.2f, ff %.3g %@", l.confidence, l.feedforward, unit))
    }
    return parts.joined(separator: "  ")
}
