import Foundation
import Testing
@testable import PressEIS

/// The layouts real analysers write (issue 24), each as a small file built from a known circuit:
/// read by content whatever the name, the values back as written, Z″ capacitive-negative.
@Suite struct FormatTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let circuit = CircuitParameters(bulkResistance: 12, interfacialResistance: 80, cpeQ: 2e-6, cpeAlpha: 0.85)
    static let freqs = Synth.frequencies(from: 1e5, to: 1, perDecade: 4)   // 21 points, descending
    static var z: [(real: Double, imaginary: Double)] { freqs.map { circuit.impedance(atFrequency: $0) } }

    /// Reads `text` as the daemon does (bytes, content detection) and checks every point.
    func check(_ text: String, name: String, reader: SpectrumFormat, ascending: Bool = false,
               tolerance: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line) throws -> Spectrum {
        let s = try SpectrumReader.parse(data: Data(text.utf8), fileName: name, timeZone: Self.utc)
        #expect(s.source == reader, "\(name): read as \(s.source)")
        let f = ascending ? Array(Self.freqs.reversed()) : Self.freqs
        let z = ascending ? Array(Self.z.reversed()) : Self.z
        #expect(s.count == f.count, "\(name): \(s.count) points")
        for i in 0..<min(s.count, f.count) {
            #expect(abs(s.frequencies[i] / f[i] - 1) < tolerance && abs(s.real[i] - z[i].real) <= tolerance * abs(z[i].real) + 1e-9
                    && abs(s.imaginary[i] - z[i].imaginary) <= tolerance * abs(z[i].imaginary) + 1e-9,
                    "\(name) point \(i): \(s.frequencies[i]) \(s.real[i]) \(s.imaginary[i]) vs \(f[i]) \(z[i])")
        }
        return s
    }

    static func rows(_ sep: String, negate: Bool = false, decimalComma: Bool = false, ascending: Bool = false, trailing: String = "") -> String {
        let pts = Array(zip(freqs, z))
        return (ascending ? pts.reversed() : pts).map { f, z in
            [f, z.real, negate ? -z.imaginary : z.imaginary].map { v -> String in
                let t = String(format: "%.9e", v)
                return decimalComma ? t.replacingOccurrences(of: ".", with: ",") : t
            }.joined(separator: sep) + trailing
        }.joined(separator: "\n") + "\n"
    }

    @Test("headerless f, Z′, Z″: comma, semicolon with decimal commas, TAB with trailing blanks, spaces; either order; Z″ sign from the data")
    func headerless() throws {
        _ = try check(Self.rows(","), name: "exampleData.csv", reader: .headerless)
        _ = try check(Self.rows(";", decimalComma: true), name: "a.txt", reader: .headerless)
        _ = try check(Self.rows(" \t", trailing: " "), name: "DRTtools.txt", reader: .headerless)
        _ = try check(Self.rows("   ", decimalComma: true), name: "spaces.dat", reader: .headerless)
        _ = try check(Self.rows(",", ascending: true), name: "up.csv", reader: .headerless, ascending: true)
        // −Z″ written (mostly positive): read as Z″ all the same, and said.
        let s = try check(Self.rows("\t", negate: true), name: "minus.txt", reader: .headerless)
        #expect(s.notes.contains("third column read as −Z″ (most values positive)"))
    }

    @Test("Autolab/ZView Z60W text: UTF-8 BOM, quoted header lines, the column names as one quoted field, CRLF")
    func autolab() throws {
        var text = "\u{FEFF}\"Z60W Data File: Version 1.1\"\r\n\"\"\r\n\"\"\r\n0,2,0,1,0.1,10000\r\n21\r\n"
        text += "\"  Freq (Hz)    Ampl     Bias   Time(Sec)   Z'(a)    Z''(b)    GD   Err   Range\"\r\n"
        for (f, z) in zip(Self.freqs, Self.z) { text += "\(f),0,0,0,\(z.real),\(z.imaginary),0,0,0\r\n" }
        let s = try check(text, name: "exampleDataAutolab.txt", reader: .autolabZ60W)
        #expect(s.acquiredAt == nil && s.notes.isEmpty)
    }

    @Test("ZPlot .z: key–value header, column names before End Comments, a sweep cut short, its date read month first unless configured")
    func zplot() throws {
        var text = "ZPLOT2 ASCII\n  Measured Data, ZPlot:       3.2c\n  Date:                       10-12-2018\n  Time:                       11:04:34\n"
        text += "    vs Time-Total Time:       100\n  Data Points:                56\n  Freq(Hz)\tAmpl\tBias\tTime(Sec)\tZ'(a)\tZ''(b)\tGD\tErr\tRange\nEnd Comments\n"
        for (k, (f, z)) in zip(Self.freqs, Self.z).enumerated() { text += "\(f)\t1.0E-02\t0\t\(2.5 + Double(k))\t\(z.real)\t\(z.imaginary)\t0\t0\t3\n" }
        let s = try check(text, name: "run.dat", reader: .zPlot)
        #expect(s.notes.contains("sweep cut short: 21 of the 56 points the header plans"))
        // 10-12-2018 11:04:34, month first by its '-' separator (noted), + Time(Sec) of the first row.
        #expect(s.acquiredAt == ParsingSupport.iso8601("2018-10-12T11:04:36.5Z", timeZone: Self.utc))
        #expect(s.notes.contains { $0.hasPrefix("date 10-12-2018 read month first") })
        let dmy = try SpectrumReader.read(text, fileName: "run.dat", options: ReadOptions(timeZone: Self.utc, dateOrder: .dayFirst))[0]
        #expect(dmy.acquiredAt == ParsingSupport.iso8601("2018-12-10T11:04:36.5Z", timeZone: Self.utc))
        #expect(!dmy.notes.contains { $0.hasPrefix("date") })
    }

    @Test("polar columns |Z| and phase in degrees, in an EC-Lab export and in a CSV with loops, DC rows and relative times")
    func polar() throws {
        var mpt = "EC-Lab ASCII FILE\nNb header lines : 4\n\nfreq/Hz\t|Z|/Ohm\tPhase(Z)/deg\ttime/s\t\n"
        for (f, z) in zip(Self.freqs, Self.z) { mpt += "\(f)\t\(hypot(z.real, z.imaginary))\t\(atan2(z.imaginary, z.real) * 180 / .pi)\t1\n" }
        let s = try check(mpt, name: "polar.mpt", reader: .bioLogicMPT, tolerance: 1e-9)
        #expect(s.notes.contains { $0.hasPrefix("polar columns") })
        // Two loops with a DC row each, like hybrid-drt's Sample2_PEIS_AtRest.csv; no date: the
        // modification time dates the last row, each loop back by its offset from it.
        var csv = "time/s,freq/Hz,|Z|/Ohm,Phase(Z)/deg,I/A,Ewe/V,loop_index\n"
        var t = 100.0
        for loop in 0..<2 {
            for (f, z) in zip(Self.freqs, Self.z) { csv += "\(t),\(f),\(hypot(z.real, z.imaginary)),\(atan2(z.imaginary, z.real) * 180 / .pi),0,3.06,\(loop)\n"; t += 10 }
            csv += "\(t),0.0,0.0,0.0,0,3.06,\(loop)\n"; t += 1000
        }
        let mtime = Date(timeIntervalSince1970: 1_800_000_000)
        let loops = try SpectrumReader.read(csv, fileName: "x.csv", options: ReadOptions(timeZone: Self.utc, modificationTime: mtime))
        #expect(loops.count == 2 && loops.allSatisfy { $0.count == 21 && $0.source == .csv })
        #expect(loops.map(\.sweep) == [1, 2])
        // Loop 2 starts at t = 100 + 21·10 + 1000 = 1310 s, the last (DC) row is at 1310 + 210 = 1520 s.
        #expect(loops[1].acquiredAt == mtime.addingTimeInterval(-210))
        #expect(loops[0].acquiredAt == mtime.addingTimeInterval(-1420))
        #expect(loops[0].timeSource == .modificationTime(reason: "the file carries no date (no '# acquired_at:' line)"))
    }

    @Test("EC-Lab v10: decimal commas in header and data, no trailing TAB, a month-first date with dots; Loop blocks split the loops")
    func ecLabV10() throws {
        var text = "EC-Lab ASCII FILE\nNb header lines : 9\n\nPotentio Electrochemical Impedance Spectroscopy\n\nEwe ctrl range : min = 0,00 V, max = 10,00 V\n"
        text += "Acquisition started on : 08.27.2015 14:25:34\nNumber of loops : 2\nLoop 0 from point number 0 to 20\nLoop 1 from point number 21 to 41\n"
        // (the Loop lines are part of the header in EC-Lab; here the header is 11 lines long)
        text = text.replacingOccurrences(of: "Nb header lines : 9", with: "Nb header lines : 11")
        text += "freq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\ttime/s\tcycle number\n"
        var t = 5.0
        for _ in 0..<2 {
            for (f, z) in zip(Self.freqs, Self.z) {
                text += ["\(f)", "\(z.real)", "\(-z.imaginary)", "\(t)", "1"].map { $0.replacingOccurrences(of: ".", with: ",") }.joined(separator: "\t") + "\n"
                t += 2
            }
        }
        let all = try SpectrumReader.read(text, fileName: "LATP.mpt", options: ReadOptions(timeZone: Self.utc))
        #expect(all.count == 2, "two loops by the Loop block although the cycle number does not change")
        #expect(all[0].acquiredAt == ParsingSupport.iso8601("2015-08-27T14:25:39Z", timeZone: Self.utc), "\(String(describing: all[0].acquiredAt))")
        #expect(all[1].acquiredAt == ParsingSupport.iso8601("2015-08-27T14:26:21Z", timeZone: Self.utc))
        #expect(all[1].real == Self.z.map(\.real) && all[1].imaginary == Self.z.map(\.imaginary))
        // The same file with `02.12.2015` (ambiguous): EC-Lab writes month first in every locale.
        let feb = try SpectrumReader.read(text.replacingOccurrences(of: "08.27.2015", with: "02.12.2015"), fileName: "x.mpt", options: ReadOptions(timeZone: Self.utc, dateOrder: .dayFirst))
        #expect(feb[0].acquiredAt == ParsingSupport.iso8601("2015-02-12T14:25:39Z", timeZone: Self.utc))
    }

    static func dta(date: String, time: String, decimalComma: Bool = false, crlf: Bool = false, drift: Bool = false) -> String {
        var t = "EXPLAIN\nTAG\tEISPOT\nTITLE\tLABEL\tPotentiostatic EIS\tTest &Identifier\nDATE\tLABEL\t\(date)\tDate\nTIME\tLABEL\t\(time)\tTime\n"
        t += "OCVCURVE\tTABLE\t2\n\tPt\tT\tVf\n\t#\ts\tV vs. Ref.\n\t0\t0.25\t0.3\n\t1\t0.5\t0.3\n"
        t += "ZCURVE\tTABLE\n\tPt\tTime\tFreq\tZreal\tZimag\tZsig\tZmod\tZphz" + (drift ? "\tZrealDrCor\tZimagDrCor" : "") + "\tIdc\n"
        t += "\t#\ts\tHz\tohm\tohm\tV\tohm\t°" + (drift ? "\tohm\tohm" : "") + "\tA\n"
        for (k, (f, z)) in zip(freqs, Self.z).enumerated() {
            var fields = ["\(k)", "\(k + 1)", "\(f)", drift ? "\(z.real * 1.1)" : "\(z.real)", drift ? "\(z.imaginary * 1.1)" : "\(z.imaginary)", "1", "0", "0"]
            if drift { fields += ["\(z.real)", "\(z.imaginary)"] }
            fields.append("1E-9")
            t += "\t" + fields.map { decimalComma ? $0.replacingOccurrences(of: ".", with: ",") : $0 }.joined(separator: "\t") + "\n"
        }
        t += "EXPERIMENTABORTED\tTOGGLE\tT\tExperiment Aborted\n"
        return crlf ? t.replacingOccurrences(of: "\n", with: "\r\n") : t
    }

    @Test("Gamry dates in the PC's locale: decided by the values, else date_order, else the separator (noted); microseconds")
    func gamryDates() throws {
        func at(_ date: String, _ time: String = "16:43:15", _ order: DateOrder? = nil) throws -> Spectrum {
            try SpectrumReader.read(Self.dta(date: date, time: time), fileName: "g.DTA", options: ReadOptions(timeZone: Self.utc, dateOrder: order))[0]
        }
        #expect(try at("4/23/2018").acquiredAt == ParsingSupport.iso8601("2018-04-23T16:43:15Z", timeZone: Self.utc))
        #expect(try at("17.7.2024").acquiredAt == ParsingSupport.iso8601("2024-07-17T16:43:15Z", timeZone: Self.utc))
        #expect(try at("10/25/2024", "21:09:58.727375").acquiredAt == ParsingSupport.iso8601("2024-10-25T21:09:58.727375Z", timeZone: Self.utc))
        let guessed = try at("4/5/2024")
        #expect(guessed.acquiredAt == ParsingSupport.iso8601("2024-04-05T16:43:15Z", timeZone: Self.utc))
        #expect(guessed.notes.contains { $0.contains("read month first") && $0.contains("date_order") })
        let configured = try at("4/5/2024", "16:43:15", .dayFirst)
        #expect(configured.acquiredAt == ParsingSupport.iso8601("2024-05-04T16:43:15Z", timeZone: Self.utc) && configured.notes.isEmpty)
        #expect(try at("5.4.2024").acquiredAt == ParsingSupport.iso8601("2024-04-05T16:43:15Z", timeZone: Self.utc))
    }

    @Test("a placeholder date never discards the data: the file's modification time dates it, with the reason; decimal commas and CRLF in a DTA; drift-corrected columns")
    func gamryPlaceholder() throws {
        let mtime = Date(timeIntervalSince1970: 1_790_000_000)
        let text = Self.dta(date: "DD-M-YYYY", time: "HH:MM:SS", decimalComma: true, crlf: true, drift: true)
        let s = try SpectrumReader.read(text, fileName: "drift-corrected-data.dta", options: ReadOptions(timeZone: Self.utc, modificationTime: mtime))
        #expect(s.count == 1 && s[0].count == 21)
        #expect(s[0].acquiredAt == mtime)
        #expect(s[0].timeSource == .modificationTime(reason: "line 4: DATE is not a date (an anonymised or placeholder value)"))
        #expect(s[0].notes.contains { $0.hasPrefix("drift-corrected columns") })
        for i in 0..<21 { #expect(abs(s[0].real[i] - Self.z[i].real) < 1e-6 * abs(Self.z[i].real), "the corrected columns, not Zreal") }
    }

    @Test("the content decides, not the name: EC-Lab as .txt, Gamry as .csv, ZPlot without extension; unknown content is named")
    func contentDecides() throws {
        #expect(SpectrumReader.detectFormat(fileName: "PEIS_LPSCl.txt", text: "EC-Lab ASCII FILE\r\nNb header lines : 3") == .bioLogicMPT)
        #expect(SpectrumReader.detectFormat(fileName: "export.csv", text: "EXPLAIN\nTAG\tEISPOT") == .gamryDTA)
        #expect(SpectrumReader.detectFormat(fileName: "sweep", text: "ZPLOT2 ASCII\n") == .zPlot)
        #expect(SpectrumReader.detectFormat(fileName: "data.mpt", text: "1000,10,-5\n100,12,-6\n10,14,-3\n") == .headerless)
        #expect(throws: SpectrumParseError(.unrecognisedFormat, fileName: "notes.md", line: 1)) { try SpectrumReader.parse("hello world", fileName: "notes.md") }
    }

    @Test("sweeps written one after another without a loop column are split where the frequency starts over")
    func frequencyRestart() throws {
        let text = Self.rows(",") + Self.rows(",")
        let all = try SpectrumReader.read(text, fileName: "two.csv", options: ReadOptions(timeZone: Self.utc))
        #expect(all.count == 2 && all.allSatisfy { $0.count == 21 } && all.map(\.sweep) == [1, 2])
    }
}
