import Foundation
import Testing
import PressCore
@testable import PressDaemon

/// The repository root, found from this file's path.
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let defaultConfigPath = repoRoot + "/config/pressd.toml"

func defaultConfigText() throws -> String { try String(contentsOfFile: defaultConfigPath, encoding: .utf8) }

/// Replaces the first occurrence of `old` in the default config.
func editedConfig(_ old: String, _ new: String) throws -> String {
    let text = try defaultConfigText()
    guard let r = text.range(of: old) else { throw CancellationError() }
    return text.replacingCharacters(in: r, with: new)
}

/// The 1-based line of the first occurrence of `needle` in `text`.
func line(of needle: String, in text: String) -> Int? {
    text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(needle) }.map { $0 + 1 }
}

@Suite("Configuration")
struct ConfigTests {
    @Test("the shipped default config is valid and describes the two-channel simulated rig")
    func defaultConfig() throws {
        let c = try DaemonConfig.load(path: defaultConfigPath)
        #expect(c.channels.map(\.name) == ["A", "B"])
        #expect(c.channels[0].actuator == .springFixture)
        #expect(c.channels[1].actuator == .pneumatic)
        #expect(c.backend == .simulator)
        #expect(c.loopRate == 100)
    }

    func expectError(_ text: String, key: String?, line expectedLine: Int?, contains fragment: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try DaemonConfig.parse(text, file: "/etc/pressd/test.toml")
            Issue.record("config was accepted", sourceLocation: sourceLocation)
        } catch {
            #expect(error.file == "/etc/pressd/test.toml", sourceLocation: sourceLocation)
            #expect(error.key == key, sourceLocation: sourceLocation)
            #expect(error.line == expectedLine, sourceLocation: sourceLocation)
            #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix("/etc/pressd/test.toml:\(expectedLine.map(String.init) ?? "")"), sourceLocation: sourceLocation)
        }
    }

    @Test("a wrong type names file, line and key")
    func wrongType() throws {
        let t = try editedConfig("kp = 100 ", "kp = \"fast\" ")
        expectError(t, key: "channels.A.pid.kp", line: line(of: "kp = \"fast\"", in: t), contains: "must be a number")
    }

    @Test("[channels.X.short_detection]: on by default, its keys parsed, short_safe_mpa checked against the limits; a voltage_v signal role")
    func shortDetection() throws {
        let d = try DaemonConfig.parse(try defaultConfigText(), file: "t.toml")
        #expect(d.channels[0].control.shortDetection == ShortDetectionSettings())
        let t = try editedConfig("[channels.A.sim]", "[channels.A.short_detection]\ncollapse_v = 0.1\nholdoff_s = 30\nshort_safe_mpa = 1.5\nwhile_discharging = true\n\n[channels.A.sim]")
        let s = try #require(try DaemonConfig.parse(t, file: "t.toml").channels[0].control.shortDetection)
        #expect(s.collapseVolts == 0.1 && s.holdoff == 30 && s.safePressure == 1.5 && s.whileDischarging)
        let off = try editedConfig("[channels.A.sim]", "[channels.A.short_detection]\nenabled = false\n\n[channels.A.sim]")
        #expect(try DaemonConfig.parse(off, file: "t.toml").channels[0].control.shortDetection == nil)
        let bad = try editedConfig("[channels.A.sim]", "[channels.A.short_detection]\nshort_safe_mpa = 50\n\n[channels.A.sim]")
        expectError(bad, key: "channels.A.short_detection.short_safe_mpa", line: line(of: "short_safe_mpa = 50", in: bad), contains: "below trip_mpa")
        #expect(SignalRole(rawValue: "voltage_v") == .signal(.voltage))
        #expect(SignalRole(rawValue: "thickness_um") == .signal(.thickness))
    }

    @Test("non-uniformity: judged above nonuniformity_min_force_n (default: none, the core's 5 % of range_n); out of range refused by key and line")
    func nonUniformityThreshold() throws {
        let d = try DaemonConfig.parse(try defaultConfigText(), file: "t.toml")
        #expect(d.channels[0].control.nonUniformityMinForce == nil)
        let t = try editedConfig("range_n = [-50, 2000]\n", "range_n = [-50, 2000]\nnonuniformity_alarm_percent = 10\nnonuniformity_min_force_n = 250\n")
        let c = try DaemonConfig.parse(t, file: "t.toml").channels[0].control
        #expect(c.nonUniformityAlarm == 0.1 && c.nonUniformityMinForce == 250)
        let bad = try editedConfig("range_n = [-50, 2000]\n", "range_n = [-50, 2000]\nnonuniformity_min_force_n = 5000\n")
        expectError(bad, key: "channels.A.sensor.nonuniformity_min_force_n", line: line(of: "nonuniformity_min_force_n = 5000", in: bad), contains: "0…2000")
    }

    @Test("[channels.X.impedance] date_order: month_first or day_first beside time_zone; anything else named with its line")
    func impedanceDateOrder() throws {
        let t = try editedConfig("[channels.A.sim]", "[channels.A.impedance]\nspectra_dir = \"/srv/s\"\ntime_zone = \"UTC\"\ndate_order = \"day_first\"\n\n[channels.A.sim]")
        let s = try #require(try DaemonConfig.parse(t, file: "t.toml").channels[0].spectra)
        #expect(s.dateOrder == .dayFirst && s.timeZone == "UTC")
        let unset = try editedConfig("[channels.A.sim]", "[channels.A.impedance]\nspectra_dir = \"/srv/s\"\n\n[channels.A.sim]")
        #expect(try DaemonConfig.parse(unset, file: "t.toml").channels[0].spectra?.dateOrder == nil)
        let bad = try editedConfig("[channels.A.sim]", "[channels.A.impedance]\nspectra_dir = \"/srv/s\"\ndate_order = \"DD.MM\"\n\n[channels.A.sim]")
        expectError(bad, key: "channels.A.impedance.date_order", line: line(of: "date_order", in: bad), contains: "month_first")
    }

    @Test("a misspelt key is rejected, not ignored")
    func unknownKey() throws {
        let t = try editedConfig("trip_mpa = 15.0", "trip_mpa = 15.0\ntrip_mpaa = 16.0")
        expectError(t, key: "channels.A.limits.trip_mpaa", line: line(of: "trip_mpaa", in: t), contains: "unknown key")
    }

    @Test("a trip level at or below the highest setpoint is refused")
    func tripBelowMax() throws {
        let t = try editedConfig("trip_mpa = 10.0", "trip_mpa = 9.0")
        expectError(t, key: "channels.B.limits.trip_mpa", line: line(of: "trip_mpa = 9.0", in: t), contains: "above max_mpa")
    }

    @Test("a missing required key points at its table")
    func missingRequired() throws {
        let t = try editedConfig("max_mpa = 12.0\n", "")
        expectError(t, key: "channels.A.limits.max_mpa", line: line(of: "[channels.A.limits]", in: t), contains: "is required")
    }

    @Test("an invalid choice lists the valid ones")
    func badChoice() throws {
        let t = try editedConfig("trip_action = \"release\"", "trip_action = \"explode\"")
        expectError(t, key: "channels.A.limits.trip_action", line: line(of: "explode", in: t), contains: "hold, release")
    }

    @Test("an unknown chemistry preset lists the known ones")
    func unknownPreset() throws {
        let t = try editedConfig("[channels.A.limits]\n", "[channels.A.limits]\npreset = \"unobtainium\"\n")
        expectError(t, key: "channels.A.limits.preset", line: line(of: "unobtainium", in: t), contains: "polymer/li-metal, sulfide/li-metal, sulfide/li-in")
    }

    @Test("a preset supplies the limits; an override is accepted with a warning naming file, line, key and the preset's value")
    func presetOverride() throws {
        let base = try editedConfig("[channels.A.limits]\n", "[channels.A.limits]\npreset = \"sulfide/li-metal\"\n")
        let t = base.replacingOccurrences(of: "min_mpa = 0.1\nmax_mpa = 12.0\ntrip_mpa = 15.0\n", with: "max_mpa = 11.0\n")
        let c = try DaemonConfig.parse(t, file: "p.toml")
        let l = c.channels[0].control.limits
        #expect(l.minSetpoint == 3 && l.maxSetpoint == 11 && l.trip == 12)
        #expect(c.channels[0].preset == "sulfide/li-metal")
        #expect(c.warnings == ["p.toml:\(line(of: "max_mpa = 11.0", in: t)!): channels.A.limits.max_mpa: overrides the 'sulfide/li-metal' preset (10.0 MPa) with 11.0 MPa"])
    }

    @Test("an old preset name loads with a warning naming its replacement and the other anodes")
    func legacyPreset() throws {
        let base = try editedConfig("[channels.A.limits]\n", "[channels.A.limits]\npreset = \"sulfide\"\n")
        let t = base.replacingOccurrences(of: "min_mpa = 0.1\nmax_mpa = 12.0\ntrip_mpa = 15.0\n", with: "")
        let c = try DaemonConfig.parse(t, file: "p.toml")
        #expect(c.channels[0].preset == "sulfide/li-metal")
        #expect(c.channels[0].control.limits.trip == 12)
        let w = try #require(c.warnings.first)
        #expect(w.hasPrefix("p.toml:\(line(of: "preset = \"sulfide\"", in: t)!): channels.A.limits.preset: 'sulfide' is an old preset name, replaced by 'sulfide/li-metal'"), "\(w)")
        #expect(w.contains("'sulfide/li-in'") && w.contains("'sulfide/si'"), "\(w)")
    }

    @Test("capacity: the oxide/li-in preset (trip 48 MPa) on the default 1 cm² cell needs 4.8 kN, beyond the 2 kN load cell: refused naming file, line and keys")
    func capacityLoadCell() throws {
        let base = try editedConfig("[channels.A.limits]\n", "[channels.A.limits]\npreset = \"oxide/li-in\"\n")
        let t = base.replacingOccurrences(of: "min_mpa = 0.1\nmax_mpa = 12.0\ntrip_mpa = 15.0\n", with: "")
        let rangeLine = line(of: "range_n = [-50, 2000]", in: t)!, areaLine = line(of: "cell_area_cm2 = 1.0", in: t)!
        expectError(t, key: "channels.A.limits.preset", line: line(of: "oxide/li-in", in: t),
                    contains: "trip 48 MPa (from the 'oxide/li-in' preset) on 1 cm² is 4800 N, beyond the load cell's 2000 N (channels.A.sensor.range_n (line \(rangeLine)), channels.A.cell_area_cm2 (line \(areaLine)))")
        // An explicit trip is named itself; a big enough load cell is accepted.
        let explicit = try editedConfig("trip_mpa = 15.0", "trip_mpa = 25.0")
        expectError(explicit, key: "channels.A.limits.trip_mpa", line: line(of: "trip_mpa = 25.0", in: explicit), contains: "2500 N, beyond the load cell's 2000 N")
        let bigger = t.replacingOccurrences(of: "range_n = [-50, 2000]", with: "range_n = [-50, 5000]")
        #expect(try DaemonConfig.parse(bigger, file: "t.toml").channels[0].control.limits.trip == 48)
    }

    @Test("capacity: an actuator that cannot reach max × area is a warning naming the keys; the shipped config passes clean")
    func capacityActuator() throws {
        #expect(try DaemonConfig.parse(try defaultConfigText(), file: "t.toml").warnings.isEmpty)
        let t = try editedConfig("supply_mpa = 0.7", "supply_mpa = 0.4")
        let c = try DaemonConfig.parse(t, file: "t.toml")
        let w = try #require(c.warnings.first)
        // 0.4 MPa × 3117 mm² − 40 N = 1206.8 N < 9 MPa × 2 cm² = 1800 N.
        #expect(w.hasPrefix("t.toml:\(line(of: "max_mpa = 9.0", in: t)!): channels.B.limits.max_mpa: max 9 MPa on 2 cm² needs 1800 N; the actuator reaches 1206.8 N"), "\(w)")
        #expect(w.contains("channels.B.sim.supply_mpa (line \(line(of: "supply_mpa = 0.4", in: t)!))") && w.contains("channels.B.sim.bore_area_mm2"), "\(w)")
        #expect(w.contains("setpoints above 6.034 MPa cannot be held"), "\(w)")
        // Hardware: from the nominal gain; the shipped examples pass clean.
        for f in ["modbus-rtu-bus", "modbus-tcp-pneumatic", "rpi-hx711-stepper"] {
            #expect(try DaemonConfig.load(path: repoRoot + "/config/examples/\(f).toml").warnings.isEmpty, "\(f)")
        }
        let hwText = try String(contentsOfFile: repoRoot + "/config/examples/modbus-tcp-pneumatic.toml", encoding: .utf8)
            .replacingOccurrences(of: "output_max = 0.7          # the air supply", with: "output_max = 0.5")
        let hw = try DaemonConfig.parse(hwText, file: "hw.toml")
        // (0.5 − 0.0128) ÷ 0.0642 = 7.589 MPa < 9.
        #expect(hw.warnings.count == 1 && hw.warnings[0].contains("max 9 MPa is beyond what the actuator reaches by its nominal gain: (output_max 0.5 − feedforward_offset 0.0128) ÷ feedforward_gain 0.0642 = 7.589 MPa"), "\(hw.warnings)")
        #expect(hw.warnings.first?.contains("output_max (line \(line(of: "output_max = 0.5", in: hwText)!))") == true, "\(hw.warnings)")
        let spring = try editedConfig("gap_um = 500", "gap_um = 500\ntravel_um = 5000")
        let s = try DaemonConfig.parse(spring, file: "t.toml")
        #expect(s.warnings.count == 1 && s.warnings[0].contains("the actuator reaches 900 N (spring rate 0.2 N/µm × (travel 5000 µm − gap 500 µm)"), "\(s.warnings)")
    }

    @Test("control and supervisor keys are checked: strategy, an excursion, a window outside the limits, a misspelling")
    func controlKeys() throws {
        var t = try editedConfig("strategy = \"learned\"", "strategy = \"clairvoyant\"")
        expectError(t, key: "channels.A.control.strategy", line: line(of: "clairvoyant", in: t), contains: "pid, adaptive, learned")
        t = try editedConfig("autotune_excursion_mpa = 0.25", "autotune_excursion_mpa = -1")
        expectError(t, key: "channels.A.control.autotune_excursion_mpa", line: line(of: "autotune_excursion_mpa = -1", in: t), contains: "must be > 0")
        t = try editedConfig("feedforward_gain = 500", "feedforward_gain = 0")
        expectError(t, key: "channels.A.control.strategy", line: line(of: "strategy = \"learned\"", in: t), contains: "feedforward_gain")
        t = try editedConfig("[channels.A.sim]", "[channels.A.supervisor]\nenabled = true\nwindow_max_mpa = 30\n\n[channels.A.sim]")
        expectError(t, key: "channels.A.supervisor.window_max_mpa", line: line(of: "window_max_mpa = 30", in: t), contains: "max_mpa 12")
        t = try editedConfig("[channels.A.sim]", "[channels.A.supervisor]\nenabled = true\nmargn = 0.3\n\n[channels.A.sim]")
        expectError(t, key: "channels.A.supervisor.margn", line: line(of: "margn", in: t), contains: "unknown key")
    }

    @Test("a TOML syntax error gives the line")
    func syntax() throws {
        let t = try editedConfig("ki = 1500", "ki = = 1500")
        expectError(t, key: nil, line: line(of: "ki = = 1500", in: t), contains: "TOML syntax")
    }

    @Test("a channel loop rate that does not divide the loop rate is refused")
    func divider() throws {
        let t = try editedConfig("band_percent = 5", "band_percent = 5\nloop_rate_hz = 30")
        expectError(t, key: "channels.A.loop_rate_hz", line: line(of: "loop_rate_hz = 30", in: t), contains: "divide")
    }

    @Test("safe_output outside the actuator range is refused")
    func safeOutput() throws {
        let t = try editedConfig("safe_output = 0           # vented", "safe_output = 2")
        expectError(t, key: "channels.B.actuator.safe_output", line: line(of: "safe_output = 2", in: t), contains: "within")
    }

    @Test("no channels at all is an error")
    func noChannels() {
        expectError("[daemon]\nloop_rate_hz = 100\n", key: "channels", line: nil, contains: "no channels")
    }

    @Test("the key locator finds keys under dotted table headers")
    func locator() {
        let l = KeyLocator(source: "a = 1\n[x.y]\n# c\n  b = 2\n[\"q\"]\nz=3\n")
        #expect(l.line(of: "a") == 1)
        #expect(l.line(of: "x.y.b") == 4)
        #expect(l.line(of: "x.y.missing") == 2)
        #expect(l.line(of: "q.z") == 6)
    }
}

@Suite("Actuator play")
struct ActuatorPlayConfigTests {
    @Test("play_mpa reaches the channel's parameters (the shipped pneumatic channel: 0.2 MPa); a negative play is refused by key and line")
    func play() throws {
        let cfg = try DaemonConfig.load(path: defaultConfigPath)
        #expect(cfg.channels.first { $0.name == "B" }?.control.actuatorPlay == 0.2)
        #expect(cfg.channels.first { $0.name == "A" }?.control.actuatorPlay == 0)
        let text = try String(contentsOfFile: defaultConfigPath, encoding: .utf8).replacingOccurrences(of: "play_mpa = 0.2", with: "play_mpa = -1")
        do { _ = try DaemonConfig.parse(text, file: "p.toml"); Issue.record("a negative play was accepted") }
        catch { #expect(error.key == "channels.B.actuator.play_mpa" && error.line != nil, "\(error)") }
    }
}
