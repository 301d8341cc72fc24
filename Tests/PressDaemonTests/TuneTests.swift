import Foundation
import Testing
import PressProtocol

@Suite("Autotune and learned control through the daemon", .serialized)
struct TuneTests {
    /// Waits (wall clock) until channel `name` is regulating in band, for `settled` s of wall time.
    func waitInBand(_ c: ControlClient, _ name: String, settled: Double = 1, timeout: Double = 20) throws {
        let end = Date().addingTimeInterval(timeout)
        var since: Date?
        while Date() < end {
            let ch = try c.status().channels.first { $0.name == name }!
            if ch.inBand { since = since ?? Date() } else { since = nil }
            if let s = since, Date().timeIntervalSince(s) >= settled { return }
            usleep(100_000)
        }
        Issue.record("\(name) did not settle in band")
    }

    @Test("pressctl tune: refused when unsafe, runs with progress, stores the gains, which survive a restart")
    func tuneOverSocket() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        // Released channel: refused with the reason, nothing moves.
        let refused = try runProcess(binDir + "/pressctl", ["tune", "-c", "A", "--socket", d.socket])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refused") && refused.stderr.contains("must be regulating"), "\(refused.stderr)")
        // A bad rule is named.
        let bad = try runProcess(binDir + "/pressctl", ["tune", "-c", "A", "--rule", "magic", "--socket", d.socket])
        #expect(bad.status != 0 && bad.stderr.contains("magic"), "\(bad.stderr)")

        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        try waitInBand(c, "A")
        let run = try runProcess(binDir + "/pressctl", ["tune", "-c", "A", "--rule", "amigo", "--socket", d.socket])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("relay"), "progress was shown: \(run.stdout)")
        #expect(run.stdout.contains("A: tuned (amigo)"), "\(run.stdout)")
        let st = try c.status().channels.first { $0.name == "A" }!
        let tune = try #require(st.control?.lastTune)
        #expect(tune.rule == "amigo")
        #expect(abs(tune.processGain / 0.00198 - 1) < 0.2, "process gain \(tune.processGain)")
        #expect(st.mode == "regulating")
        // The new gains hold the channel in band.
        try waitInBand(c, "A", settled: 2)

        // Restart: the tune comes back from the run log and its gains are in force.
        d.stop()
        let d2 = try DaemonProcess(dir: d.dir, timeScale: 5)
        defer { d2.stop() }
        let c2 = try d2.client()
        let st2 = try c2.status().channels.first { $0.name == "A" }!
        #expect(st2.control?.lastTune == tune)
        #expect(abs((st2.control?.kp ?? 0) - tune.kp * ((st2.control?.adaptive?.scale) ?? 1)) < 1e-6 * tune.kp)
        let text = try runProcess(binDir + "/pressctl", ["status", "--socket", d2.socket])
        #expect(text.stdout.contains("tuned (amigo"), "\(text.stdout)")
    }

    @Test("the learned controller's memory is persisted and comes back after a restart")
    func learnedMemorySurvivesRestart() throws {
        let d = try DaemonProcess(timeScale: 20)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        usleep(3_000_000) // 60 s of plant time
        let before = try #require(try c.status().channels.first { $0.name == "A" }!.control)
        #expect(before.strategy == "learned")
        let learned = try #require(before.learned)
        let adaptive = try #require(before.adaptive)
        #expect(adaptive.updates > 0 || learned.updates > 0)
        d.stop()
        let d2 = try DaemonProcess(dir: d.dir, timeScale: 20)
        defer { d2.stop() }
        let after = try #require(try d2.client().status().channels.first { $0.name == "A" }!.control)
        #expect((after.adaptive?.updates ?? 0) >= adaptive.updates)
        #expect((after.learned?.updates ?? 0) >= learned.updates)
        #expect(after.adaptive?.baseGain == adaptive.baseGain)
    }

    @Test("a running autotune is cancelled by a new setpoint and by pressctl tune --cancel; the old gains stay")
    func cancel() throws {
        let d = try DaemonProcess(timeScale: 2)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "B", value: 3, unit: "MPa"), as: SetResult.self)
        try waitInBand(c, "B")
        let kp = try c.status().channels.first { $0.name == "B" }!.control!.kp
        let start = try runProcess(binDir + "/pressctl", ["tune", "-c", "B", "--no-wait", "--socket", d.socket])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(try c.status().channels.first { $0.name == "B" }!.control?.autotune != nil)
        let cancel = try runProcess(binDir + "/pressctl", ["tune", "-c", "B", "--cancel", "--socket", d.socket])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        let after = try c.status().channels.first { $0.name == "B" }!
        #expect(after.control?.autotune == nil)
        #expect(after.control?.kp == kp)
        #expect(after.control?.lastTune == nil)
        #expect(after.mode == "regulating")
        // A new setpoint also ends it (the experiment was for the old one).
        _ = try runProcess(binDir + "/pressctl", ["tune", "-c", "B", "--no-wait", "--socket", d.socket])
        _ = try c.call("set", SetParams(channel: "B", value: 3.2, unit: "MPa"), as: SetResult.self)
        #expect(try c.status().channels.first { $0.name == "B" }!.control?.autotune == nil)
        // A second cancel has nothing to cancel.
        let again = try runProcess(binDir + "/pressctl", ["tune", "-c", "B", "--cancel", "--socket", d.socket])
        #expect(again.status == 1 && again.stderr.contains("no autotune is running"))
    }
}
