import ArgumentParser
import PressLog
import Foundation
import PressProtocol

/// `program status --json`: the programs of every channel, an object like every answer.
struct ProgramList: Encodable { var programs: [ProgramResult] }

struct Program: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run pressure programs: steps, ramps, holds, pulsed and sine pressure, waits on the cycler.",
        discussion: "The file format is in docs/programs.md.",
        subcommands: [Start.self, Pause.self, Resume.self, Stop.self, ProgramStatus.self])

    static func show(_ r: ProgramResult, json: Bool) {
        if json { return printJSON(r) }
        guard let p = r.program else { return print("\(r.channel): no program") }
        print("\(r.channel): \(safe(p.name)) \(p.state), step \(p.step)/\(p.steps) (\(p.stepType ?? "-")) for \(Int(p.stepElapsedS)) s, setpoint \(f(p.setpointMpa)) MPa")
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load a program file and start it on a channel.")
        @Argument(help: "Program file (TOML).", completion: .file(extensions: ["toml"])) var file: String
        @OptionGroup var conn: Connection
        func run() throws {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) }
            catch { throw ValidationError("cannot read \(file): \(error.localizedDescription)") }
            let c = try conn.connect()
            let r = call(c, "program_start", ProgramStartParams(channel: try conn.requireChannel(c), program: text, source: file), as: ProgramResult.self)
            Program.show(r, json: conn.json)
            if !conn.json, let p = r.program, let from = p.startedFromMpa {
                // What its first ramp begins at: a technician starting from a released
                // channel must not read a setpoint out of nowhere.
                if p.startedFrom == "setpoint" {
                    print("\(r.channel): starts from the setpoint \(f(from)) MPa")
                } else {
                    print("\(r.channel): starts from the measured pressure \(f(from)) MPa (\(r.channel) was \(p.startedInMode ?? "not regulating")): its first ramp begins there")
                }
            }
        }
    }

    /// pause / resume / stop: one channel, one method, the same answer.
    static func simple(_ method: String, _ conn: Connection) throws {
        let c = try conn.connect()
        let r = call(c, method, ChannelParams(channel: try conn.requireChannel(c)), as: ProgramResult.self)
        if method == "program_stop", !conn.json, r.program == nil {
            return print("\(r.channel): program stopped; the channel keeps regulating at the present setpoint")
        }
        Program.show(r, json: conn.json)
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause the program: the setpoint stays where it is, step time stops.")
        @OptionGroup var conn: Connection
        func run() throws { try Program.simple("program_pause", conn) }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused program.")
        @OptionGroup var conn: Connection
        func run() throws { try Program.simple("program_resume", conn) }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the program; the channel keeps regulating at the present setpoint.")
        @OptionGroup var conn: Connection
        func run() throws { try Program.simple("program_stop", conn) }
    }

    struct ProgramStatus: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the program of every channel (or --channel).")
        @OptionGroup var conn: Connection
        func run() throws {
            let c = try conn.connect()
            let list = call(c, "program_status", OptionalChannelParams(channel: conn.channel), as: [ProgramResult].self)
            if conn.json { return printJSON(ProgramList(programs: list)) }
            list.forEach { Program.show($0, json: false) }
        }
    }
}

/// Parses a time for `log export`: ISO 8601 (`2026-11-25T08:00:00Z`), unix seconds,
/// `now`, or a time ago (`2h`, `30m`, `1d`, `90s`; a leading `-` is allowed).
/// A duration with its unit: `90s`, `10m`, `2h`, `1d`; nil otherwise.
func parseDuration(_ text: String) -> Double? {
    guard let unit = text.last, let scale = ["s": 1.0, "m": 60, "h": 3600, "d": 86_400][unit],
          let n = Double(text.dropLast()), n.isFinite, n >= 0 else { return nil }
    return n * scale
}

func parseTime(_ text: String, now: Date = Date()) throws -> Double {
    if text == "now" { return now.timeIntervalSince1970 }
    if let v = Double(text), v.isFinite { return v }
    if let ago = parseDuration(text.hasPrefix("-") ? String(text.dropFirst()) : text) { return now.timeIntervalSince1970 - ago }
    let iso = ISO8601DateFormatter()
    for opts: ISO8601DateFormatter.Options in [[.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate]] {
        iso.formatOptions = opts
        if let d = iso.date(from: text) { return d.timeIntervalSince1970 }
    }
    throw ValidationError("cannot read time '\(text)': use ISO 8601 (2026-11-25T08:00:00Z), unix seconds, now, or a time ago: 2h, 30m, 1d")
}

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The run log.", subcommands: [Export.self, Events.self])

    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List logged events: setpoints, modes, faults, acknowledgements, program steps, requests (with uid).")
        @Option(help: "Start: ISO 8601, unix seconds, now, or a time ago (2h, 30m, 1d).") var since: String = "1h"
        @Option(help: "End (exclusive), same forms.") var until: String = "now"
        @Option(help: ArgumentHelp("Only events of this kind: \(EventKinds.all.joined(separator: ", ")).", valueName: "kind"), completion: Completions.eventKinds) var kind: String?
        @Option(help: ArgumentHelp("Read the run log in this state directory directly, without a daemon (read-only; safe beside a running pressd).", valueName: "dir"), completion: .directory)
        var stateDir: String?
        @OptionGroup var conn: Connection

        func validate() throws {
            if let kind, !EventKinds.all.contains(kind) {
                throw ValidationError("--kind '\(kind)' is not an event kind; the kinds are \(EventKinds.all.joined(separator: ", "))")
            }
        }

        func run() throws {
            var r: LogEventsResult
            if let stateDir {
                let all = try OfflineLog.open(stateDir).events(since: try parseTime(since), until: try parseTime(until), channel: conn.channel)
                r = LogEventsResult(events: all.prefix(10_000).map(LogEventInfo.init),
                                    truncated: all.count > 10_000)
            } else {
                let c = try conn.connect()
                r = call(c, "log_events", LogExportParams(since: try parseTime(since), until: try parseTime(until), channel: conn.channel), as: LogEventsResult.self)
            }
            if let kind { r.events = r.events.filter { $0.kind == kind } }
            if conn.json { return printJSON(r) }
            let iso = ISO8601DateFormatter()
            for e in r.events {
                let who = e.uid.map { " uid \($0)" + (e.pid.map { " pid \($0)" } ?? "") } ?? ""
                print("\(iso.string(from: Date(timeIntervalSince1970: e.timeUnix))) \(e.channel.isEmpty ? "-" : safe(e.channel)) \(e.kind)\(who): \(safe(e.detail))")
            }
            if r.truncated { FileHandle.standardError.write(Data("pressctl: more than 10 000 events; narrow --since/--until\n".utf8)) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export logged samples as CSV (one row per channel per log period, with min/max/mean).")
        @Option(help: "Start: ISO 8601, unix seconds, now, or a time ago (2h, 30m, 1d).") var since: String = "1h"
        @Option(help: "End (exclusive), same forms.") var until: String = "now"
        @Flag(help: "CSV output (the only format today; accepted for clarity).") var csv = false
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output.", completion: .file(extensions: ["csv"])) var output: String?
        @Option(help: ArgumentHelp("Read the run log in this state directory directly, without a daemon (read-only; safe beside a running pressd).", valueName: "dir"), completion: .directory)
        var stateDir: String?
        @OptionGroup var conn: Connection

        func validate() throws {
            if conn.json { throw ValidationError("log export writes CSV only; --json is not supported here (use 'pressctl log events --json' for events)") }
        }

        func run() throws {
            let s = try parseTime(since), u = try parseTime(until)
            if stateDir != nil, !(u > s) { throw ValidationError("--until must be after --since") }
            let offline = try stateDir.map(OfflineLog.open)
            let c = offline == nil ? try conn.connect() : nil
            var sink: FileHandle = .standardOutput
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: nil), let h = FileHandle(forWritingAtPath: output) else {
                    throw ValidationError("cannot write \(output)")
                }
                sink = h
            }
            let rows = try offline.map { try OfflineLog.exportCSV($0, since: s, until: u, channel: conn.channel) { sink.write(Data($0.utf8)) } }
                ?? exportCSV(c!, since: s, until: u, channel: conn.channel) { sink.write(Data($0.utf8)) }
            if let output { FileHandle.standardError.write(Data("\(rows) rows written to \(output)\n".utf8)) }
        }
    }
}

/// Streams `log_export` and hands each CSV chunk to `sink`. Returns the row count.
func exportCSV(_ c: ControlClient, since: Double, until: Double, channel: String?, sink: (String) -> Void) -> Int {
    c.setTimeout(60)
    do {
        let data = try ControlProtocol.encoder().encode(Request(id: .int(1), method: "log_export", params: LogExportParams(since: since, until: until, channel: channel)))
        try c.send(raw: Array(data) + [UInt8(ascii: "\n")])
        while true {
            let line = try c.readLine()
            if let chunk = try? ControlProtocol.decoder().decode(LogChunkEvent.self, from: line), chunk.event == "log_chunk" {
                sink(chunk.csv)
                continue
            }
            let reply = try ControlProtocol.decoder().decode(Reply<LogExportResult>.self, from: line)
            if let e = reply.error { fail(.remote(e)) }
            return reply.result?.rows ?? 0
        }
    } catch let e as ClientError { fail(e) } catch { fail(.protocolViolation("\(error)")) }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run metadata of a channel: cell id, chemistry, note, preparation pressure.",
        subcommands: [RunSet.self, RunShow.self])

    struct RunSet: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Record the cell under test: the fields given are set, the others kept.",
            discussion: "Clearing is explicit: --clear FIELD (repeatable). Every change is in the run log (kind run) with who made it and the previous value.")
        @Option(help: "Cell identifier.") var cellId: String?
        @Option(help: "Electrolyte family or full chemistry, e.g. sulfide / Li|Li6PS5Cl|NMC811.") var chemistry: String?
        @Option(help: "Free-text operator note.") var note: String?
        @Option(help: "Preparation (fabrication) pressure, not the stack pressure: 375MPa, 3750bar, or a bare number in MPa.") var preparationPressure: String?
        @Option(help: ArgumentHelp("A preparation step, repeatable: COMPONENT,PRESSURE[,HOLD_S[,TEMP_C]] (the pressure with a unit, or a bare number in MPa), e.g. \"Li6PS5Cl separator,375MPa,300,25\".",
                                   valueName: "step"))
        var preparation: [String] = []
        @Option(help: ArgumentHelp("Clear a field, repeatable: \(Self.clearable.map(\.option).joined(separator: ", ")).", valueName: "field"))
        var clear: [String] = []
        @OptionGroup var conn: Connection

        /// The fields --clear accepts: the option's name and the wire name.
        static let clearable: [(option: String, wire: String)] = [("cell-id", "cell_id"), ("chemistry", "chemistry"), ("note", "operator_note"),
                                                                  ("preparation-pressure", "preparation_pressure_mpa"), ("preparation", "preparation")]

        /// Parses COMPONENT,PRESSURE[,HOLD_S[,TEMP_C]] (the component may itself hold commas: numbers are read from the
        /// right; the pressure, the first of them, may carry a unit).
        static func step(_ text: String) throws -> PreparationStepInfo {
            var parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            var numbers: [Double] = []
            while parts.count > 1, numbers.count < 3, let v = Double(parts.last!) { numbers.insert(v, at: 0); parts.removeLast() }
            // The pressure with its unit (375MPa): the field before the plain numbers.
            if parts.count > 1, numbers.count < 3, let last = parts.last, last.first?.isNumber == true, Double(last) == nil {
                numbers.insert(try pressureOption(last, "--preparation '\(text)'"), at: 0)
                parts.removeLast()
            }
            let component = parts.joined(separator: ",")
            guard !component.isEmpty, let p = numbers.first, p > 0 else {
                throw ValidationError("--preparation '\(text)': expected COMPONENT,PRESSURE[,HOLD_S[,TEMP_C]], e.g. \"Li6PS5Cl separator,375MPa,300,25\"")
            }
            if numbers.count > 1, numbers[1] < 0 { throw ValidationError("--preparation '\(text)': the hold time must be ≥ 0 s") }
            return PreparationStepInfo(component: component, pressureMpa: p, holdS: numbers.count > 1 ? numbers[1] : nil, temperatureC: numbers.count > 2 ? numbers[2] : nil)
        }

        func validate() throws {
            _ = try preparation.map(Self.step)
            try validatePressureOption(preparationPressure, "--preparation-pressure", forceAllowed: false)
            let given: Set<String> = Set([cellId.map { _ in "cell-id" }, chemistry.map { _ in "chemistry" }, note.map { _ in "note" },
                                          preparationPressure.map { _ in "preparation-pressure" }, preparation.isEmpty ? nil : "preparation"].compactMap { $0 })
            for f in clear {
                guard Self.clearable.contains(where: { $0.option == f }) else {
                    throw ValidationError("--clear \(f): no such field (fields: \(Self.clearable.map(\.option).joined(separator: ", ")))")
                }
                if given.contains(f) { throw ValidationError("--clear \(f) and --\(f) together: set the field or clear it") }
            }
            if given.isEmpty && clear.isEmpty {
                throw ValidationError("nothing to record: give --cell-id, --chemistry, --note, --preparation-pressure or --preparation, or --clear FIELD")
            }
        }

        func run() throws {
            let c = try conn.connect()
            let pressure = try preparationPressure.map { try pressureOption($0, "--preparation-pressure") }
            var m = RunMetadataInfo(cellId: cellId, chemistry: chemistry, operatorNote: note, preparationPressureMpa: pressure)
            let steps = try preparation.map(Self.step)
            m.preparation = steps.isEmpty ? nil : steps
            let wire = clear.compactMap { f in Self.clearable.first { $0.option == f }?.wire }
            let r = call(c, "run_set", RunSetParams(channel: try conn.requireChannel(c), metadata: m, clear: wire.isEmpty ? nil : wire), as: RunResult.self)
            conn.json ? printJSON(r) : print("\(r.channel): recorded")
        }
    }

    struct RunShow: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a channel's run metadata.")
        @OptionGroup var conn: Connection
        func run() throws {
            let c = try conn.connect()
            let r = call(c, "run_get", ChannelParams(channel: try conn.requireChannel(c)), as: RunResult.self)
            if conn.json { return printJSON(r) }
            let m = r.metadata
            print("\(r.channel): cell \(safe(m.cellId ?? "—")), chemistry \(safe(m.chemistry ?? "—")), preparation pressure \(m.preparationPressureMpa.map { "\($0) MPa" } ?? "—")")
            if let n = m.operatorNote { print("  note: \(safe(n))") }
            for p in m.preparation ?? [] {
                print("  preparation: \(safe(p.component)) at \(p.pressureMpa) MPa" + (p.holdS.map { " for \($0) s" } ?? "") + (p.temperatureC.map { " at \($0) °C" } ?? ""))
            }
        }
    }
}

/// Reading a state directory's run log without a daemon (`--state-dir`), the way
/// `journalctl -D` reads a journal directory.
enum OfflineLog {
    static func open(_ dir: String) throws -> RunLog {
        do { return try RunLog(readingOnly: (dir as NSString).appendingPathComponent("runlog.sqlite")) }
        catch { throw ValidationError("--state-dir: \(error)") }
    }

    /// The same CSV as `log_export`, a day at a time so that weeks of samples never sit
    /// in memory at once. Returns the row count.
    static func exportCSV(_ log: RunLog, since: Double, until: Double, channel: String?, sink: (String) -> Void) throws -> Int {
        sink(RunLog.csvHeader + "\n")
        var rows = 0
        var t = since
        while t < until {
            let end = min(until, t + 86_400)
            let chunk = try log.samples(since: t, until: end, channel: channel)
            if !chunk.isEmpty { sink(chunk.map { RunLog.csvLine($0) + "\n" }.joined()) }
            rows += chunk.count
            t = end
        }
        return rows
    }
}
