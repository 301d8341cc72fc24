import Foundation
import Testing
import PressCore
import PressLog
import PressProtocol
@testable import PressDaemon

/// Issue 23, proof 1: the simulator's thickness gauge is one row of the signal table and
/// reaches every edge by the table (status, run log and its CSV, metrics, MQTT), pushes
/// and register roles find it by its key, and `gap` puts a channel in constant-gap mode
/// through the socket's vocabulary, logged as such.
@Suite("Signals at the edges: the thickness gauge everywhere, by the table")
struct SignalEdgesTests {
    @Test("thickness_um in status, the run log (column, CSV, downsampling), metrics and MQTT; gap logged as constant_gap")
    func thicknessEverywhere() throws {
        let cfg = try DaemonConfig.parse(try defaultConfigText() + MQTTMappingTests.table, file: "t.toml")
        var core = RigBuilder.simulated(cfg)
        _ = core.apply(.set(channel: 0, mpa: 5, ramp: nil))
        var now = 0.0
        for _ in 0..<3000 { now += 0.01; core.tick(now: now) }
        guard case .ok(let mode) = core.apply(.gap(channel: 0, um: nil)) else { Issue.record("gap refused"); return }
        #expect(mode == .constantGap)
        for _ in 0..<300 { now += 0.01; core.tick(now: now) }
        let a = core.states[0]
        let held = try #require(a.gapTarget)
        let measured = try #require(a.readings.thickness?.value)
        #expect(abs(measured - held) < 1, "thickness \(measured) µm held at \(held) µm")

        // status: self-describing signals.
        let st = StatusMapping.channel(a, config: cfg.channels[0])
        let gauge = try #require(st.signals?.first { $0.key == "thickness_um" })
        #expect(gauge.unit == "µm" && gauge.label == "stack thickness" && abs(gauge.value - measured) < 1e-9)
        #expect(st.gapTargetUm == held && st.mode == "constant_gap")

        // metrics: from the table, base SI units.
        let snap = RigSnapshot(time: now, stats: LoopStats(rate: 100, timeScale: 1), channels: core.states, backendStates: core.backendStates)
        let text = MetricsRenderer.render(snap, configs: cfg.channels, version: "t", uptime: 1)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("pressd_stack_thickness_metres{channel=\"A\"}") })
        let metres = try #require(Double(line.split(separator: " ").last!))
        #expect(abs(metres - measured * 1e-6) < 1e-12)
        #expect(text.contains("# TYPE pressd_cell_temperature_celsius gauge"))

        // MQTT: the sample payload carries every signal but the force, by key.
        let m = MQTTMapping(config: try #require(cfg.mqtt), version: "t", channels: ["A", "B"])
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(m.sample(a, time: 1).payload)) as? [String: Any])
        let signals = try #require(payload["signals"] as? [String: Double])
        #expect(abs(try #require(signals["thickness_um"]) - measured) < 0.001)

        // Run log: its own column, read back, exported, downsampled, and the mode logged.
        let samples = core.takeSamples().filter { $0.channel == "A" }
        let gapRows = samples.filter { $0.mode == "constant_gap" }
        #expect(!gapRows.isEmpty && gapRows.allSatisfy { $0.signals[.thickness] != nil })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signal-edges-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try RunLog(path: dir + "/runlog.sqlite")
        try log.append(samples: samples, events: [])
        let back = try log.samples(since: 0, until: .infinity, channel: "A")
        #expect(back.count == samples.count)
        #expect(zip(back, samples).allSatisfy { $0.signals == $1.signals })
        #expect(RunLog.csvHeader.hasSuffix(",bulk_resistance_ohm_cm2,thickness_um"))
        let csv = RunLog.csvLine(try #require(back.last))
        #expect(csv.split(separator: ",", omittingEmptySubsequences: false).count == RunLog.csvHeader.split(separator: ",").count)
        #expect(Double(try #require(csv.split(separator: ",", omittingEmptySubsequences: false).last)) != nil)
        try log.downsample(before: samples.last!.time + 120, period: 60)
        let down = try log.samples(since: 0, until: .infinity, channel: "A")
        #expect(down.count < back.count && down.allSatisfy { $0.signals[.thickness] != nil })
    }

    @Test("pressctl gap over the socket: constant_gap with the thickness held in status; a thickness without its unit is refused naming the units; push --signal by key; an unknown key refused by name")
    func gapAndPushThroughTheDaemon() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        #expect(try waitFor(20) { try c.channel("A").signals?.contains { $0.key == "thickness_um" } == true })
        let gap = try runProcess(binDir + "/pressctl", ["gap", "-c", "A", "--socket", d.socket])
        #expect(gap.status == 0 && gap.stdout.contains("A: constant_gap") && gap.stdout.contains("holding the stack at"), "\(gap.stdout)\(gap.stderr)")
        let st = try c.channel("A")
        let held = try #require(st.gapTargetUm)
        let now = try #require(st.signals?.first { $0.key == "thickness_um" }?.value)
        #expect(st.mode == "constant_gap" && abs(now - held) < 2, "\(now) µm against \(held) µm")
        let bare = try runProcess(binDir + "/pressctl", ["gap", "-c", "A", "812", "--socket", d.socket])
        #expect(bare.status != 0 && bare.stderr.contains("812.5um"), "\(bare.stderr)")
        // Back to pressure regulation.
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        #expect(try c.channel("A").mode == "regulating" && c.channel("A").gapTargetUm == nil)
        // Pushes by key.
        let push = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--signal", "bulk_resistance_ohm_cm2=4.5", "--socket", d.socket])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(try waitFor(5) { try c.channel("B").bulkResistanceOhmCm2 == 4.5 })
        let unknown = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--signal", "colour=3", "--socket", d.socket])
        #expect(unknown.status != 0 && unknown.stderr.contains("'colour' is not a signal that can be pushed") && unknown.stderr.contains("thickness_um"), "\(unknown.stderr)")
        let wild = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--signal", "thickness_um=-3", "--socket", d.socket])
        #expect(wild.status != 0 && wild.stderr.contains("thickness_um must be within 0…1e+06 µm"), "\(wild.stderr)")
    }

    @Test("pushes and register roles name signals by the table's keys; an unknown key is refused by name")
    func pushAndRoles() throws {
        #expect(SignalRole(rawValue: "thickness_um") == .signal(.thickness))
        #expect(SignalRole.allCases.map(\.rawValue).contains("bulk_resistance_ohm_cm2"))
        let cfg = try DaemonConfig.parse(try defaultConfigText(), file: "t.toml")
        var core = RigBuilder.simulated(cfg)
        core.tick(now: 0.01)
        _ = core.apply(.push(channel: 1, PushedSignals([.thickness: 812.5, .temperature: 31])))
        core.tick(now: 0.02)
        #expect(core.states[1].readings.thickness?.value == 812.5 && core.states[1].readings.temperature?.value == 31)
    }
}
