import Foundation
import Testing
import PressEIS
import PressProtocol

/// Spectrum files the way real analysers write them, and the way a hostile local user could,
/// through a running pressd (issues 24 and 25).
extension SpectrumFiles {
    /// An EC-Lab v11 PEIS export holding `loops` loops of 21 points (1 MHz → 10 Hz), each loop's
    /// R_int `interfacial + loop`, a DC row before each loop, `time/s` counting from the header's
    /// `Acquisition started on` (UTC), one loop every `every` seconds.
    static func ecLab(loops: Int, start: Date, every: Double = 20) -> String {
        let f = Formatter.ecLab
        var text = "EC-Lab ASCII FILE\r\nNb header lines : 6\r\n\r\nPotentio Electrochemical Impedance Spectroscopy\r\n"
        text += "Acquisition started on : \(f.string(from: start))\r\n"
        text += "freq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\t|Z|/Ohm\ttime/s\tcycle number\t\r\n"
        for loop in 0..<loops {
            let c = CircuitParameters(bulkResistance: 6, interfacialResistance: 20 + Double(loop), cpeQ: 1e-6, cpeAlpha: 0.9)
            let t0 = Double(loop) * every
            text += "0.0000000E+000\t0.0000000E+000\t0.0000000E+000\t0.0000000E+000\t\(t0)\t\(loop + 1)\r\n"
            for k in 0..<21 {
                let fr = pow(10, 6 - Double(k) / 4)
                let z = c.impedance(atFrequency: fr)
                let ripple = 1 + 0.002 * sin(Double(k * 7 + loop) * 1.7)
                text += "\(fr)\t\(z.real * ripple)\t\(-z.imaginary * ripple)\t\(hypot(z.real, z.imaginary))\t\(t0 + 1 + Double(k) * 0.5)\t\(loop + 1)\r\n"
            }
        }
        return text
    }

    /// A Gamry EISPOT file whose DATE is `date` (a placeholder when anonymised).
    static func gamry(date: String, time: String = "HH:MM:SS", interfacial: Double = 20) -> String {
        let c = CircuitParameters(bulkResistance: 6, interfacialResistance: interfacial, cpeQ: 1e-6, cpeAlpha: 0.9)
        var text = "EXPLAIN\r\nTAG\tEISPOT\r\nDATE\tLABEL\t\(date)\tDate\r\nTIME\tLABEL\t\(time)\tTime\r\nZCURVE\tTABLE\r\n\tPt\tTime\tFreq\tZreal\tZimag\r\n\t#\ts\tHz\tohm\tohm\r\n"
        for k in 0..<41 {
            let fr = pow(10, 6 - Double(k) / 6)
            let z = c.impedance(atFrequency: fr)
            let ripple = 1 + 0.002 * sin(Double(k) * 1.7)
            text += "\t\(k)\t\(k)\t\(fr)\t\(z.real * ripple)\t\(z.imaginary * ripple)\r\n"
        }
        return text
    }

    /// Writes in place (closed after writing: IN_CLOSE_WRITE), as an analyser writing directly does.
    static func write(_ text: String, dir: String, name: String) throws {
        try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
    }
}

enum Formatter {
    static let ecLab: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "UTC"); f.dateFormat = "MM/dd/yyyy HH:mm:ss.SSS"
        return f
    }()
}

/// A pressd with channel B reading a fresh spectra directory (in UTC); cleaned up by `cleanup`.
struct SpectrumRig {
    let spectra: String
    let daemon: DaemonProcess
    let client: ControlClient
    /// The daemon's stderr (its journal lines off systemd), drained as it comes so that a full
    /// pipe never blocks the daemon.
    let journal = SharedFlag<Data>(Data())

    init(extra: String = "") throws {
        spectra = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-eis-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: spectra, withIntermediateDirectories: true)
        daemon = try DaemonProcess(configEdits: [("[channels.B.sim]", "[channels.B.impedance]\nspectra_dir = \"\(spectra)\"\ntime_zone = \"UTC\"\n\(extra)\n[channels.B.sim]")], timeScale: 1)
        client = try daemon.client()
        let journal = self.journal
        daemon.stderr.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            journal.store(journal.load() + d)
        }
    }

    var journalText: String { String(decoding: journal.load(), as: UTF8.self) }

    func cleanup() {
        daemon.cleanup()
        daemon.stderr.fileHandleForReading.readabilityHandler = nil
        try? FileManager.default.removeItem(atPath: spectra)
    }

    func events() throws -> [String] {
        try client.call("log_events", LogExportParams(since: 0, until: Date().timeIntervalSince1970 + 86400, channel: "B"), as: LogEventsResult.self)
            .events.filter { $0.kind == "impedance" }.map(\.detail)
    }

    /// Waits until `done` holds for the impedance events (or `timeout` s pass) and returns them.
    func events(timeout: Double, until done: ([String]) -> Bool) throws -> [String] {
        let end = Date().addingTimeInterval(timeout)
        var e: [String] = []
        while Date() < end {
            e = try events()
            if done(e) { break }
            usleep(200_000)
        }
        return e
    }
}

/// The acquisition time an event gives ("acquired 2026-…Z").
func acquiredTime(_ detail: String) -> Date? {
    guard let r = detail.range(of: "acquired ") else { return nil }
    let iso = detail[r.upperBound...].prefix { !$0.isWhitespace && $0 != ")" && $0 != "," }
    return ISO8601DateFormatter().date(from: String(iso))
}

@Suite("Spectrum files from real analysers and hostile users, through a running pressd")
struct SpectrumIntakeFindingsTests {
    @Test("a file of many loops gives one event per loop, each dated by its own start, in order; DC rows skipped; a re-export adds only the new loops")
    func loopsAreMeasurements() throws {
        let rig = try SpectrumRig()
        defer { rig.cleanup() }
        let start = Date().addingTimeInterval(-400)
        try SpectrumFiles.publish(SpectrumFiles.ecLab(loops: 8, start: start), dir: rig.spectra, name: "run.mpt")
        var e = try rig.events(timeout: 20) { $0.filter { $0.hasPrefix("spectrum run.mpt") }.count >= 8 }
        var loops = e.filter { $0.hasPrefix("spectrum run.mpt loop ") }
        #expect(loops.count == 8, "\(e.joined(separator: "\n"))")
        #expect((1...8).allSatisfy { k in loops.contains { $0.hasPrefix("spectrum run.mpt loop \(k) of 8 (EC-Lab ASCII, 21 points") } })
        let times = loops.compactMap(acquiredTime)
        #expect(times.count == 8 && zip(times, times.dropFirst()).allSatisfy { $1.timeIntervalSince($0) > 19 && $1.timeIntervalSince($0) < 21 },
                "loops 20 s apart, in order: \(times)")
        // Loop 1's first impedance row is 1 s after the header's start (the event gives whole seconds).
        #expect(abs((times.first ?? .distantPast).timeIntervalSince(start.addingTimeInterval(1))) < 1)
        // The analyser exports the file again with four more loops (renamed over the old one): only those are new.
        try SpectrumFiles.ecLab(loops: 12, start: start).write(toFile: rig.spectra + "/.run.part", atomically: false, encoding: .utf8)
        #expect(rename(rig.spectra + "/.run.part", rig.spectra + "/run.mpt") == 0)
        e = try rig.events(timeout: 20) { $0.filter { $0.hasPrefix("spectrum run.mpt loop ") }.count >= 12 }
        usleep(1_000_000)
        e = try rig.events()
        loops = e.filter { $0.hasPrefix("spectrum run.mpt loop ") }
        #expect(loops.count == 12, "\(loops.joined(separator: "\n"))")
        #expect((9...12).allSatisfy { k in loops.contains { $0.hasPrefix("spectrum run.mpt loop \(k) of 12 ") } })
        // The newest loop is the channel's value: R_int 31 Ω on 2 cm².
        let b = try #require(try rig.client.status().channels.first { $0.name == "B" })
        #expect(abs((b.interfacialResistanceOhmCm2 ?? 0) - 62) < 1.5, "R_int \(b.interfacialResistanceOhmCm2 ?? .nan) Ω·cm²")
    }

    @Test("a placeholder date is dated by the file's modification time with the reason; date_order settles an ambiguous date")
    func datesFallBackAndFollowTheConvention() throws {
        let rig = try SpectrumRig(extra: "date_order = \"day_first\"")
        defer { rig.cleanup() }
        try SpectrumFiles.publish(SpectrumFiles.gamry(date: "DD-M-YYYY"), dir: rig.spectra, name: "anon.dta")
        try SpectrumFiles.publish(SpectrumFiles.gamry(date: "4/5/2026", time: "00:00:00"), dir: rig.spectra, name: "old.DTA")
        let e = try rig.events(timeout: 15) { e in e.contains { $0.hasPrefix("spectrum anon.dta") } && e.contains { $0.hasPrefix("spectrum old.DTA") } }
        let anon = try #require(e.first { $0.hasPrefix("spectrum anon.dta") }, "\(e)")
        #expect(!anon.contains("rejected"), "\(anon)")
        #expect(anon.contains("by the file's modification time (line 3: DATE is not a date"), "\(anon)")
        let mtime = try #require(try FileManager.default.attributesOfItem(atPath: rig.spectra + "/anon.dta")[.modificationDate] as? Date)
        #expect(abs((acquiredTime(anon) ?? .distantPast).timeIntervalSince(mtime)) < 1.5, "\(anon) vs \(mtime)")
        let old = try #require(e.first { $0.hasPrefix("spectrum old.DTA") })
        #expect(old.contains("acquired 2026-05-04T00:00:00Z"), "day first as configured: \(old)")
    }

    @Test("a swapping attacker (symbolic link to a secret, a 64 MB file) never gets the secret into an event nor a read over the limit")
    func raceNeitherLeaksNorOverreads() throws {
        let rig = try SpectrumRig()
        defer { rig.cleanup() }
        let outside = rig.spectra + "-private"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let marker = "TOPSECRET\(UUID().uuidString.prefix(8))"
        try "frequency,Zreal,Zimag\n\(marker),1,2\n\(marker)b,3,4\n".write(toFile: outside + "/secret.csv", atomically: true, encoding: .utf8)
        // 64 MB of zeros but one line, sparse: reading it would cost the daemon 64 MB.
        let huge = outside + "/huge.csv"
        FileManager.default.createFile(atPath: huge, contents: Data("frequency,Zreal,Zimag\n".utf8))
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: huge))
        try h.truncate(atOffset: 64 << 20); try h.close()
        let pid = rig.daemon.process.processIdentifier
        let hwmBefore = try #require(vmHWM(pid))
        let good = SpectrumFiles.csv(bulk: 6, interfacial: 20, acquiredAt: Date())
        let d = rig.spectra
        let tries = 4000
        for i in 0..<tries {
            // A regular file, then in its place a link to the secret, then (a hard link to) the huge file.
            try good.write(toFile: "\(d)/.r\(i)", atomically: false, encoding: .utf8)
            rename("\(d)/.r\(i)", "\(d)/x.csv")
            symlink(outside + "/secret.csv", "\(d)/.s\(i)")
            rename("\(d)/.s\(i)", "\(d)/x.csv")
            if link(huge, "\(d)/.h\(i)") == 0 { rename("\(d)/.h\(i)", "\(d)/x.csv") }
        }
        usleep(3_000_000)
        let e = try rig.events()
        #expect(!e.isEmpty)
        #expect(!e.contains { $0.contains(marker) }, "the secret reached an event: \(e.filter { $0.contains(marker) }.prefix(3))")
        let hwm = try #require(vmHWM(pid))
        #expect(hwm - hwmBefore < 32 << 20, "peak memory grew by \((hwm - hwmBefore) >> 20) MB: a 64 MB file was read")
        try? FileManager.default.removeItem(atPath: d + "/x.csv")
    }

    @Test("a directory flooded with files gives a bounded number of events and a summary of what was skipped; the loop keeps its ticks")
    func floodIsRateLimited() throws {
        let rig = try SpectrumRig()
        defer { rig.cleanup() }
        usleep(1_000_000)
        let before = try rig.client.status().loop
        let t0 = Date()
        let files = 3000
        for i in 0..<files { try "junk \(i)\n".write(toFile: rig.spectra + String(format: "/f%05d.csv", i), atomically: false, encoding: .utf8) }
        usleep(4_000_000)
        let after = try rig.client.status().loop
        let elapsed = Date().timeIntervalSince(t0)
        func skippedCount(_ e: [String]) -> Int {
            e.filter { $0.contains("not analysed") }.compactMap { s -> Int? in
                guard let r = s.range(of: " files not analysed") else { return nil }
                return Int(s[..<r.lowerBound].split(separator: " ").last ?? "")
            }.reduce(0, +)
        }
        // Every file is reported on its own or counted in a summary (one every 10 s).
        let e = try rig.events(timeout: 40) { e in e.filter { $0.hasPrefix("spectrum f") }.count + skippedCount(e) >= files }
        let single = e.filter { $0.hasPrefix("spectrum f") }
        #expect(single.count <= 250, "\(single.count) single events for \(files) files")
        #expect(e.contains { $0.contains("not analysed") }, "a summary of the skipped files")
        #expect(single.count + skippedCount(e) == files, "every file is either reported or counted: \(single.count) + \(skippedCount(e))")
        // The loop ran its ticks at its rate throughout (no stall): at least 90 % of them, with margin for a loaded machine.
        let expected = Double(after.ticks - before.ticks) / (elapsed * before.rateHz)
        #expect(expected > 0.9, "ticks at \(expected * 100) % of the rate during the flood")
        #expect(after.overruns - before.overruns < 50, "\(after.overruns - before.overruns) overruns")
        print("flood: \(files) files, \(single.count) single events, \(skippedCount(e)) counted in \(e.filter { $0.contains("not analysed") }.count) summaries; ticks at \(String(format: "%.1f", expected * 100)) % of the rate, \(after.overruns - before.overruns) overruns, max tick \(after.maxTickUs) µs")
    }

    @Test("a file name with ESC and a newline is escaped: one line per event in the run log and the journal")
    func namesAreEscaped() throws {
        let rig = try SpectrumRig()
        defer { rig.cleanup() }
        let name = "evil\u{1B}]52;c;QUJD\u{07}\nFAKE: spectrum ok.csv accepted\u{202E}.csv"
        try SpectrumFiles.publish("junk\n", dir: rig.spectra, name: name)
        let e = try rig.events(timeout: 15) { e in e.contains { $0.hasPrefix("spectrum evil") } }
        let ev = try #require(e.first { $0.hasPrefix("spectrum evil") }, "\(e)")
        #expect(!ev.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (0x202A...0x202E).contains($0.value) }, "\(ev.debugDescription)")
        #expect(ev.contains("\\u{1B}]52;c;QUJD\\u{7}\\u{A}FAKE"), "\(ev)")
        rig.daemon.stop()
        usleep(200_000)
        let journal = rig.journalText
        #expect(!journal.contains("\u{1B}") && !journal.contains("\u{202E}"), "raw control characters in the journal")
        #expect(!journal.split(separator: "\n").contains { $0.hasPrefix("FAKE") }, "a forged journal line")
    }
}

/// Peak resident memory (VmHWM) of a process, bytes.
func vmHWM(_ pid: Int32) -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
    return kb * 1024
}
