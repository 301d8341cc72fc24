import Foundation
import Testing
import PressProtocol

/// Found by a tester: every command had its own JSON shape (`status` an object,
/// `program status` a bare array, …), numbers carried floating-point noise such as
/// 0.0019999999999997797, and a script could not tell an answer from a refusal without
/// parsing standard error. Now every `--json` output is `{"ok": …}` or `{"error": …}`.
@Suite("pressctl --json: one envelope, numbers at their resolution", .serialized)
struct JSONEnvelopeTests {
    /// The decimals of `d` as printed by the encoder (0 for a whole number).
    static func decimals(_ text: String) -> Int {
        guard let dot = text.firstIndex(of: "."), !text.contains("e") else { return 0 }
        return text.distance(from: dot, to: text.endIndex) - 1
    }

    /// Every number in `json` (raw text) under a key ending in `suffix`, as printed.
    static func numbers(in json: String, keySuffix suffix: String) -> [String] {
        let re = try! NSRegularExpression(pattern: "\"([a-z0-9_]*\(suffix))\" ?: ?(-?[0-9][0-9.eE+-]*)")
        let ns = json as NSString
        return re.matches(in: json, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 2)) }
    }

    @Test("status, set, hold, ack, program status, log events, calibrate show, watch and a refusal: each answer is an object under ok or error, and MPa carry at most 4 decimals")
    func everyCommand() throws {
        let d = try DaemonProcess(timeScale: 10)
        defer { d.cleanup() }
        _ = try d.client()
        func pressctl(_ args: [String]) throws -> Run { try runProcess(binDir + "/pressctl", args + ["--json", "--socket", d.socket]) }
        _ = try pressctl(["set", "4.3MPa", "-c", "A"])
        usleep(1_500_000)
        let commands: [[String]] = [["status"], ["set", "4.3MPa", "-c", "A"], ["hold", "-c", "B"], ["ack"], ["program", "status"],
                                    ["log", "events", "--since", "1h"], ["calibrate", "show", "-c", "A"], ["run", "show", "-c", "A"]]
        var sawMpa = 0
        for args in commands {
            let r = try pressctl(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect(obj.map { Array($0.keys) } == ["ok"], "\(args): \(r.stdout.prefix(300))")
            #expect(obj?["ok"] is [String: Any], "\(args): the answer is an object")
            for n in Self.numbers(in: r.stdout, keySuffix: "_mpa") {
                sawMpa += 1
                #expect(Self.decimals(n) <= 4, "\(args): \(n) MPa printed with more than the 0.1 kPa resolution")
            }
        }
        #expect(sawMpa > 10, "the check saw \(sawMpa) pressures")
        // status carries wall-clock times (found: only loop seconds since start).
        let st = try JSONSerialization.jsonObject(with: Data(try pressctl(["status"]).stdout.utf8)) as? [String: [String: Any]]
        let now = Date().timeIntervalSince1970
        let t = try #require(st?["ok"]?["time_unix"] as? Double), started = try #require(st?["ok"]?["started_unix"] as? Double)
        #expect(abs(t - now) < 5 && started <= t && t - started < 60, "time_unix \(t), started_unix \(started), now \(now)")
        // Streams: one envelope per line.
        let w = try pressctl(["watch", "--count", "3", "--rate", "10"])
        let lines = w.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o?["ok"] is [String: Any], "\(l.prefix(200))")
        }
        // A refusal: error, never ok.
        let refused = try pressctl(["set", "99MPa", "-c", "A"])
        let e = try JSONSerialization.jsonObject(with: Data(refused.stdout.utf8)) as? [String: Any]
        #expect(refused.status == 1 && e.map { Array($0.keys) } == ["error"], "\(refused.stdout)")
    }

    @Test("rounding keeps the resolution of each quantity and removes floating-point noise")
    func rounding() throws {
        // The rounding is pressctl's; exercised through the executable's output above and
        // here through its documented table on a known answer.
        let d = try DaemonProcess(timeScale: 10)
        defer { d.cleanup() }
        _ = try d.client()
        let r = try runProcess(binDir + "/pressctl", ["set", "0.30000000000000004MPa", "-c", "A", "--json", "--socket", d.socket])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"setpoint_mpa\" : 0.3\n") || r.stdout.contains("\"setpoint_mpa\" : 0.3,"), "\(r.stdout)")
    }
}
