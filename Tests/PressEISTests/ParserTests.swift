import Foundation
import Testing
@testable import PressEIS

@Suite struct ParserTests {
    static let utc = TimeZone(identifier: "UTC")!

    /// Reads a fixture with the dispatcher, checks the format, point count, time, and that the fitted
    /// parameters match the circuit the file was written from (0.5 % noise in the files).
    func check(_ name: String, _ format: SpectrumFormat, _ p: CircuitParameters, points: Int, time: Date) throws {
        let spectrum = try SpectrumReader.parse(Fixtures.text(name), fileName: name, timeZone: Self.utc)
        #expect(spectrum.source == format)
        #expect(spectrum.count == points)
        #expect(spectrum.fileName == name)
        #expect(spectrum.acquiredAt.map { abs($0.timeIntervalSince(time)) < 1e-3 } == true, "\(String(describing: spectrum.acquiredAt)) vs \(time)")
        #expect(spectrum.imaginary.filter { $0 < 0 }.count > spectrum.count / 2, "Z″ must be stored negative for capacitive data")
        let analysis = try SpectrumAnalysis.analyse(spectrum).get()
        let rbErr = Synth.relErr(analysis.bulkResistance, p.bulkResistance)
        let riErr = Synth.relErr(analysis.interfacialResistance!, p.interfacialResistance)
        print("\(name): R_b \(analysis.bulkResistance) (err \(rbErr)), R_int \(analysis.interfacialResistance!) (err \(riErr)), α \(analysis.cpeAlpha), σ \(String(describing: analysis.warburgSigma))")
        #expect(rbErr < 0.02)
        #expect(riErr < 0.02)
        #expect(abs(analysis.cpeAlpha - p.cpeAlpha) < 0.02)
        #expect((analysis.warburgSigma != nil) == (p.warburgSigma != nil))
        if let s = p.warburgSigma { #expect(Synth.relErr(analysis.warburgSigma!, s) < 0.1) }
    }

    static func date(_ iso: String) -> Date { ParsingSupport.iso8601(Substring(iso), timeZone: utc)! }

    @Test func bioLogicUS() throws {
        // 12.9 s = time/s of the first impedance row, added to "Acquisition started on".
        try check("cell07_peis_us.mpt", .bioLogicMPT, FixtureCircuits.mptUS, points: 71, time: Self.date("2026-11-28T14:03:12.250Z").addingTimeInterval(12.9))
    }
    @Test func bioLogicEuropeanDecimal() throws {
        try check("cell07_peis_eu.mpt", .bioLogicMPT, FixtureCircuits.mptEU, points: 71, time: Self.date("2026-11-28T14:09:40Z").addingTimeInterval(12.9))
    }
    @Test func gamry1() throws {
        try check("cell07_eispot_1.DTA", .gamryDTA, FixtureCircuits.dta1, points: 49, time: Self.date("2026-11-28T14:03:12Z"))
    }
    @Test func gamry2() throws {
        try check("cell07_eispot_2.DTA", .gamryDTA, FixtureCircuits.dta2, points: 71, time: Self.date("2027-01-05T09:15:00.125Z"))
    }
    @Test func csvComma() throws {
        try check("cell07_spectrum_1.csv", .csv, FixtureCircuits.csv1, points: 71, time: Self.date("2026-11-28T14:03:12Z"))
    }
    @Test func csvSemicolonEuropean() throws {
        try check("cell07_spectrum_2.csv", .csv, FixtureCircuits.csv2, points: 49, time: Self.date("2026-11-28T14:03:12Z"))
    }

    @Test func mptValuesAndSigns() throws {
        let s = try BioLogicMPTParser.parse(Fixtures.text("cell07_peis_eu.mpt"), fileName: "x.mpt", timeZone: Self.utc)
        #expect(s.frequencies.first == 1e6)
        #expect(abs(s.real[0] - 12.587867) < 1e-9)
        #expect(abs(s.imaginary[0] - -1.309173) < 1e-9)
    }

    @Test func mptLocalTimeZone() throws {
        let text = try Fixtures.text("cell07_peis_us.mpt")
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let a = try BioLogicMPTParser.parse(text, fileName: "a.mpt", timeZone: Self.utc).acquiredAt!
        let b = try BioLogicMPTParser.parse(text, fileName: "a.mpt", timeZone: berlin).acquiredAt!
        #expect(a.timeIntervalSince(b) == 3600)   // 14:03 in Berlin (CET, +1 h) is 13:03 UTC
    }

    @Test func mptBadNumberNamesFileLineAndColumn() throws {
        var lines = try Fixtures.text("cell07_peis_us.mpt").components(separatedBy: "\r\n")
        var fields = lines[69].components(separatedBy: "\t")   // line 70
        fields[1] = "12.3abc"
        lines[69] = fields.joined(separator: "\t")
        #expect(throws: SpectrumParseError(.invalidNumber("12.3abc"), fileName: "bad.mpt", line: 70, column: "Re(Z)/Ohm")) {
            try BioLogicMPTParser.parse(lines.joined(separator: "\r\n"), fileName: "bad.mpt")
        }
        let e = SpectrumParseError(.invalidNumber("12.3abc"), fileName: "bad.mpt", line: 70, column: "Re(Z)/Ohm")
        #expect(e.description == "bad.mpt:70: column 'Re(Z)/Ohm': invalid number '12.3abc'")
    }

    @Test func mptStructuralErrors() throws {
        let text = try Fixtures.text("cell07_peis_us.mpt")
        #expect(throws: SpectrumParseError(.malformedHeader("'Nb header lines : 999' but file has 133 lines"), fileName: "h.mpt", line: 2)) {
            try BioLogicMPTParser.parse(text.replacingOccurrences(of: "Nb header lines : 60", with: "Nb header lines : 999"), fileName: "h.mpt")
        }
        // Without −Im(Z) the polar columns are used; without those too, the missing column is named.
        #expect(try BioLogicMPTParser.parse(text.replacingOccurrences(of: "\t-Im(Z)/Ohm\t", with: "\tfoo\t"), fileName: "c.mpt").notes
                    .contains { $0.hasPrefix("polar columns") })
        #expect(throws: SpectrumParseError(.missingColumn("-Im(Z)/Ohm"), fileName: "c.mpt", line: 60)) {
            try BioLogicMPTParser.parse(text.replacingOccurrences(of: "\t-Im(Z)/Ohm\t", with: "\tfoo\t")
                .replacingOccurrences(of: "\tPhase(Z)/deg\t", with: "\tbar\t"), fileName: "c.mpt")
        }
        // A date that is not one does not refuse the data: the spectrum says why it has no time.
        let undated = try BioLogicMPTParser.parse(text.replacingOccurrences(of: "11/28/2026", with: "13/45/2026"), fileName: "d.mpt")
        #expect(undated.acquiredAt == nil && undated.count == 71)
        #expect(undated.timeSource == .none(reason: "line 14: 'Acquisition started on' is not a date and time (MM/DD/YYYY HH:MM:SS)"))
        // Truncated last row (analyser still writing): names the line.
        var lines = text.components(separatedBy: "\r\n")
        lines[80] = String(lines[80].prefix(20))
        do {
            _ = try BioLogicMPTParser.parse(lines.joined(separator: "\r\n"), fileName: "t.mpt")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 81 && error.fileName == "t.mpt")
        }
        #expect(throws: SpectrumParseError(.emptyFile, fileName: "e.mpt")) { try SpectrumReader.parse("  \n", fileName: "e.mpt") }
    }

    @Test func gamryErrors() throws {
        let text = try Fixtures.text("cell07_eispot_1.DTA")
        #expect(throws: SpectrumParseError(.malformedHeader("missing 'ZCURVE\tTABLE' line"), fileName: "g.DTA")) {
            try GamryDTAParser.parse(text.replacingOccurrences(of: "ZCURVE\tTABLE", with: "OCVCURVE\tTABLE"), fileName: "g.DTA")
        }
        #expect(throws: SpectrumParseError(.missingColumn("Zimag"), fileName: "g.DTA", line: 21)) {
            try GamryDTAParser.parse(text.replacingOccurrences(of: "\tZimag\t", with: "\tZim\t"), fileName: "g.DTA")
        }
        var lines = text.components(separatedBy: "\r\n")
        var f = lines[29].components(separatedBy: "\t"); f[3] = "1.2.3"; lines[29] = f.joined(separator: "\t")
        #expect(throws: SpectrumParseError(.invalidNumber("1.2.3"), fileName: "g.DTA", line: 30, column: "Freq")) {
            try GamryDTAParser.parse(lines.joined(separator: "\r\n"), fileName: "g.DTA")
        }
        let undated = try GamryDTAParser.parse(text.replacingOccurrences(of: "11/28/2026", with: "28.x.2026"), fileName: "g.DTA")
        #expect(undated.acquiredAt == nil && undated.count == 49)
        #expect(undated.timeSource == .none(reason: "line 4: DATE is not a date (an anonymised or placeholder value)"))
    }

    @Test func csvHeaderSpellings() throws {
        let rows = "1000,10,-5\n100,12,-6\n"
        for (header, negate) in [("freq,Zreal,Zimag", false), ("frequency,Z',Z''", false), ("f/Hz,Re(Z)/Ohm,-Im(Z)/Ohm", true),
                                 ("Freq (Hz),Z' (Ohm),-Z'' (Ohm)", true), ("freq/Hz,Re(Z),Im(Z)", false), ("\"freq\",\"Z'\",\"-Z''\"", true)] {
            let s = try CSVSpectrumParser.parse(header + "\n" + rows, fileName: "h.csv")
            #expect(s.frequencies == [1000, 100])
            #expect(s.real == [10, 12])
            #expect(s.imaginary == (negate ? [5, 6] : [-5, -6]), "\(header)")
            #expect(s.acquiredAt == nil)
        }
        // Column order does not matter; extra columns are ignored.
        let s = try CSVSpectrumParser.parse("Zimag;extra;Zreal;freq\n-1,5;x;2,25;10\n", fileName: "o.csv")
        #expect(s.frequencies == [10] && s.real == [2.25] && s.imaginary == [-1.5])
    }

    @Test func csvErrors() {
        #expect(throws: SpectrumParseError(.missingColumn("Z″ (Zimag, Z'', Im(Z), -Im(Z), -Z'')"), fileName: "m.csv", line: 2)) {
            try CSVSpectrumParser.parse("# comment\nfreq,Zreal,phase\n1,2,3\n", fileName: "m.csv")
        }
        #expect(throws: SpectrumParseError(.invalidNumber("abc"), fileName: "n.csv", line: 3, column: "Zreal")) {
            try CSVSpectrumParser.parse("freq,Zreal,Zimag\n1,2,-3\n2,abc,-3\n", fileName: "n.csv")
        }
        #expect(throws: SpectrumParseError(.missingField(expected: 3, found: 2), fileName: "n.csv", line: 2)) {
            try CSVSpectrumParser.parse("freq,Zreal,Zimag\n1,2\n", fileName: "n.csv")
        }
        #expect(throws: SpectrumParseError(.invalidDate("yesterday"), fileName: "d.csv", line: 1)) {
            try CSVSpectrumParser.parse("# acquired_at: yesterday\nfreq,Zreal,Zimag\n1,2,-3\n", fileName: "d.csv")
        }
        #expect(throws: SpectrumParseError(.invalidValue("negative frequency -1.0"), fileName: "d.csv", line: 2, column: "freq")) {
            try CSVSpectrumParser.parse("freq,Zreal,Zimag\n-1,2,-3\n", fileName: "d.csv")
        }
    }

    @Test func isoDates() {
        let utc = Self.utc
        let base = Date(timeIntervalSince1970: 1_795_874_592) // 2026-11-28T14:03:12Z
        #expect(ParsingSupport.iso8601("2026-11-28T14:03:12Z", timeZone: utc) == base)
        #expect(ParsingSupport.iso8601("2026-11-28T15:03:12+01:00", timeZone: utc) == base)
        #expect(ParsingSupport.iso8601("2026-11-28 09:03:12-0500", timeZone: utc) == base)
        #expect(ParsingSupport.iso8601("2026-11-28T14:03:12.5Z", timeZone: utc) == base.addingTimeInterval(0.5))
        #expect(ParsingSupport.iso8601("2026-02-30T14:03:12Z", timeZone: utc) == nil)
    }

    @Test func dispatcher() {
        #expect(SpectrumReader.detectFormat(fileName: "a.mpt", text: "") == .bioLogicMPT)
        #expect(SpectrumReader.detectFormat(fileName: "a.DTA", text: "") == .gamryDTA)
        #expect(SpectrumReader.detectFormat(fileName: "a.dta", text: "") == .gamryDTA)
        #expect(SpectrumReader.detectFormat(fileName: "a.csv", text: "freq,Zreal,Zimag") == .csv)
        #expect(SpectrumReader.detectFormat(fileName: "a.txt", text: "EC-Lab ASCII FILE\r\nNb header lines : 3") == .bioLogicMPT)
        #expect(SpectrumReader.detectFormat(fileName: "export", text: "EXPLAIN\nTAG\tEISPOT") == .gamryDTA)
        #expect(SpectrumReader.detectFormat(fileName: "notes.md", text: "hello") == nil)
        #expect(throws: SpectrumParseError(.unrecognisedFormat, fileName: "notes.md", line: 1)) {
            try SpectrumReader.parse("hello", fileName: "notes.md")
        }
    }

    @Test func latin1Bytes() throws {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("cell07_eispot_1.DTA"))
        #expect(String(data: data, encoding: .utf8) == nil)   // the fixture is Windows/Latin-1 encoded like Gamry's
        let s = try SpectrumReader.parse(data: data, fileName: "cell07_eispot_1.DTA", timeZone: Self.utc)
        #expect(s.count == 49)
    }
}

@Suite struct ParserEdgeCaseTests {
    @Test func vendorDates() {
        #expect(ParsingSupport.monthDayYear("11/28/2026")! == (2026, 11, 28))
        #expect(ParsingSupport.monthDayYear("04-05-2024")! == (2024, 4, 5))
        #expect(ParsingSupport.monthDayYear("28.11.2026")! == (2026, 11, 28))
        #expect(ParsingSupport.monthDayYear("28/11/2026")! == (2026, 11, 28))
        #expect(ParsingSupport.monthDayYear("2026-11-28")! == (2026, 11, 28))
        #expect(ParsingSupport.monthDayYear("11/28") == nil)
    }

    /// Two sweeps in one EC-Lab file (repeated PEIS): `parse` returns the last, `parseAll` both.
    @Test func mptMultipleCycles() throws {
        let p1 = CircuitParameters(bulkResistance: 40, interfacialResistance: 300, cpeQ: 1e-6, cpeAlpha: 0.9)
        let p2 = CircuitParameters(bulkResistance: 40, interfacialResistance: 360, cpeQ: 1e-6, cpeAlpha: 0.9)
        let f = Synth.frequencies(from: 1e6, to: 1, perDecade: 5)
        var text = "EC-Lab ASCII FILE\nNb header lines : 5\n\nAcquisition started on : 11/28/2026 14:00:00\nfreq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\ttime/s\tcycle number\n"
        var t = 0.0
        for (cycle, p) in [(1, p1), (2, p2)] {
            for fr in f {
                let z = p.impedance(atFrequency: fr)
                text += "\(fr)\t\(z.real)\t\(-z.imaginary)\t\(t)\t\(cycle)\n"
                t += 10
            }
        }
        let utc = TimeZone(identifier: "UTC")!
        let all = try BioLogicMPTParser.parseAll(text, fileName: "multi.mpt", timeZone: utc)
        #expect(all.count == 2 && all.allSatisfy { $0.count == f.count })
        let last = try BioLogicMPTParser.parse(text, fileName: "multi.mpt", timeZone: utc)
        #expect(last == all[1])
        #expect(last.acquiredAt!.timeIntervalSince(all[0].acquiredAt!) == Double(f.count) * 10)
        let a = try SpectrumAnalysis.analyse(last).get()
        #expect(abs(a.interfacialResistance! - 360) < 1e-3)
    }

    @Test func gamryEuropeanDate() throws {
        let text = try Fixtures.text("cell07_eispot_1.DTA").replacingOccurrences(of: "11/28/2026", with: "28.11.2026")
        let s = try GamryDTAParser.parse(text, fileName: "g.DTA", timeZone: TimeZone(identifier: "UTC")!)
        #expect(s.acquiredAt == Date(timeIntervalSince1970: 1_795_874_592))
    }
}
