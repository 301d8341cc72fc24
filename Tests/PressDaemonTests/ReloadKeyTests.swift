import Foundation
import Testing
import PressCore
import PressSim
@testable import PressDaemon

/// `text` with `key = value` in table `[table]`: the key's line replaced, or added under the
/// header (the table appended when it is not there); a nil value deletes the key's line.
func settingKey(_ text: String, table: String, key: String, value: String?) -> String {
    var lines = text.components(separatedBy: "\n")
    func isKey(_ l: String) -> Bool {
        let t = l.trimmingCharacters(in: .whitespaces)
        return t.hasPrefix(key + " ") || t.hasPrefix(key + "=")
    }
    guard let header = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "[\(table)]" }) else {
        return value.map { text + "\n[\(table)]\n\(key) = \($0)\n" } ?? text
    }
    var end = header + 1
    while end < lines.count && !lines[end].trimmingCharacters(in: .whitespaces).hasPrefix("[") { end += 1 }
    if let at = lines[(header + 1)..<end].firstIndex(where: isKey) {
        if let value { lines[at] = "\(key) = \(value)" } else { lines.remove(at: at) }
    } else if let value {
        lines.insert("\(key) = \(value)", at: header + 1)
    }
    return lines.joined(separator: "\n")
}

/// One key a reload accepts: the edit that changes it in the test's configuration, and
/// whether the running daemon holds the new value where it is used.
struct ReloadKeyCase: Sendable, CustomTestStringConvertible {
    /// 0 = channel A (spring fixture, learned, supervisor on), 1 = B (pneumatic, adaptive, spectra).
    let channel: Int
    /// Relative to `channels.NAME`, e.g. `pid.kp`.
    let key: String
    /// Keys (relative to the channel) set to TOML values, or deleted (nil); the first is `key`.
    let edits: [(key: String, value: String?)]
    /// True when the running daemon holds the new value: the loop's channel (controller and
    /// loop settings) and the configuration in force (read at use by status and the intake).
    let holds: @Sendable (LoopChannel, DaemonConfig) -> Bool

    var name: String { ["A", "B"][channel] }
    var testDescription: String { "channels.\(name).\(key)" }

    init(_ ch: String, _ key: String, _ value: String, also: [(String, String?)] = [],
         _ holds: @escaping @Sendable (LoopChannel, DaemonConfig) -> Bool) {
        channel = ch == "A" ? 0 : 1
        self.key = key
        edits = [(key, value)] + also.map { ($0.0, $0.1) }
        self.holds = holds
    }
}

/// The test's configuration: the shipped one with channel A's supervisor on (so that its
/// keys reach a supervisor) and channel B watching a spectrum directory.
func reloadTestBase() throws -> String {
    try defaultConfigText() + """

        [channels.A.supervisor]
        enabled = true
        window_min_mpa = 3
        window_max_mpa = 8

        [channels.B.impedance]
        spectra_dir = "/nonexistent/pressd-reload-test"

        """
}

// Where the running daemon holds a value: the PID in force, the controller's parameters,
// the adapter, supervisor and short detector it built from them, the configuration in force.
private func pid(_ lc: LoopChannel) -> PIDParameters { lc.controller.pid.parameters }
private func p(_ lc: LoopChannel) -> ChannelParameters { lc.controller.parameters }
private func adapt(_ lc: LoopChannel) -> AdaptationSettings? { lc.controller.adapter?.settings }
private func sup(_ lc: LoopChannel) -> SupervisorSettings? { lc.controller.supervisor?.settings }
private func short(_ lc: LoopChannel) -> ShortDetectionSettings? { lc.controller.shortDetector?.settings }
private func spectra(_ cfg: DaemonConfig) -> SpectraConfig? { cfg.channels[1].spectra }

/// Every key a reload accepts, with where the running daemon uses it.
let reloadKeyCases: [ReloadKeyCase] = {
    typealias C = ReloadKeyCase
    return [
        C("A", "description", "\"reloaded text\"") { _, cfg in cfg.channels[0].description == "reloaded text" },
        C("A", "band_percent", "4") { lc, _ in p(lc).band == 0.04 },
        C("A", "excursion_min_s", "2") { lc, _ in p(lc).excursionMinDuration == 2 },
        C("A", "excursion_min_percent", "10") { lc, _ in p(lc).excursionMinDepth == 0.1 },
        C("A", "pushed_stale_after_s", "60") { lc, _ in lc.settings.pushedStaleAfter == 60 },

        C("A", "limits.preset", "\"sulfide/li-metal\"", also: [("limits.min_mpa", nil), ("limits.max_mpa", nil), ("limits.trip_mpa", nil)]) { lc, _ in
            p(lc).limits.minSetpoint == 3 && p(lc).limits.maxSetpoint == 10 && p(lc).limits.trip == 12
        },
        C("A", "limits.min_mpa", "0.5") { lc, _ in p(lc).limits.minSetpoint == 0.5 },
        C("A", "limits.max_mpa", "11") { lc, _ in p(lc).limits.maxSetpoint == 11 },
        C("A", "limits.trip_mpa", "14") { lc, _ in p(lc).limits.trip == 14 },
        C("A", "limits.trip_action", "\"hold\"") { lc, _ in p(lc).limits.tripAction == .hold },
        C("A", "limits.saturation_timeout_s", "45") { lc, _ in p(lc).limits.saturationTimeout == 45 },
        C("A", "limits.saturation_action", "\"release\"") { lc, _ in p(lc).limits.saturationAction == .release },
        C("A", "limits.safe_mpa", "1") { lc, _ in p(lc).limits.safePressure == 1 },
        C("A", "limits.safe_ramp_mpa_per_s", "0.25") { lc, _ in p(lc).limits.safeRamp == 0.25 },
        C("A", "limits.max_temperature_c", "55") { lc, _ in p(lc).temperatureLimit == TemperatureLimit(maximum: 55, action: .release) },
        C("A", "limits.temperature_action", "\"hold\"", also: [("limits.max_temperature_c", "60")]) { lc, _ in p(lc).temperatureLimit?.action == .hold },

        C("A", "sensor.range_n", "[-60, 1900]") { lc, _ in p(lc).sensor.minForce == -60 && p(lc).sensor.maxForce == 1900 },
        C("A", "sensor.stale_after_ms", "300") { lc, _ in p(lc).sensor.staleAfter == 0.3 },
        C("A", "sensor.fault_action", "\"release\"") { lc, _ in p(lc).sensor.faultAction == .release },
        C("A", "sensor.frozen_after_s", "7") { lc, _ in p(lc).sensor.frozenAfter == 7 },
        C("A", "sensor.recover_after_s", "3") { lc, _ in p(lc).sensor.recoverAfter == 3 },
        C("A", "sensor.max_recoveries_per_hour", "4") { lc, _ in p(lc).sensor.maxRecoveriesPerHour == 4 },
        C("A", "sensor.nonuniformity_alarm_percent", "20") { lc, _ in p(lc).nonUniformityAlarm == 0.2 },
        C("A", "sensor.nonuniformity_min_force_n", "150") { lc, _ in p(lc).nonUniformityMinForce == 150 },
        C("A", "sensor.frozen_fast_chance", "1e-12") { lc, _ in p(lc).sensor.fastFrozenChance == 1e-12 },
        C("A", "sensor.frozen_fast_min_s", "0.5") { lc, _ in p(lc).sensor.fastFrozenMinimum == 0.5 },
        C("A", "gap.kp", "2") { lc, _ in p(lc).gap.kp == 2 },
        C("B", "gap.ki", "0.02") { lc, _ in p(lc).gap.ki == 0.02 },

        C("A", "actuator.output_min", "10", also: [("actuator.safe_output", "10")]) { lc, _ in pid(lc).outputMin == 10 },
        C("A", "actuator.output_max", "18000") { lc, _ in pid(lc).outputMax == 18000 },
        C("A", "actuator.output_rate", "2000") { lc, _ in pid(lc).outputRateLimit == 2000 },
        C("A", "actuator.safe_output", "100") { lc, _ in lc.settings.control.safeOutput == 100 && p(lc).safeOutput == 100 },
        C("A", "actuator.shutdown", "\"release\"") { lc, _ in lc.settings.shutdown == .release },
        C("B", "actuator.play_mpa", "0.3") { lc, _ in p(lc).actuatorPlay == 0.3 },

        C("A", "pid.kp", "120") { lc, _ in pid(lc).kp == 120 },
        C("A", "pid.ki", "1200") { lc, _ in pid(lc).ki == 1200 },
        C("A", "pid.kd", "1") { lc, _ in pid(lc).kd == 1 },
        C("A", "pid.derivative_filter_s", "0.1") { lc, _ in pid(lc).derivativeFilterTime == 0.1 },
        C("A", "pid.deadband_mpa", "0.01") { lc, _ in pid(lc).deadband == 0.01 },
        C("A", "pid.setpoint_ramp_mpa_per_s", "0.5") { lc, _ in pid(lc).setpointRampRate == 0.5 },
        C("A", "pid.action", "\"direct\"") { lc, _ in pid(lc).action == .direct },
        C("A", "pid.anti_windup", "\"conditional\"") { lc, _ in pid(lc).antiWindup == .conditional },
        C("A", "pid.tracking_time_s", "0.2") { lc, _ in pid(lc).trackingTime == 0.2 },
        C("A", "pid.feedforward_gain", "450") { lc, _ in p(lc).feedforward.gain == 450 },
        C("A", "pid.feedforward_offset", "5") { lc, _ in p(lc).feedforward.offset == 5 },

        C("A", "control.strategy", "\"pid\"") { lc, _ in lc.controller.state.control.strategy == .pid && lc.controller.adapter == nil },
        C("A", "control.autotune_rule", "\"simc\"") { lc, _ in p(lc).autotune.rule == .simc },
        C("A", "control.autotune_excursion_mpa", "0.3") { lc, _ in p(lc).autotune.maxExcursion == 0.3 },
        C("A", "control.autotune_hysteresis_mpa", "0.05") { lc, _ in p(lc).autotune.hysteresis == 0.05 },
        C("A", "control.autotune_cycles", "4") { lc, _ in p(lc).autotune.cycles == 4 },
        C("A", "control.autotune_timeout_s", "200") { lc, _ in p(lc).autotune.timeout == 200 },
        C("A", "control.adapt_interval_s", "2") { lc, _ in adapt(lc)?.interval == 2 },
        C("A", "control.adapt_forgetting", "0.99") { lc, _ in adapt(lc)?.forgetting == 0.99 },
        C("A", "control.adapt_schedule_bins", "8") { lc, _ in adapt(lc)?.scheduleBins == 8 },
        C("A", "control.adapt_min_scale", "0.2") { lc, _ in adapt(lc)?.minScale == 0.2 },
        C("A", "control.adapt_max_scale", "2") { lc, _ in adapt(lc)?.maxScale == 2 },
        C("A", "control.adapt_gain_rate_per_s", "0.1") { lc, _ in adapt(lc)?.gainRate == 0.1 },
        C("A", "control.adapt_excitation_mpa", "0.2") { lc, _ in adapt(lc)?.excitation == 0.2 },
        C("A", "control.adapt_validation_moves", "4") { lc, _ in adapt(lc)?.validationMoves == 4 },
        C("A", "control.confidence_low", "0.2") { lc, _ in adapt(lc)?.confidenceLow == 0.2 },
        C("A", "control.confidence_high", "0.8") { lc, _ in adapt(lc)?.confidenceHigh == 0.8 },

        C("A", "supervisor.enabled", "false") { lc, _ in lc.controller.supervisor == nil },
        C("A", "supervisor.window_min_mpa", "4") { lc, _ in sup(lc)?.windowMin == 4 },
        C("A", "supervisor.window_max_mpa", "7") { lc, _ in sup(lc)?.windowMax == 7 },
        C("A", "supervisor.margin", "0.3") { lc, _ in sup(lc)?.margin == 0.3 },
        C("A", "supervisor.step_mpa", "0.5") { lc, _ in sup(lc)?.step == 0.5 },
        C("A", "supervisor.interval_s", "180") { lc, _ in sup(lc)?.interval == 180 },
        C("A", "supervisor.settle_s", "30") { lc, _ in sup(lc)?.settle == 30 },
        C("A", "supervisor.min_measurements", "5") { lc, _ in sup(lc)?.minMeasurements == 5 },
        C("A", "supervisor.memory_s", "3600") { lc, _ in sup(lc)?.memory == 3600 },
        // Kept for old files: accepted, warned about, no effect.
        C("A", "supervisor.reprobe_s", "300") { _, cfg in cfg.warnings.contains { $0.contains("supervisor.reprobe_s: is ignored") } },

        C("A", "short_detection.enabled", "false") { lc, _ in lc.controller.shortDetector == nil },
        C("A", "short_detection.window_s", "40") { lc, _ in short(lc)?.window == 40 },
        C("A", "short_detection.collapse_v", "0.08") { lc, _ in short(lc)?.collapseVolts == 0.08 },
        C("A", "short_detection.floor_v", "3") { lc, _ in short(lc)?.floorVolts == 3 },
        C("A", "short_detection.confirm_measurements", "3") { lc, _ in short(lc)?.confirmMeasurements == 3 },
        C("A", "short_detection.noise_factor", "6") { lc, _ in short(lc)?.noiseFactor == 6 },
        C("A", "short_detection.noise_fraction", "0.3") { lc, _ in short(lc)?.noiseFraction == 0.3 },
        C("A", "short_detection.noise_floor_v", "0.003") { lc, _ in short(lc)?.noiseFloorVolts == 0.003 },
        C("A", "short_detection.noise_measurements", "12") { lc, _ in short(lc)?.noiseMeasurements == 12 },
        C("A", "short_detection.holdoff_s", "15") { lc, _ in short(lc)?.holdoff == 15 },
        C("A", "short_detection.current_tolerance_ma", "0.1") { lc, _ in short(lc)?.currentToleranceMA == 0.1 },
        C("A", "short_detection.current_tolerance_fraction", "0.03") { lc, _ in short(lc)?.currentToleranceFraction == 0.03 },
        C("A", "short_detection.pressure_tolerance_mpa", "0.2") { lc, _ in short(lc)?.pressureToleranceMPa == 0.2 },
        C("A", "short_detection.pressure_tolerance_fraction", "0.1") { lc, _ in short(lc)?.pressureToleranceFraction == 0.1 },
        C("A", "short_detection.stale_after_s", "20") { lc, _ in short(lc)?.staleAfter == 20 },
        C("A", "short_detection.while_discharging", "true") { lc, _ in short(lc)?.whileDischarging == true },
        C("A", "short_detection.short_safe_mpa", "1") { lc, _ in short(lc)?.safePressure == 1 },

        C("B", "impedance.time_zone", "\"Europe/Berlin\"") { _, cfg in spectra(cfg)?.timeZone == "Europe/Berlin" },
        C("B", "impedance.date_order", "\"day_first\"") { _, cfg in spectra(cfg)?.dateOrder == .dayFirst },
        C("B", "impedance.max_relative_error", "0.5") { _, cfg in spectra(cfg)?.maxRelativeError == 0.5 },
        C("B", "impedance.require_kramers_kronig", "false") { _, cfg in spectra(cfg)?.requireKramersKronig == false },
    ]
}()

/// A loop core and the configuration in force, reloaded through the daemon's reload path
/// (``ConfigReload``: the key check, `reconfigure` applied by the loop, then ``LiveConfig``).
struct ReloadHarness {
    var core: LoopCore
    let live: LiveConfig

    init(_ text: String) throws {
        let cfg = try DaemonConfig.parse(text, file: "reload.toml")
        core = RigBuilder.simulated(cfg)
        live = LiveConfig(cfg)
        for k in 1...5 { core.tick(now: Double(k) * 0.01) }
    }

    mutating func reload(_ text: String) throws -> Result<ReloadPlan, ConfigError> {
        let new = try DaemonConfig.parse(text, file: "reload.toml")
        var core = self.core
        let result = ConfigReload(live: live) { command in
            if case .rejected = core.apply(command) { return false }
            return true
        }.apply(new)
        self.core = core
        core.tick(now: 0.06)
        return result
    }
}

@Suite("Reload: every key a reload accepts reaches the running daemon; every other key is refused by name")
struct ReloadKeyTests {
    @Test("a reloaded key is in force where it is used", arguments: reloadKeyCases)
    func reloadedKeyIsUsed(_ c: ReloadKeyCase) throws {
        let base = try reloadTestBase()
        var text = base
        for (k, v) in c.edits {
            let dot = k.lastIndex(of: ".")
            let table = "channels.\(c.name)" + (dot.map { "." + k[..<$0] } ?? "")
            text = settingKey(text, table: table, key: dot.map { String(k[k.index(after: $0)...]) } ?? k, value: v)
        }
        #expect(text != base, "the edit did not change the file")
        var h = try ReloadHarness(base)
        #expect(!c.holds(h.core.channels[c.channel], h.live.current), "the new value is already in force before the reload")
        let plan = try h.reload(text).get()
        let full = "channels.\(c.name).\(c.key)"
        #expect(plan.changed.contains { $0.key == full }, "\(plan.changed.map(\.key))")
        #expect(c.holds(h.core.channels[c.channel], h.live.current), "after the reload the running daemon does not use the new \(full)")
    }

    @Test("the cases cover exactly the keys the reload accepts, and docs/configuration.md lists the same keys")
    func casesAndDocsMatchTheTable() throws {
        let table = ReloadableKeys.channelKeys.map(\.key)
        #expect(Set(reloadKeyCases.map(\.key)) == Set(table))
        #expect(Set(table).count == table.count)
        let doc = try String(contentsOfFile: repoRoot + "/docs/configuration.md", encoding: .utf8)
        let section = try #require(doc.components(separatedBy: "\n## Reload").dropFirst().first?.components(separatedBy: "\n## ").first)
        // Rows: | `pid.kp` | loop | …
        var documented: [String: String] = [:]
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            for k in cells[0].split(separator: ",") { documented[k.trimmingCharacters(in: CharacterSet(charactersIn: " `"))] = cells[1] }
        }
        #expect(documented == Dictionary(uniqueKeysWithValues: ReloadableKeys.channelKeys.map { ($0.key, $0.effect.rawValue) }))
    }

    @Test("a key that needs a restart is refused naming it (file, line, key), and nothing changes")
    func restartKeysAreRefused() throws {
        let base = try reloadTestBase()
        for (table, key, value) in [("daemon", "log_level", "\"debug\""), ("simulator", "seed", "7"), ("runlog", "sample_period_s", "2"),
                                    ("channels.A", "cell_area_cm2", "0.5"), ("channels.A", "loop_rate_hz", "50"),
                                    ("channels.A.sim", "gap_um", "400"), ("channels.A.sensor", "noise_n", "0.3"),
                                    ("channels.B.impedance", "spectra_dir", "\"/nonexistent/elsewhere\""),
                                    ("access", "admins", "[\"root\"]"), ("mqtt", "host", "\"localhost\"")] {
            var h = try ReloadHarness(base)
            let before = h.core.channels.map(\.settings)
            let text = settingKey(base, table: table, key: key, value: value)
            let result = try? h.reload(text)
            guard case .failure(let e)? = result else {
                Issue.record("\(table).\(key) changed at a reload: \(String(describing: result))"); continue
            }
            #expect(e.key == "\(table).\(key)" && e.line == line(of: "\(key) = \(value)", in: text) && e.message.contains("only at a restart"), "\(e)")
            #expect(h.core.channels.map(\.settings) == before)
            #expect(h.live.current.keys.values == (try DaemonConfig.parse(base, file: "reload.toml")).keys.values)
        }
    }

    @Test("every key of every shipped configuration that a reload does not accept is refused by name")
    func everyShippedKeyIsClassified() throws {
        let dir = repoRoot + "/config/examples"
        let files = [defaultConfigPath] + (try FileManager.default.contentsOfDirectory(atPath: dir)).filter { $0.hasSuffix(".toml") }.sorted().map { dir + "/" + $0 }
        var refused = 0
        for f in files {
            let text = try String(contentsOfFile: f, encoding: .utf8)
            guard let old = try? DaemonConfig.parse(text, file: f) else { continue }
            for key in old.keys.values.keys.sorted() where ReloadableKeys.effect(of: key) == nil {
                var new = old
                new.keys.values[key] = "\"changed\""
                guard case .failure(let e) = ReloadPlan.make(from: old, to: new) else { Issue.record("\(f): \(key) accepted"); continue }
                #expect(e.key == key, "\(f): \(e)")
                refused += 1
            }
        }
        #expect(refused > 50)
    }

    @Test("what the command line set at start (--time-scale, --state-dir) stays in force after a reload of the file")
    func commandLineOverridesSurviveAReload() throws {
        let base = try reloadTestBase()
        var h = try ReloadHarness(base)
        // pressd's main applies --time-scale 5 and --state-dir to the configuration it starts with.
        var started = h.live.current
        started.timeScale = 5
        started.stateDir = "/tmp/pressd-cli-state"
        h.live.replace(started)
        _ = try h.reload(settingKey(base, table: "channels.A.pid", key: "kp", value: "120")).get()
        // The spectrum intake judges staleness with live.current.timeScale: the file's 1 would
        // make a spectrum look five times younger than the loop will judge it.
        #expect(h.live.current.timeScale == 5 && h.live.current.stateDir == "/tmp/pressd-cli-state")
        #expect(h.core.channels[0].controller.pid.parameters.kp == 120)
    }

    @Test("adding or removing a channel is refused naming the channels")
    func channelSetIsRefused() throws {
        let base = try reloadTestBase()
        var h = try ReloadHarness(base)
        let text = base.replacingOccurrences(of: "[channels.B", with: "[channels.C")
        guard case .failure(let e) = try h.reload(text) else { Issue.record("accepted"); return }
        #expect(e.key == "channels" && e.message.contains("A, B → A, C"), "\(e)")
    }
}
