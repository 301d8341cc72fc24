import Foundation
import Testing

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
