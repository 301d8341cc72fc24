import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// A reload must reach every place that reads a setting, and reloads must never run
/// side by side or on the socket's event loop.
@Suite("Live configuration: what a reload changes is what set, tune and sweep use", .serialized)
struct LiveConfigTests {
    /// The daemon's structured refusal of `body`'s call, or nil when it was accepted.
    private func refusal(_ body: () throws -> Void) throws -> ErrorBody? {
        do { try body(); return nil } catch {
            if let e = error as? ClientError, case .remote(let body) = e { return body }
            throw error
        }
    }

    @Test("after a reload, tune starts with the reloaded autotune settings and sweep and set check the reloaded limits")
    func reloadedSettingsAreUsed() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        #expect(try waitFor(60) { let a = try c.channel("A"); return a.inBand && abs((a.workingSetpointMpa ?? 0) - 5) < 1e-6 })

        // Start-up: max_mpa 12, autotune excursion 0.25 MPa, 8 cycles (the default).
        var text = try String(contentsOfFile: d.configPath, encoding: .utf8)
        #expect(text.contains("max_mpa = 12.0") && text.contains("autotune_excursion_mpa = 0.25"))
        text = text.replacingOccurrences(of: "max_mpa = 12.0", with: "max_mpa = 12.5")
        text = text.replacingOccurrences(of: "autotune_excursion_mpa = 0.25", with: "autotune_excursion_mpa = 0.3\nautotune_cycles = 4")
        try text.write(toFile: d.configPath, atomically: true, encoding: .utf8)
        let r = try c.call("reload", NoParams(), as: ReloadResult.self)
        #expect(r.message.contains("reloaded"))

        // tune with no overrides: the reloaded excursion and cycles.
        _ = try c.call("tune", TuneParams(channel: "A", action: .start), as: ActionResult.self)
        let control = try #require(try c.channel("A").control)
        #expect(control.setpointOwner == "autotune" && control.active == "autotune")
        let progress = try #require(control.autotune)
        #expect(progress.excursionMpa == 0.3, "autotune excursion \(progress.excursionMpa) MPa")
        #expect(progress.cyclesWanted == 4, "autotune cycles \(progress.cyclesWanted)")
        _ = try c.call("tune", TuneParams(channel: "A", action: .cancel), as: ActionResult.self)
        #expect(try waitFor(60) { let a = try c.channel("A"); return a.control?.autotune == nil && a.inBand })

        // sweep from 12.4 MPa: inside the reloaded max (12.5), outside the start-up one.
        if let e = try refusal({ _ = try c.call("sweep", SweepParams(channel: "A", action: .start, fromMpa: 12.4, toMpa: 3, steps: 6, dwellS: 5), as: ActionResult.self) }) {
            Issue.record("sweep from 12.4 MPa refused after max_mpa was reloaded to 12.5: \(e.code.rawValue): \(e.message)")
        } else {
            _ = try c.call("sweep", SweepParams(channel: "A", action: .cancel), as: ActionResult.self)
        }

        // set: lower the limit, then a setpoint between the two is refused with the new one.
        text = text.replacingOccurrences(of: "max_mpa = 12.5", with: "max_mpa = 11.0")
        try text.write(toFile: d.configPath, atomically: true, encoding: .utf8)
        _ = try c.call("reload", NoParams(), as: ReloadResult.self)
        let setRefusal = try refusal { _ = try c.call("set", SetParams(channel: "A", value: 11.5, unit: "MPa"), as: SetResult.self) }
        #expect(setRefusal?.code == .outOfRange && setRefusal?.message.contains("11.0") == true, "\(String(describing: setRefusal))")
        let sweepRefusal = try refusal { _ = try c.call("sweep", SweepParams(channel: "A", action: .start, fromMpa: 11.5, toMpa: 3, steps: 6, dwellS: 5), as: ActionResult.self) }
        #expect(sweepRefusal?.message.contains("max_mpa 11") == true, "\(String(describing: sweepRefusal))")
        #expect(try c.channel("A").limits.maxMpa == 11)
    }

    @Test("reloads asked from many threads at once run one at a time, off the caller's thread, and each gets its answer")
    func reloadsAreSerialised() {
        final class Probe: @unchecked Sendable {
            let lock = NSLock()
            var running = 0, most = 0, runs = 0
            var threads: Set<String> = []
        }
        let probe = Probe()
        let reloader = ConfigReloader {
            probe.lock.lock(); probe.running += 1; probe.most = max(probe.most, probe.running); probe.runs += 1
            probe.threads.insert("\(Thread.current)"); probe.lock.unlock()
            usleep(20_000)
            probe.lock.lock(); probe.running -= 1; probe.lock.unlock()
            return .success("ok")
        }
        let answered = DispatchSemaphore(value: 0)
        let callers = DispatchGroup()
        for k in 0..<16 {
            DispatchQueue.global().async(group: callers) {
                if k % 2 == 0 {
                    // The socket's way: returns at once, answers later.
                    reloader.reload { r in if case .success = r { answered.signal() } }
                } else {
                    // SIGHUP's way: waits.
                    if case .success = reloader.reloadAndWait() { answered.signal() }
                }
            }
        }
        #expect(callers.wait(timeout: .now() + 30) == .success)
        var got = 0
        for _ in 0..<16 where answered.wait(timeout: .now() + 30) == .success { got += 1 }
        #expect(got == 16)
        #expect(probe.runs == 16)
        #expect(probe.most == 1, "\(probe.most) reloads ran at the same time")

        // The asynchronous form never runs the work on the caller's thread: it returns
        // while the work still waits for its caller to go on. (Run on the caller's
        // thread, `reload` would return only after the work's 5 s wait, finished.)
        let released = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let blocking = ConfigReloader {
            _ = released.wait(timeout: .now() + 5)
            return .success("late")
        }
        blocking.reload { _ in finished.signal() }
        #expect(finished.wait(timeout: .now()) == .timedOut, "reload ran its work before returning")
        released.signal()
        #expect(finished.wait(timeout: .now() + 10) == .success)
    }
}
