import Foundation

/// Reader for Gamry Framework `EXPLAIN` data files (`.DTA`) of potentiostatic/galvanostatic EIS.
///
/// Layout: tab-separated key lines (`EXPLAIN`, `TAG\tEISPOT`, `DATE\tLABEL\t11/28/2026\tDate`,
/// `TIME\tLABEL\t14:03:12\tTime`, …), other tables (`OCVCURVE`) possibly first, then
/// `ZCURVE\tTABLE`, a column-name line (`\tPt\tTime\tFreq\tZreal\tZimag\t…`), a units line,
/// and data rows each starting with a tab. The table ends at the first line that does not
/// start with a tab (an `EXPERIMENTABORTED` line, a `FRACURVE` table, the end of the file).
/// Columns are found by name: `Freq`, `Zreal`, `Zimag` (already the imaginary part of Z);
/// with Gamry's drift correction on, `ZrealDrCor`/`ZimagDrCor` are the spectrum (the
/// measurement corrected for the drift during the sweep) and the event says so. Numbers may
/// use a decimal comma, lines may end in CRLF.
///
/// `acquiredAt` comes from DATE and TIME (`HH:MM:SS[.ffffff]`) read in `timeZone`. Gamry writes
/// DATE in the PC's locale (`4/23/2018`, `17.7.2024`): day and month are decided from the
/// values where only one reading is a date, else by `dateOrder` (the analyser PC's
/// convention), else by the separator. A DATE that is not a date (an anonymised
/// `DD-M-YYYY`) does not refuse the file: the spectrum carries the reason.
public enum GamryDTAParser {
    /// Parses the text of a `.DTA` file (its first ZCURVE table).
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current,
                             dateOrder: DateOrder? = nil) throws(SpectrumParseError) -> Spectrum {
        try parseAll(text, fileName: fileName, timeZone: timeZone, dateOrder: dateOrder)[0]
    }

    /// Parses every ZCURVE table of the file, in file order.
    public static func parseAll(_ text: String, fileName: String, timeZone: TimeZone = .current,
                                dateOrder: DateOrder? = nil) throws(SpectrumParseError) -> [Spectrum] {
        let lines = ParsingSupport.lines(String(ParsingSupport.withoutBOM(text)))
        guard lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        guard lines[0].trimmingCharacters(in: .whitespaces) == "EXPLAIN" else {
            throw SpectrumParseError(.malformedHeader("first line must be 'EXPLAIN'"), fileName: fileName, line: 1)
        }
        var date: (ParsingSupport.VendorDate, Int)? = nil
        var time: (Int, Int, Double)? = nil
        var issue: String? = nil
        var tables: [Int] = []
        for (i, line) in lines.enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard let key = fields.first else { continue }
            let value = fields.count >= 3 ? Substring(fields[2].trimmingCharacters(in: .whitespaces)) : ""
            if key == "ZCURVE", fields.count >= 2, fields[1].trimmingCharacters(in: .whitespaces) == "TABLE" {
                tables.append(i)
            } else if tables.isEmpty, key == "DATE", fields.count >= 3 {
                if let d = ParsingSupport.vendorDate(value, fixed: nil, configured: dateOrder) { date = (d, i + 1) }
                else { issue = "line \(i + 1): DATE is not a date (an anonymised or placeholder value)" }
            } else if tables.isEmpty, key == "TIME", fields.count >= 3 {
                if let t = ParsingSupport.timeOfDay(value), (0...23).contains(t.0), (0...59).contains(t.1) { time = t }
                else { issue = issue ?? "line \(i + 1): TIME is not a time of day (an anonymised or placeholder value)" }
            }
        }
        guard !tables.isEmpty else {
            throw SpectrumParseError(.malformedHeader("missing 'ZCURVE\tTABLE' line"), fileName: fileName)
        }
        var assembly = SweepAssembly(fileName: fileName, source: .gamryDTA, start: nil,
                                     startIssue: issue ?? "the header has no DATE line")
        if let (d, line) = date, issue == nil {
            let (h, mi, s) = time ?? (0, 0, 0)
            assembly.start = ParsingSupport.date(year: d.year, month: d.month, day: d.day, hour: h, minute: mi, second: s, timeZone: timeZone)
            if assembly.start == nil { assembly.startIssue = "line \(line): DATE is not a valid calendar date" }
            if let note = d.assumption { assembly.notes.append(note) }
        }
        var spectra: [Spectrum] = []
        for t in tables {
            var a = assembly
            let (rows, notes) = try table(lines, at: t, fileName: fileName)
            a.notes += notes
            var s = a.spectra(rows)
            if tables.count > 1 { for k in s.indices { s[k].sweep = spectra.count + k + 1 } }
            spectra += s
        }
        return spectra
    }

    /// The rows of the ZCURVE table whose `ZCURVE\tTABLE` line is `lines[t]`, and notes on how they were read.
    static func table(_ lines: [Substring], at t: Int, fileName: String) throws(SpectrumParseError) -> ([RawPoint], [String]) {
        let nameLineNo = t + 2
        guard t + 1 < lines.count else {
            throw SpectrumParseError(.malformedHeader("ZCURVE table has no column-name line"), fileName: fileName, line: nameLineNo)
        }
        let names = lines[t + 1].split(separator: "\t", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        func index(_ n: String) -> Int? { names.firstIndex { $0.caseInsensitiveCompare(n) == .orderedSame } }
        func required(_ n: String) throws(SpectrumParseError) -> Int {
            guard let i = index(n) else { throw SpectrumParseError(.missingColumn(n), fileName: fileName, line: nameLineNo) }
            return i
        }
        let iF = try required("Freq")
        var notes: [String] = []
        let iRe: Int, iIm: Int
        if let r = index("ZrealDrCor"), let i = index("ZimagDrCor") {
            (iRe, iIm) = (r, i)
            notes.append("drift-corrected columns ZrealDrCor, ZimagDrCor (Gamry drift correction on)")
        } else {
            (iRe, iIm) = (try required("Zreal"), try required("Zimag"))
        }
        let needed = max(iF, iRe, iIm) + 1
        // Skip the units line if present (its frequency field is not numeric, e.g. "Hz").
        var start = t + 2
        if start < lines.count {
            let fields = lines[start].split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count > iF, ParsingSupport.number(fields[iF]) == nil { start += 1 }
        }
        var rows: [RawPoint] = []
        var li = start
        while li < lines.count {
            let line = lines[li]
            let lineNo = li + 1
            li += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard line.first == "\t" || line.first == " " else { break } // end of the table section
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= needed else {
                throw SpectrumParseError(.missingField(expected: needed, found: fields.count), fileName: fileName, line: lineNo)
            }
            let row = TableRow(fields: fields, names: names, fileName: fileName, line: lineNo)
            let freq = try row.value(iF)
            if freq == 0 { continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: lineNo, column: names[iF])
            }
            // The table's Time counts from its own curve's start, not from DATE/TIME (the experiment's start): not used.
            rows.append(RawPoint(line: lineNo, frequency: freq, real: try row.value(iRe), imaginary: try row.value(iIm), time: nil, sweepKey: nil))
        }
        guard !rows.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: nameLineNo) }
        return (rows, notes)
    }
}
