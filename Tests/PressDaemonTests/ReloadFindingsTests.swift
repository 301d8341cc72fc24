import Foundation
import Testing
import PressCore
import PressLog
import PressProtocol
@testable import PressDaemon

/// Issue 23's three findings, on a real pressd: copies of the configuration made at
/// start-up outlived a reload. A reload of `safe_output` left a shutdown `release` writing
/// the old value; a reload of `shutdown` was accepted and ignored while the stop message
/// named the new action; the pushed-signal stale limit came from the start-up
/// configuration in the loop but from the reloaded one in the socket.
@Suite("Reload findings (issue 23): what a reload accepted is what the running daemon does", .serialized)
struct ReloadFindingsTests {
    @Test("reloaded shutdown, safe_output and pushed_stale_after_s: the loop uses them and the stop message says what it did")
    func reloadedLoopSettings() throws {
        // A (spring): shutdown hold at start. B (pneumatic): shutdown release at start, safe output 0.
        let bStart = ("safe_output = 0           # vented\nshutdown = \"hold\"", "safe_output = 0           # vented\nshutdown = \"release\"")
        let d = try DaemonProcess(configEdits: [bStart], timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        _ = try c.call("set", SetParams(channel: "B", value: 5, unit: "MPa"), as: SetResult.self)
        #expect(try waitFor(60) { try c.channel("A").inBand && c.channel("B").inBand })

        // Reload: A releases at shutdown now; B's safe output is 0.3 MPa of air; B's
        // pushed values go stale after 20 s (loop time) instead of 900 s.
        var text = try String(contentsOfFile: d.configPath, encoding: .utf8)
        let aHold = "safe_output = 0           # fully backed off\nshutdown = \"hold\""
        #expect(text.contains(aHold))
        text = text.replacingOccurrences(of: aHold, with: "safe_output = 0           # fully backed off\nshutdown = \"release\"")
        text = text.replacingOccurrences(of: "safe_output = 0           # vented\nshutdown = \"release\"", with: "safe_output = 0.3\nshutdown = \"release\"")
        text = text.replacingOccurrences(of: "cell_area_cm2 = 2.0", with: "cell_area_cm2 = 2.0\npushed_stale_after_s = 20")
        try text.write(toFile: d.configPath, atomically: true, encoding: .utf8)
        let r = try c.call("reload", NoParams(), as: ReloadResult.self)
        #expect(r.message.contains("reloaded"), "\(r.message)")

        // A pushed temperature replaces the simulated one (about 25 °C) until it is 20 s
        // of loop time old: 4 s of wall time at ×5. With the start-up limit (900 s) it
        // would stay for 3 minutes.
        _ = try c.call("push_signals", PushSignalsParams(channel: "B", temperatureC: 80), as: ActionResult.self)
        #expect(try waitFor(10) { abs((try c.channel("B").temperatureC ?? 0) - 80) < 1e-9 }, "the pushed temperature was not used")
        let pushedAt = Date()
        #expect(try waitFor(20) { (try c.channel("B").temperatureC ?? 80) < 60 },
                "the pushed temperature was still used \(Date().timeIntervalSince(pushedAt)) s of wall time (×5) after it was pushed; the reloaded limit is 20 s of loop time")

        d.stop()
        let log = try RunLog(readingOnly: d.dir + "/state/runlog.sqlite")
        let stop = try #require(try log.events(since: 0, until: 1e12).last { $0.kind == "daemon" && $0.detail.hasPrefix("pressd stopped") })
        // "pressd stopped; shutdown actions A=release,B=release"
        let actions = Dictionary(uniqueKeysWithValues: stop.detail.split(separator: " ").last!.split(separator: ",").map { kv in
            let p = kv.split(separator: "="); return (String(p[0]), String(p[1]))
        })
        #expect(actions == ["A": "release", "B": "release"], "\(stop.detail)")
        let saved = try log.loadState()
        let a = try #require(saved["A"]), b = try #require(saved["B"])
        // What the loop did at shutdown: A released to its safe output 0 µm, B to the reloaded 0.3 MPa.
        #expect(a.backend?["output"] == 0 && a.mode == .released, "A at shutdown: output \(String(describing: a.backend?["output"])) µm, mode \(a.mode)")
        #expect(b.backend?["output"] == 0.3 && b.mode == .released, "B at shutdown: output \(String(describing: b.backend?["output"])) MPa, mode \(b.mode)")
    }
}
