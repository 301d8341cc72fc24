import Foundation
import Testing
import PressProtocol

/// Issue 27: what a technician sees in pressctl's answers, each found by trying the
/// product as a technician would.
@Suite("What a technician sees", .serialized)
struct TechnicianViewTests {
    /// pressctl against `d`.
    static func ctl(_ d: DaemonProcess, _ args: [String]) throws -> Run {
        try runProcess(binDir + "/pressctl", args + ["--socket", d.socket])
    }

    /// The fields of channel `ch`'s row of the status table.
    static func row(_ table: String, _ ch: String) -> [String] {
        table.split(separator: "\n").first { $0.hasPrefix(ch + "   ") }.map { $0.split(separator: " ").map(String.init) } ?? []
    }

    @Test("status and watch during a ramp: the working setpoint in force and the error against it, the target named")
    func rampShowsWorkingSetpoint() throws {
        let d = try DaemonProcess(timeScale: 1)
        defer { d.cleanup() }
        _ = try d.client()
        // From 0 to 8 MPa at 0.5 MPa/s: 16 s of ramp.
        #expect(try Self.ctl(d, ["set", "8MPa", "-c", "A", "--ramp", "0.5"]).status == 0)
        usleep(3_000_000)
        let st = try Self.ctl(d, ["status", "-c", "A"])
        #expect(st.status == 0, "\(st.stderr)")
        let f = Self.row(st.stdout, "A")
        // CH MODE SETPOINT PRESSURE ERROR …
        #expect(f.count > 4 && f[1] == "regulating", "\(st.stdout)")
        let setpoint = Double(f.count > 2 ? f[2].filter { "0123456789.-".contains($0) } : "") ?? .nan
        let error = Double(f.count > 4 ? f[4].replacingOccurrences(of: "%", with: "") : "") ?? .nan
        #expect(setpoint > 0.5 && setpoint < 6, "the working setpoint (about 1.5 MPa after 3 s), not the target 8: \(st.stdout)")
        #expect(abs(error) < 25, "the error against the working setpoint, not against 8 MPa: \(st.stdout)")
        #expect(st.stdout.contains("ramping to 8.000 MPa"), "the target is named: \(st.stdout)")
        let w = try Self.ctl(d, ["watch", "-c", "A", "--count", "1"])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(w.stdout.contains("→ 8.000") && !w.stdout.contains("/8.000 MPa"), "watch: the working setpoint, then the target: \(w.stdout)")
    }

    @Test("program start on a released channel says what it starts from: the measured pressure, never below zero")
    func programStartFromReleased() throws {
        let d = try DaemonProcess(timeScale: 1)
        defer { d.cleanup() }
        _ = try d.client()
        let r = try Self.ctl(d, ["program", "start", repoRoot + "/config/programs/pulsed.toml", "-c", "B"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("starts from the measured pressure 0.0") && r.stdout.contains(" MPa (B was released)"), "\(r.stdout)")
        #expect(!r.stdout.contains("-0.0"), "a released sensor's noise is not a negative setpoint: \(r.stdout)")
        let j = try Self.ctl(d, ["program", "status", "-c", "B", "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        let p = ((obj?["ok"] as? [String: Any])?["programs"] as? [[String: Any]])?.first?["program"] as? [String: Any]
        #expect(p?["started_from"] as? String == "measured_pressure" && p?["started_in_mode"] as? String == "released"
                && (0..<0.05).contains(p?["started_from_mpa"] as? Double ?? -1), "\(j.stdout)")
        // From a regulating channel: its setpoint.
        #expect(try Self.ctl(d, ["set", "5MPa", "-c", "A"]).status == 0)
        let a = try Self.ctl(d, ["program", "start", repoRoot + "/config/programs/pulsed.toml", "-c", "A"])
        #expect(a.stdout.contains("starts from the setpoint 5.000 MPa"), "\(a.stdout)")
    }
}

extension TechnicianViewTests {
    @Test("units: sweep, tune, sim and run set take pressures with units as set does; µm printed; sim answers with what it did; refusals carry units")
    func unitsEverywhere() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        #expect(try Self.ctl(d, ["set", "8MPa", "-c", "A"]).status == 0)
        usleep(2_000_000)
        // The sweep's levels with units (80 bar = 8 MPa), as `set` takes them.
        let s = try Self.ctl(d, ["sweep", "-c", "A", "--from", "80bar", "--to", "1MPa", "--steps", "6", "--dwell", "5", "--no-wait"])
        #expect(s.status == 0, "\(s.stdout)\(s.stderr)")
        let sweep = try c.channel("A").control?.sweep
        #expect(sweep?.setpointMpa == 8 && sweep?.levels == 6, "\(String(describing: sweep))")
        #expect(try Self.ctl(d, ["sweep", "-c", "A", "--cancel"]).status == 0)
        // Refusals name the option and carry units.
        let over = try Self.ctl(d, ["sweep", "-c", "A", "--from", "13MPa", "--to", "1MPa", "--no-wait"])
        #expect(over.status == 1 && over.stderr.contains("12.0 MPa") && over.stderr.contains("13.0 MPa"), "\(over.stderr)")
        let force = try Self.ctl(d, ["run", "set", "-c", "A", "--preparation-pressure", "500N"])
        #expect(force.status == 64 && force.stderr.contains("--preparation-pressure") && force.stderr.contains("a pressure"), "\(force.stderr)")
        // run set: preparation pressures with units.
        #expect(try Self.ctl(d, ["run", "set", "-c", "A", "--preparation-pressure", "3750bar", "--preparation", "Li6PS5Cl separator,375MPa,300,25"]).status == 0)
        let run = try c.call("run_get", ChannelParams(channel: "A"), as: RunResult.self).metadata
        #expect(run.preparationPressureMpa == 375 && run.preparation?.first?.pressureMpa == 375, "\(run)")
        // sim: a force bias with its unit, an air supply in bar; the answer says what was done.
        let sim = try Self.ctl(d, ["sim", "-c", "B", "--force-bias", "0.2kN", "--supply", "6bar"])
        #expect(sim.status == 0, "\(sim.stderr)")
        #expect(sim.stdout.contains("load-cell force bias 200 N") && sim.stdout.contains("air supply 0.6 MPa") && sim.stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "ok",
                "\(sim.stdout)")
        let step = try Self.ctl(d, ["sim", "-c", "A", "--thickness-step-um", "40"])
        #expect(step.stdout.contains("cell thickness step 40 µm"), "\(step.stdout)")
        // µm, never um, in what pressctl prints.
        let st = try Self.ctl(d, ["status"])
        #expect(st.stdout.contains(" µm") && !st.stdout.contains(" um ") && !st.stdout.contains("MPa/um"), "\(st.stdout)")
    }
}

/// A pressctl running in the background, its standard output in a file.
final class BackgroundPressctl: @unchecked Sendable {
    let process = Process()
    let out: String
    init(_ args: [String], dir: String, name: String) throws {
        out = dir + "/" + name + ".out"
        FileManager.default.createFile(atPath: out, contents: nil)
        process.executableURL = URL(fileURLWithPath: binDir + "/pressctl")
        process.arguments = args
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = process.standardOutput
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }
    var text: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
    /// Lines that are updates (a channel's mode in them).
    var updates: Int { text.split(separator: "\n").filter { $0.contains(" released ") || $0.contains(" regulating ") }.count }
    /// Waits for the process to end, at most `seconds`; kills it when it does not.
    func wait(_ seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { usleep(100_000) }
        if process.isRunning { process.terminate(); process.waitUntilExit(); return false }
        return true
    }
}

extension TechnicianViewTests {
    @Test("watch survives a restart of pressd: --reconnect (and by default when its output is not a terminal) waits for it, says so and goes on; --no-reconnect ends with exit 3")
    func watchReconnects() throws {
        let first = try DaemonProcess(timeScale: 1)
        defer { first.cleanup() }
        _ = try first.client()
        let common = ["watch", "--rate", "10", "--count", "30", "--socket", first.socket]
        let explicit = try BackgroundPressctl(common + ["--reconnect"], dir: first.dir, name: "explicit")
        let piped = try BackgroundPressctl(common, dir: first.dir, name: "piped")
        let once = try BackgroundPressctl(common + ["--no-reconnect"], dir: first.dir, name: "once")
        defer { for p in [explicit, piped, once] where p.process.isRunning { p.process.terminate() } }
        var waited = 0
        while (explicit.updates < 3 || piped.updates < 3 || once.updates < 3) && waited < 100 { usleep(100_000); waited += 1 }
        #expect(explicit.updates >= 3 && piped.updates >= 3, "watching before the restart: \(explicit.text)")
        first.stop()
        usleep(2_000_000) // pressd is down for 2 s
        let second = try DaemonProcess(dir: first.dir, timeScale: 1)
        defer { second.stop() }
        #expect(explicit.wait(60) && piped.wait(60), "watch went on after the restart: \(explicit.text)\n---\n\(piped.text)")
        for p in [explicit, piped] {
            #expect(p.process.terminationStatus == 0, "\(p.text)")
            #expect(p.updates == 30, "every update counted across the restart: \(p.updates)\n\(p.text)")
            let lines = p.text.split(separator: "\n").map(String.init)
            let lost = lines.firstIndex { $0.contains("waiting for pressd") }, back = lines.firstIndex { $0.contains("pressd is back") }
            #expect(lost != nil && back != nil && lost! < back!, "it says it waits, then that pressd is back: \(p.text)")
            if let back { #expect(lines[back...].contains { $0.contains(" released ") }, "updates after the restart") }
        }
        #expect(once.wait(10) && once.process.terminationStatus == 3 && once.text.contains("connection closed"), "--no-reconnect: \(once.text)")
    }
}

extension TechnicianViewTests {
    @Test("a sweep on a channel fed by pushes starts before the first result, says how it waits, and finishes on pushed measurements")
    func pushFedSweep() throws {
        // B's simulated analyser delivers its first result after 100 000 s: until then
        // its resistance comes only from pushes.
        let d = try DaemonProcess(configEdits: [("[channels.B.sim]\n", "[channels.B.sim]\nimpedance_interval_s = 100000\n")], timeScale: 10)
        defer { d.cleanup() }
        let c = try d.client()
        #expect(try Self.ctl(d, ["set", "6MPa", "-c", "B"]).status == 0)
        usleep(1_500_000)
        #expect(try c.channel("B").interfacialResistanceOhmCm2 == nil, "no resistance before the first push")
        let s = try Self.ctl(d, ["sweep", "-c", "B", "--from", "6MPa", "--to", "2MPa", "--steps", "6", "--dwell", "10", "--min-measurements", "1", "--no-wait"])
        #expect(s.status == 0, "\(s.stdout)\(s.stderr)")
        #expect(s.stdout.contains("no interfacial-resistance measurement yet") && s.stdout.contains("pressctl push"), "\(s.stdout)")
        // The analyser's software pushes a result every 2 s of plant time.
        var result: SweepInfo?
        let end = Date().addingTimeInterval(60)
        while result == nil && Date() < end {
            _ = try c.call("push_signals", PushSignalsParams(channel: "B", interfacialResistanceOhmCm2: 40), as: ActionResult.self)
            usleep(200_000)
            let ctl = try c.channel("B").control
            if ctl?.sweep == nil { result = ctl?.lastSweep }
        }
        let r = try #require(result, "the sweep did not end within 60 s")
        #expect(r.status == "done" && r.points.count == 6, "\(r.status): \(r.note ?? "")")
        #expect(r.points.allSatisfy { $0.resistanceOhmCm2 == 40 }, "the pushed values")
    }
}

extension TechnicianViewTests {
    @Test("pressd faster than real time on a debug build says at start that its loop may overrun, and what to use instead")
    func debugBuildWarning() throws {
        let d = try DaemonProcess(timeScale: 10)
        defer { d.cleanup() }
        _ = try d.client()
        usleep(300_000)
        d.stop()
        let log = d.log
        #if DEBUG
        #expect(log.contains("debug build") && log.contains("overrun") && log.contains("PRESSD_BUILD=release scripts/start"), "\(log)")
        #else
        #expect(!log.contains("debug build"), "\(log)")
        #endif
    }
}
