import Foundation
import Testing
import PressEIS
import PressProtocol

/// Writes EIS spectra the way an analyser's software does: one file per spectrum, as
/// CSV with the spectrum's start time.
enum SpectrumFiles {
    /// R_b + (R_int ‖ CPE) from 1 MHz to 0.1 Hz, 8 points per decade, with a small
    /// deterministic ripple standing in for noise.
    static func csv(bulk: Double, interfacial: Double, acquiredAt: Date, seed: Int = 0) -> String {
        let c = CircuitParameters(bulkResistance: bulk, interfacialResistance: interfacial, cpeQ: 1e-6, cpeAlpha: 0.9)
        let freqs = (0...56).map { pow(10, 6 - Double($0) / 8) }
        var s = "# acquired_at: \(ISO8601DateFormatter().string(from: acquiredAt))\nfrequency,Zreal,Zimag\n"
        for (i, f) in freqs.enumerated() {
            let z = c.impedance(atFrequency: f)
            let k = 1 + 0.003 * sin(Double(i * 7 + seed) * 1.7)
            s += "\(f),\(z.real * k),\(z.imaginary * k)\n"
        }
        return s
    }

    /// Publishes `text` as `dir/name` whole (write, then rename), as rsync does.
    static func publish(_ text: String, dir: String, name: String) throws {
        let tmp = dir + "/." + name + ".part"
        try text.write(toFile: tmp, atomically: false, encoding: .utf8)
        try FileManager.default.moveItem(atPath: tmp, toPath: dir + "/" + name)
    }
}

@Suite("Impedance spectra from an analyser's directory, through a running pressd")
struct SpectrumIntakeTests {
    @Test("a spectrum file becomes the channel's interfacial and bulk resistance, dated by the spectrum; bad, stale and future files are rejected with the file named")
    func filesBecomeSignals() throws {
        let spectra = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-eis-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: spectra, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: spectra) }
        // A's directory does not exist yet (a share not mounted): B is watched all the same.
        let missing = spectra + "-A"
        defer { try? FileManager.default.removeItem(atPath: missing) }
        let d = try DaemonProcess(configEdits: [("[channels.B.sim]", "[channels.B.impedance]\nspectra_dir = \"\(spectra)\"\n\n[channels.B.sim]"),
                                                ("[channels.A.sim]", "[channels.A.impedance]\nspectra_dir = \"\(missing)\"\n\n[channels.A.sim]")], timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        // B's cell is 2 cm²: 20 Ω of interfacial resistance is 40 Ω·cm².
        try SpectrumFiles.publish(SpectrumFiles.csv(bulk: 6, interfacial: 20, acquiredAt: Date().addingTimeInterval(-30)), dir: spectra, name: "b_001.csv")
        var b: ChannelStatus?
        let end = Date().addingTimeInterval(10)
        while Date() < end {
            b = try c.status().channels.first { $0.name == "B" }
            if let r = b?.interfacialResistanceOhmCm2, abs(r - 40) < 2 { break }
            usleep(100_000)
        }
        let st = try #require(b)
        #expect(abs((st.interfacialResistanceOhmCm2 ?? 0) - 40) < 0.8, "R_int \(st.interfacialResistanceOhmCm2 ?? .nan) Ω·cm²")
        #expect(abs((st.bulkResistanceOhmCm2 ?? 0) - 12) < 0.3, "R_b \(st.bulkResistanceOhmCm2 ?? .nan) Ω·cm²")
        // Acquired 30 s ago on the wall clock: 150 s of plant time at ×5, not "now".
        let age = try #require(st.interfacialResistanceAgeS)
        #expect(age > 140 && age < 200, "age \(age) s")

        // Written in place (closed after writing), not renamed: also taken.
        try "not a spectrum at all\n1,2\n".write(toFile: spectra + "/broken.csv", atomically: false, encoding: .utf8)
        try SpectrumFiles.publish(SpectrumFiles.csv(bulk: 6, interfacial: 25, acquiredAt: Date().addingTimeInterval(-2 * 86400)), dir: spectra, name: "old.csv")
        try SpectrumFiles.publish(SpectrumFiles.csv(bulk: 6, interfacial: 25, acquiredAt: Date().addingTimeInterval(3600)), dir: spectra, name: "future.csv")
        // A time series, not a spectrum: refused by its point count, at once.
        var long = "frequency,Zreal,Zimag\n"
        for k in 0..<3000 { long += "\(1e6 / Double(k + 1)),\(10 + Double(k) * 0.01),-\(1 + Double(k % 7))\n" }
        try SpectrumFiles.publish(long, dir: spectra, name: "long.csv")
        // A symbolic link is not followed (moved in, so that the watch sees it).
        try FileManager.default.createSymbolicLink(atPath: spectra + "/.link", withDestinationPath: "/etc/passwd")
        try FileManager.default.moveItem(atPath: spectra + "/.link", toPath: spectra + "/link.csv")
        var events: [LogEventInfo] = []
        let end2 = Date().addingTimeInterval(10)
        while Date() < end2 {
            events = try c.call("log_events", LogExportParams(since: 0, until: Date().timeIntervalSince1970 + 86400, channel: "B"), as: LogEventsResult.self)
                .events.filter { $0.kind == "impedance" }
            if events.count >= 6 { break }
            usleep(200_000)
        }
        let text = events.map(\.detail).joined(separator: "\n")
        #expect(events.contains { $0.detail.hasPrefix("spectrum b_001.csv (CSV with header, 57 points") && $0.detail.contains("R_int 40") }, "\(text)")
        #expect(events.contains { $0.detail.hasPrefix("spectrum broken.csv rejected:") }, "\(text)")
        #expect(events.contains { $0.detail.hasPrefix("spectrum old.csv") && $0.detail.contains("not used") && $0.detail.contains("pushed_stale_after_s") }, "\(text)")
        #expect(events.contains { $0.detail.hasPrefix("spectrum future.csv rejected:") && $0.detail.contains("future") }, "\(text)")
        #expect(events.contains { $0.detail.hasPrefix("spectrum link.csv rejected:") && $0.detail.contains("symbolic link") }, "\(text)")
        #expect(events.contains { $0.detail.hasPrefix("spectrum long.csv rejected: 3000 points") }, "\(text)")
        #expect(!events.contains { $0.detail.contains(".b_001.csv.part") }, "a writer's temporary file is not taken")
        // None of them replaced the good value.
        let after = try #require(try c.status().channels.first { $0.name == "B" })
        #expect(abs((after.interfacialResistanceOhmCm2 ?? 0) - 40) < 0.8)

        // A's directory appears: watched within seconds, its spectra used.
        let aEvents = try c.call("log_events", LogExportParams(since: 0, until: Date().timeIntervalSince1970 + 86400, channel: "A"), as: LogEventsResult.self).events
        #expect(aEvents.contains { $0.channel == "A" && $0.kind == "impedance" && $0.detail.contains("not watched") }, "\(aEvents.map(\.detail))")
        try FileManager.default.createDirectory(atPath: missing, withIntermediateDirectories: true)
        var aR: Double?
        let end3 = Date().addingTimeInterval(20)
        while Date() < end3 {
            if (try? c.status().channels.first { $0.name == "A" }?.bulkResistanceOhmCm2) ?? nil == nil {
                try? SpectrumFiles.publish(SpectrumFiles.csv(bulk: 5, interfacial: 33, acquiredAt: Date().addingTimeInterval(-5)), dir: missing, name: "a_\(Int(Date().timeIntervalSince1970 * 10)).csv")
            }
            aR = try c.status().channels.first { $0.name == "A" }?.bulkResistanceOhmCm2
            if aR != nil { break }
            usleep(1_000_000)
        }
        #expect(abs((aR ?? 0) - 5) < 0.3, "A's spectra used once its directory exists: R_b \(aR ?? .nan)")
    }
}

/// Runs against the wall clock (in the serial timing suites: the name ends in
/// IntegrationTests).
@Suite("A CSP sweep fed by an analyser's spectrum files every 120 s, through a running pressd")
struct SpectrumSweepIntegrationTests {
    @Test("the knee within ±0.3 MPa of the cell's, each level scored only with spectra begun after it settled")
    func sweepFromFiles() throws {
        let spectra = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-eis-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: spectra, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: spectra) }
        let scale = 50.0
        let d = try DaemonProcess(configEdits: [("[channels.A.sim]", "[channels.A.impedance]\nspectra_dir = \"\(spectra)\"\n\n[channels.A.sim]")], timeScale: scale)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 6, unit: "MPa"), as: SetResult.self)
        // The analyser: every 120 s of plant time a spectrum starts; it takes 100 s (a
        // sweep down to low frequency takes minutes) and measures the resistance the
        // cell has over that time; its file arrives when it ends, dated by its start.
        // The cell's interfacial resistance follows a knee at 3 MPa (1 cm²: Ω = Ω·cm²).
        let stop = SharedFlag(false)
        let analyser = Thread {
            let status = try? ControlClient(path: d.socket)
            var n = 0
            while !stop.load() {
                let start = Date()
                var rs: [Double] = []
                for _ in 0..<5 {
                    if let p = (try? status?.status().channels.first { $0.name == "A" }?.pressureMpa) ?? nil {
                        rs.append(20 + 200 / (1 + pow(max(p, 0) / 3, 4)))
                    }
                    Thread.sleep(forTimeInterval: 20 / scale)
                }
                if !rs.isEmpty {
                    n += 1
                    try? SpectrumFiles.publish(SpectrumFiles.csv(bulk: 8, interfacial: rs.reduce(0, +) / Double(rs.count), acquiredAt: start, seed: n),
                                               dir: spectra, name: String(format: "A_%04d.csv", n))
                }
                Thread.sleep(forTimeInterval: max(0, 120 / scale - Date().timeIntervalSince(start)))
            }
        }
        analyser.start()
        defer { stop.store(true) }
        usleep(UInt32(150 / scale * 1e6)) // at 6 MPa with the first spectrum in
        _ = try c.call("sweep", SweepParams(channel: "A", action: .start, fromMpa: 6, toMpa: 1.8, steps: 7, dwellS: 60, minMeasurements: 2),
                       as: ActionResult.self)
        var result: SweepInfo?
        let end = Date().addingTimeInterval(3 * 3600 / scale)
        while Date() < end {
            usleep(500_000)
            let ctl = try c.status().channels.first { $0.name == "A" }?.control
            if ctl?.sweep == nil, let r = ctl?.lastSweep { result = r; break }
        }
        let r = try #require(result, "the sweep did not finish within 3 h of plant time")
        let faults = try c.call("log_events", LogExportParams(since: 0, until: Date().timeIntervalSince1970 + 86400 * 30, channel: "A"), as: LogEventsResult.self)
            .events.filter { $0.kind == "fault" }.map(\.detail)
        #expect(r.status == "done", "\(r.note ?? "") \(faults)")
        let csp = try #require(r.cspMpa, "\(r.note ?? "no fit")")
        #expect(abs(csp - 3) <= 0.3, "CSP \(csp) MPa from spectrum files, knee at 3")
        for p in r.points {
            #expect(p.samples >= 2 && p.samples <= 8, "\(p.samples) spectra at \(p.setpointMpa) MPa")
            // Scored at the right pressure: the resistance the cell has at this level,
            // not a spectrum taken while the pressure was still on its way.
            let truth = 20 + 200 / (1 + pow(p.pressureMpa / 3, 4))
            #expect(abs(p.resistanceOhmCm2 / truth - 1) < 0.02, "at \(p.pressureMpa) MPa: \(p.resistanceOhmCm2) Ω·cm², the cell's \(truth)")
        }
    }
}

/// A flag shared with a thread.
final class SharedFlag<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func load() -> T { lock.withLock { value } }
    func store(_ v: T) { lock.withLock { value = v } }
}

@Suite("Reading the run log without a daemon")
struct OfflineLogTests {
    @Test("log export and log events with --state-dir: beside the running daemon the same CSV as through it; after kill -9 still readable, nothing written")
    func offline() throws {
        let d = try DaemonProcess(timeScale: 1) // log times are wall-clock times
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 4, unit: "MPa"), as: SetResult.self)
        usleep(5_000_000)
        let until = "\(Int(Date().timeIntervalSince1970) - 1)"
        let viaDaemon = try runProcess(binDir + "/pressctl", ["log", "export", "--since", "1h", "--until", until, "--socket", d.socket])
        let direct = try runProcess(binDir + "/pressctl", ["log", "export", "--since", "1h", "--until", until, "--state-dir", d.dir + "/state"])
        #expect(viaDaemon.status == 0 && direct.status == 0, "\(direct.stderr)")
        #expect(direct.stdout.split(separator: "\n").count >= 4, "\(direct.stdout)")
        #expect(direct.stdout == viaDaemon.stdout, "the same rows, byte for byte")
        d.kill9()
        let db = d.dir + "/state/runlog.sqlite"
        let before = try FileManager.default.attributesOfItem(atPath: db)[.modificationDate] as? Date
        let ev = try runProcess(binDir + "/pressctl", ["log", "events", "--since", "1h", "--state-dir", d.dir + "/state", "-c", "A", "--kind", "setpoint"])
        #expect(ev.status == 0 && ev.stdout.contains("setpoint"), "\(ev.stdout) \(ev.stderr)")
        #expect((try FileManager.default.attributesOfItem(atPath: db)[.modificationDate] as? Date) == before, "read-only: the database was not touched")
        let missing = try runProcess(binDir + "/pressctl", ["log", "events", "--state-dir", "/nonexistent"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/runlog.sqlite does not exist"), "\(missing.stderr)")
    }
}
