import Foundation

/// Reader for Gamry Framework `EXPLAIN` data files (`.DTA`) of potentiostatic/galvanostatic EIS.
///
/// Layout: tab-separated key lines (`EXPLAIN`, `TAG\tEISPOT`, `DATE\tLABEL\t11/28/2026\tDate`,
/// `TIME\tLABEL\t14:03:12\tTime`, …), then `ZCURVE\tTABLE`, a column-name line
/// (`\tPt\tTime\tFreq\tZreal\tZimag\t…`), a units line, and data rows each starting with a tab.
/// Columns are found by name: `Freq`, `Zreal`, `Zimag` (already the imaginary part of Z).
/// The table ends at the first line that does not start with a tab (or at end of file).
/// `acquiredAt` comes from DATE (`M/D/YYYY`) and TIME (`HH:MM:SS[.ffffff]`) read in `timeZone`
/// (Gamry writes local wall-clock time without offset).
public enum GamryDTAParser {
    /// Parses the text of a `.DTA` file.
    /// - Parameters:
    ///   - text: whole file content.
    ///   - fileName: used in error messages and stored in the spectrum.
    ///   - timeZone: zone of the DATE/TIME wall-clock values (default: this machine's zone).
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let lines = ParsingSupport.lines(text)
        guard lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        guard lines[0].trimmingCharacters(in: .whitespaces) == "EXPLAIN" else {
            throw SpectrumParseError(.malformedHeader("first line must be 'EXPLAIN'"), fileName: fileName, line: 1)
        }
        var dateValue: (Int, Int, Int, Int)? = nil   // y, m, d, line
        var timeValue: (Int, Int, Double, Int)? = nil
        var tableLine: Int? = nil
        for (i, line) in lines.enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard let key = fields.first else { continue }
            if key == "ZCURVE", fields.count >= 2, fields[1].trimmingCharacters(in: .whitespaces) == "TABLE" {
                tableLine = i; break
            }
            if key == "DATE", fields.count >= 3 {
                guard let (y, m, d) = ParsingSupport.monthDayYear(Substring(fields[2].trimmingCharacters(in: .whitespaces))) else {
                    throw SpectrumParseError(.invalidDate(String(fields[2])), fileName: fileName, line: i + 1, column: "DATE")
                }
                dateValue = (y, m, d, i + 1)
            } else if key == "TIME", fields.count >= 3 {
                guard let (h, mi, s) = ParsingSupport.timeOfDay(Substring(fields[2].trimmingCharacters(in: .whitespaces))) else {
                    throw SpectrumParseError(.invalidDate(String(fields[2])), fileName: fileName, line: i + 1, column: "TIME")
                }
                timeValue = (h, mi, s, i + 1)
            }
        }
        guard let t = tableLine else {
            throw SpectrumParseError(.malformedHeader("missing 'ZCURVE\tTABLE' line"), fileName: fileName)
        }
        var acquired: Date? = nil
        if let (y, mo, d, dl) = dateValue {
            let (h, mi, s) = timeValue.map { ($0.0, $0.1, $0.2) } ?? (0, 0, 0)
            guard let date = ParsingSupport.date(year: y, month: mo, day: d, hour: h, minute: mi, second: s, timeZone: timeZone) else {
                throw SpectrumParseError(.invalidDate("\(mo)/\(d)/\(y)"), fileName: fileName, line: dl, column: "DATE")
            }
            acquired = date
        }
        let nameLineNo = t + 2
        guard t + 1 < lines.count else {
            throw SpectrumParseError(.malformedHeader("ZCURVE table has no column-name line"), fileName: fileName, line: nameLineNo)
        }
        let names = lines[t + 1].split(separator: "\t", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        func index(_ n: String) throws(SpectrumParseError) -> Int {
            guard let i = names.firstIndex(where: { $0.caseInsensitiveCompare(n) == .orderedSame }) else {
                throw SpectrumParseError(.missingColumn(n), fileName: fileName, line: nameLineNo)
            }
            return i
        }
        let iF = try index("Freq"), iRe = try index("Zreal"), iIm = try index("Zimag")
        let needed = max(iF, iRe, iIm) + 1
        // Skip the units line if present (its frequency field is not numeric, e.g. "Hz").
        var start = t + 2
        if start < lines.count {
            let fields = lines[start].split(separator: "\t", omittingEmptySubsequences: false)
            if fields.count > iF, ParsingSupport.number(fields[iF]) == nil { start += 1 }
        }
        var f: [Double] = [], re: [Double] = [], im: [Double] = []
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
            func value(_ i: Int) throws(SpectrumParseError) -> Double {
                guard let v = ParsingSupport.number(fields[i]), v.isFinite else {
                    throw SpectrumParseError(.invalidNumber(String(fields[i])), fileName: fileName, line: lineNo, column: names[i])
                }
                return v
            }
            let freq = try value(iF)
            if freq == 0 { continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: lineNo, column: names[iF])
            }
            f.append(freq); re.append(try value(iRe)); im.append(try value(iIm))
        }
        guard !f.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: nameLineNo) }
        return Spectrum(frequencies: f, real: re, imaginary: im, acquiredAt: acquired, source: .gamryDTA, fileName: fileName)
    }
}
