import Foundation
import Testing
import PressLog

/// The scripts in scripts/ that read pressctl's JSON, run on real answers: each has a mode
/// that does only its parsing (issue 27: rtu-check and acceptance-hold still read
/// `status --json` without the `{"ok": …}` envelope and failed with KeyError).
enum ScriptJSON {
    /// The scripts that read pressctl's JSON, and how to run their parsing alone.
    static let readers: [(script: String, args: [String])] = [
        ("rtu-check", ["--verdict"]), ("acceptance-hold", ["--poll-line", "B"]), ("bench-modbus-cost", ["--parse-status"])]

    /// Runs `scripts/NAME args` with `input` on standard input.
    static func run(_ name: String, _ args: [String], input: String) throws -> Run {
        try runProcess(repoRoot + "/scripts/" + name, args, input: input)
    }

    /// Every reader's parsing on `status`, the `pressctl status --json` answer of a daemon
    /// regulating channel B at 5 MPa on a Modbus device.
    static func check(status: String) throws {
        let rtu = try run("rtu-check", ["--verdict"], input: status)
        #expect(rtu.status == 0 && rtu.stdout.contains("connected=True") && rtu.stdout.contains("; B regulating "), "rtu-check: \(rtu.stdout)\(rtu.stderr)")
        let poll = try run("acceptance-hold", ["--poll-line", "B"], input: status)
        let f = poll.stdout.split(separator: " ")
        #expect(poll.status == 0 && f.count == 2 && abs((Double(f[0]) ?? 0) - 5) <= 0.25 && f[1].hasPrefix("regulating"),
                "acceptance-hold: \(poll.stdout)\(poll.stderr)")
        let cost = try run("bench-modbus-cost", ["--parse-status"], input: status)
        let counters = try JSONSerialization.jsonObject(with: Data(cost.stdout.utf8)) as? [String: Any]
        #expect(cost.status == 0 && (counters?["reads"] as? Int ?? 0) > 0 && counters?["in_band"] as? Bool == true, "bench-modbus-cost: \(cost.stdout)\(cost.stderr)")
    }
}

@Suite("The scripts in scripts/")
struct ScriptsTests {
    @Test("every script in scripts/ that reads pressctl's JSON has its parsing run by the tests (ModbusTests.holdTCP/holdRTU on a real daemon)")
    func inventory() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: repoRoot + "/scripts")
        let tested = Set(ScriptJSON.readers.map(\.script))
        for n in names.sorted() {
            let text = try String(contentsOfFile: repoRoot + "/scripts/" + n, encoding: .utf8)
            let readsJSON = text.contains("pressctl") && (text.contains("--json") || text.contains("json.load"))
            #expect(!readsJSON || tested.contains(n), "scripts/\(n) reads pressctl's JSON but no test runs its parsing: give it a parse-only mode and add it to ScriptJSON.readers")
        }
    }

    @Test("a refusal in the envelope is reported by every reader with its code and message, not a KeyError")
    func refusals() throws {
        let refusal = #"{"error": {"code": "not_running", "message": "pressd is not running"}}"#
        for (script, args) in ScriptJSON.readers {
            let r = try ScriptJSON.run(script, args, input: refusal)
            #expect(r.status != 0 && r.stderr.contains("pressctl: not_running: pressd is not running") && !r.stderr.contains("KeyError"), "\(script): \(r.stderr)")
        }
    }
}

extension ScriptsTests {
    @Test("scripts/start builds release when asked to run faster than real time (unless PRESSD_BUILD says otherwise), debug otherwise")
    func startChoosesRelease() throws {
        func plan(_ args: [String], _ env: [String: String] = [:]) throws -> String {
            let r = try runProcess(repoRoot + "/scripts/start", args, env: env.merging(["PRESSD_START_DRY_RUN": "1"]) { $1 })
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.split(separator: ":").first.map(String.init) ?? ""
        }
        #expect(try plan([]) == "build debug")
        #expect(try plan(["--time-scale", "10"]) == "build release")
        #expect(try plan(["--time-scale=10"]) == "build release")
        #expect(try plan(["--time-scale", "1"]) == "build debug")
        #expect(try plan(["--time-scale", "10"], ["PRESSD_BUILD": "debug"]) == "build debug")
        let readme = try String(contentsOfFile: repoRoot + "/README.md", encoding: .utf8)
        let line = readme.split(separator: "\n").first { $0.contains("Faster than real time") }.map(String.init) ?? ""
        #expect(line.contains("release"), "the README's faster-than-real-time line says it wants a release build: \(line)")
    }
}

extension ScriptsTests {
    @Test("scripts/daemon-soak scores a real run-log export: a clean hold passes; a burst out of ±5 % after settling, or a trip, fails")
    func daemonSoakScoring() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-soakscore-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func export(_ burst: Bool) throws -> String {
            let log = try RunLog(path: dir + "/\(burst)/runlog.sqlite")
            var rows: [LogSample] = []
            for k in 0..<900 {
                for (ch, sp) in [("A", 5.0), ("B", 2.0)] {
                    // The first minute ramps (not scored); then a hold within ±3 %, and with
                    // `burst` three seconds of B swinging to 0.16…4.36 MPa, as in issue 22.
                    let swing = burst && ch == "B" && (600..<603).contains(k)
                    let lo = k < 60 ? 0.0 : (swing ? 0.16 : sp * 0.97), hi = swing ? 4.36 : sp * 1.03
                    rows.append(LogSample(time: 1_900_000_000 + Double(k), channel: ch, mode: "regulating", setpoint: sp, pressure: sp,
                                          pressureMin: lo, pressureMax: hi, pressureMean: sp, force: sp * 100, output: 1,
                                          temperature: 25, current: 0, resistance: nil, count: 100))
                }
            }
            try log.append(samples: rows, events: [])
            let out = dir + "/\(burst).csv"
            let r = try runProcess(binDir + "/pressctl", ["log", "export", "--state-dir", dir + "/\(burst)", "--since", "0", "--until", "4102444800"])
            #expect(r.status == 0, "\(r.stderr)")
            try r.stdout.write(toFile: out, atomically: true, encoding: .utf8)
            return out
        }
        let clean = try runProcess(repoRoot + "/scripts/daemon-soak", ["--score", try export(false)])
        #expect(clean.status == 0 && clean.stdout.contains("B: 0.2 h of plant time") && clean.stdout.contains("0 bursts"), "\(clean.stdout)\(clean.stderr)")
        let bad = try runProcess(repoRoot + "/scripts/daemon-soak", ["--score", try export(true)])
        #expect(bad.status == 1 && bad.stdout.contains("B:") && bad.stdout.contains("1 bursts, worst envelope 118.00 %"), "\(bad.stdout)\(bad.stderr)")
    }
}
