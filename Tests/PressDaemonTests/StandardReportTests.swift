import Foundation
import Testing
import PressProtocol

@Suite("CSP sweep, supervisor and the standard pressure report through the daemon", .serialized)
struct StandardReportTests {
    @Test("a sweep over the socket finds the simulated knee; the report from the real run log has every section, its JSON and its plots")
    func sweepAndReport() throws {
        // Channel A with the sulfide preset whose limits the file overrides: allowed, with warnings.
        let d = try DaemonProcess(configEdits: [("[channels.A.limits]\n", "[channels.A.limits]\npreset = \"sulfide\"\n")], timeScale: 20)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("run_set", RunSetParams(channel: "A", metadata: RunMetadataInfo(cellId: "LPSC-12", chemistry: "Li|Li6PS5Cl|NMC811",
                                                                                       preparationPressureMpa: 375)), as: RunResult.self)
        _ = try c.call("set", SetParams(channel: "A", value: 8, unit: "MPa"), as: SetResult.self)
        usleep(1_000_000)
        let sweep = try runProcess(binDir + "/pressctl", ["sweep", "-c", "A", "--from", "8", "--to", "1", "--steps", "12", "--dwell", "8", "--socket", d.socket])
        #expect(sweep.status == 0, "\(sweep.stdout)\(sweep.stderr)")
        #expect(sweep.stdout.contains("level 3/12 measured"), "progress: \(sweep.stdout)")
        #expect(sweep.stdout.contains("critical stack pressure"), "\(sweep.stdout)")
        let st = try #require(try c.status().channels.first { $0.name == "A" })
        let last = try #require(st.control?.lastSweep)
        let csp = try #require(last.cspMpa)
        #expect(abs(csp - 3) <= 0.3, "CSP \(csp) for the simulator's knee at 3 MPa")
        // The criteria beyond the knee reach the wire and pressctl's output.
        #expect(last.p90LowMpa != nil && last.p90HighMpa != nil && last.direction == "down" && last.sweepProtocol == "static")
        let pm = try #require(last.margin?.pressureMpa)
        #expect(pm > csp, "P_m \(pm) above the knee \(csp)")
        #expect(last.legs?.count == 1 && last.summary?.contains("margin pressure") == true)
        #expect(sweep.stdout.contains("margin pressure P_m"), "\(sweep.stdout)")
        #expect(st.setpointMpa == 8, "back to the starting pressure")
        #expect(st.chemistryPreset == "sulfide")
        usleep(1_500_000) // the run-log writer stores the sweep

        let stem = d.dir + "/std"
        let tomorrow = String(Int(Date().timeIntervalSince1970 + 86400))
        let r = try runProcess(binDir + "/pressctl", ["report", "-c", "A", "--since", "1h", "--until", tomorrow, "-o", stem, "--socket", d.socket])
        #expect(r.status == 0, "\(r.stderr)")
        let md = try String(contentsOfFile: stem + ".md", encoding: .utf8)
        #expect(md.contains("| preparation (fabrication) pressure | 375.0 MPa |"))
        #expect(md.contains("| stack pressure setpoints (regulated by pressd) | ") && md.contains("8.000 MPa for"), "\(md)")
        #expect(md.contains("(limits from the `sulfide` preset)"))
        #expect(md.contains("## Where pressure was measured, and how uniform it was"))
        #expect(md.contains("one load cell: not measurable"))
        #expect(md.contains("## Time in band"))
        #expect(md.contains("**CSP 3.") || md.contains("**CSP 2.") , "\(md)")
        #expect(md.contains("**Margin pressure P_m ") && md.contains("(95 % interval"), "\(md)")
        #expect(md.contains("| stack pressure, MPa | interfacial resistance, Ω·cm² |"))
        #expect(md.contains("## Faults (0)"))
        #expect(md.contains("overrides the 'sulfide' preset (2.0 MPa) with 0.1 MPa"), "the override warning is in the interventions")
        #expect(md.contains("request (uid \(getuid())): {\"id\"") && md.contains("\"method\":\"sweep\""), "the sweep request is audited with its uid")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stem + ".json"))) as! [String: Any]
        let pressures = json["pressures"] as! [String: Any]
        #expect(pressures["preparation_pressure_mpa"] as? Double == 375)
        let sweeps = json["critical_stack_pressure"] as! [[String: Any]]
        #expect(sweeps.count == 1)
        let s0 = sweeps[0]["sweep"] as! [String: Any]
        #expect(abs((s0["csp_mpa"] as? Double ?? 0) - 3) <= 0.3)
        #expect((s0["points"] as? [Any])?.count == 12)
        let plot = try String(contentsOfFile: d.dir + "/std-csp-1.svg", encoding: .utf8)
        #expect(plot.contains("CSP ") && plot.contains("<circle"))
        #expect(FileManager.default.fileExists(atPath: stem + ".svg"))
    }

    @Test("push_signals over the socket: the value is used, bad values are refused with the parameter named")
    func push() throws {
        let d = try DaemonProcess(timeScale: 1)
        defer { d.cleanup() }
        let c = try d.client()
        let ok = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance", "77.5", "--socket", d.socket])
        #expect(ok.status == 0 && ok.stdout.contains("B: stored"), "\(ok.stderr)")
        usleep(100_000)
        #expect(try c.status().channels.first { $0.name == "B" }?.interfacialResistanceOhmCm2 == 77.5)
        let bad = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance=-3", "--socket", d.socket])
        #expect(bad.status == 1 && bad.stderr.contains("invalid_params") && bad.stderr.contains("interfacial_resistance_ohm_cm2"), "\(bad.stderr)")
        let none = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--socket", d.socket])
        #expect(none.status != 0)
        // The spectrum's time: accepted when recent, refused from the future or when
        // already stale, with the parameter named.
        let recent = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-60))
        let old = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance", "70", "--acquired-at", recent, "--socket", d.socket])
        #expect(old.status == 0, "\(old.stderr)")
        let future = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance", "70", "--acquired-at", "\(Date().timeIntervalSince1970 + 3600)", "--socket", d.socket])
        #expect(future.status == 1 && future.stderr.contains("acquired_at") && future.stderr.contains("future"), "\(future.stderr)")
        let stale = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance", "70", "--acquired-at", "2020-01-01T00:00:00Z", "--socket", d.socket])
        #expect(stale.status == 1 && stale.stderr.contains("pushed_stale_after_s"), "\(stale.stderr)")
        // Common options before the subcommand; an unknown subcommand gets the nearest.
        let before = try runProcess(binDir + "/pressctl", ["--socket", d.socket, "--json", "status", "-c", "B"])
        #expect(before.status == 0 && before.stdout.contains("\"channels\""), "\(before.stderr)")
        let typo = try runProcess(binDir + "/pressctl", ["stauts", "--socket", d.socket])
        #expect(typo.status == 64 && typo.stderr.contains("did you mean 'status'?"), "\(typo.stderr)")
        // With --json a refusal is JSON too; log export refuses --json instead of
        // printing CSV.
        let refusedJSON = try runProcess(binDir + "/pressctl", ["set", "99MPa", "-c", "B", "--json", "--socket", d.socket])
        #expect(refusedJSON.status == 1, "\(refusedJSON.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(refusedJSON.stdout.utf8)) as? [String: [String: String]]
        #expect(obj?["error"]?["code"] == "out_of_range" && obj?["error"]?["message"]?.contains("99") == true, "\(refusedJSON.stdout)")
        let usageJSON = try runProcess(binDir + "/pressctl", ["--json", "set", "5mpa", "-c", "B", "--socket", d.socket])
        let usage = try JSONSerialization.jsonObject(with: Data(usageJSON.stdout.utf8)) as? [String: [String: String]]
        #expect(usageJSON.status == 64 && usage?["error"]?["code"] == "usage" && usage?["error"]?["message"]?.contains("did you mean MPa?") == true, "\(usageJSON.stdout)")
        // A negative value is a value, refused by the daemon with the parameter named.
        let negative = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance", "-5", "--socket", d.socket])
        #expect(negative.status == 1 && negative.stderr.contains("interfacial_resistance_ohm_cm2 must be > 0"), "\(negative.stderr)")
        let exportJSON = try runProcess(binDir + "/pressctl", ["log", "export", "--json", "--socket", d.socket])
        #expect(exportJSON.status == 64 && exportJSON.stderr.contains("CSV only"), "\(exportJSON.stderr)")
        // One version: pressctl's, pressd's hello and status agree.
        let v = try runProcess(binDir + "/pressctl", ["--version"])
        let statusVersion = try c.status().version
        #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == c.hello?.version && c.hello?.version == statusVersion, "pressctl \(v.stdout) vs hello \(c.hello?.version ?? "-")")
        // Absurd numbers are refused by name and never crash the daemon (a 1e300 once
        // trapped converting to Int for the message).
        for params in [#""acquired_at": 1e300, "interfacial_resistance_ohm_cm2": 30"#, #""acquired_at": -1e300, "interfacial_resistance_ohm_cm2": 30"#,
                       #""interfacial_resistance_ohm_cm2": 1e308"#, #""voltage_v": 1e300"#] {
            let r = try c.rawCall(#"{"id": 11, "method": "push_signals", "params": {"channel": "B", "# + params + "}}")
            #expect(r.errorCode == "invalid_params", "\(params): \(r)")
        }
        let sweepHuge = try c.rawCall(#"{"id": 12, "method": "sweep", "params": {"channel": "B", "action": "start", "from_mpa": 6, "to_mpa": 1, "dwell_s": 1e300}}"#)
        #expect(sweepHuge.errorCode != nil, "\(sweepHuge)")
        #expect(try c.status().channels.count == 2, "still running")
        // A unit in the wrong case over the socket: refused, the unit meant named.
        let wrong = try c.rawCall(#"{"id": 9, "method": "set", "params": {"channel": "B", "value": 5, "unit": "mPa"}}"#)
        #expect(wrong.errorCode == "invalid_params" && (wrong.errorMessage ?? "").contains("did you mean MPa?"), "\(wrong)")
        let garbage = try runProcess(binDir + "/pressctl", ["push", "-c", "B", "--resistance", "70", "--acquired-at", "yesterday", "--socket", d.socket])
        #expect(garbage.status != 0 && garbage.stderr.contains("--acquired-at"), "\(garbage.stderr)")
    }

    @Test("the supervisor over the socket: enabled by configuration, locked by an operator setpoint, unlocked by pressctl, moving the setpoint with reasons")
    func supervisor() throws {
        let d = try DaemonProcess(configEdits: [("[channels.A.sim]", """
            [channels.A.supervisor]
            enabled = true
            window_min_mpa = 2
            window_max_mpa = 8
            margin = 0.2
            step_mpa = 0.5
            interval_s = 20
            settle_s = 5

            [channels.A.sim]
            """)], timeScale: 20)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 8, unit: "MPa"), as: SetResult.self)
        // The reply comes as the command is applied; the snapshot status reads is the
        // next tick's.
        var st = try #require(try c.status().channels.first { $0.name == "A" }?.control?.supervisor)
        for _ in 0..<20 where !st.locked {
            usleep(50_000)
            st = try #require(try c.status().channels.first { $0.name == "A" }?.control?.supervisor)
        }
        #expect(st.locked && (st.lockReason ?? "").contains("operator set a setpoint"))
        let un = try runProcess(binDir + "/pressctl", ["supervisor", "unlock", "-c", "A", "--socket", d.socket])
        #expect(un.status == 0, "\(un.stderr)")
        usleep(6_000_000) // 120 s of plant time: several decisions
        let a = try #require(try c.status().channels.first { $0.name == "A" })
        st = try #require(a.control?.supervisor)
        #expect(!st.locked)
        #expect((a.setpointMpa ?? 8) < 8, "it lowered the pressure while R stayed within the margin")
        #expect((a.setpointMpa ?? 0) >= 2)
        let lock = try runProcess(binDir + "/pressctl", ["supervisor", "lock", "-c", "A", "--socket", d.socket])
        #expect(lock.status == 0)
        let held = try c.status().channels.first { $0.name == "A" }!.setpointMpa
        usleep(2_500_000)
        #expect(try c.status().channels.first { $0.name == "A" }!.setpointMpa == held)
        let ev = try c.call("log_events", LogExportParams(since: 0, until: Date().timeIntervalSince1970 + 86400, channel: "A"), as: LogEventsResult.self).events
        let moves = ev.filter { $0.kind == "supervisor" && $0.detail.contains("→") }
        #expect(!moves.isEmpty && moves.allSatisfy { $0.detail.contains("Ω·cm²") })
        // B has no supervisor: refused with the reason.
        let b = try runProcess(binDir + "/pressctl", ["supervisor", "lock", "-c", "B", "--socket", d.socket])
        #expect(b.status == 1 && b.stderr.contains("not enabled"))
    }
}
