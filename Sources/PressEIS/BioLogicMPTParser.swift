import Foundation

/// Reader for BioLogic EC-Lab ASCII exports (`.mpt`) of PEIS/GEIS techniques.
///
/// Layout: line 1 `EC-Lab ASCII FILE`, line 2 `Nb header lines : N`; the N-th line is the
/// tab-separated column header, data rows follow. Columns are located by name:
/// `freq/Hz`, `Re(Z)/Ohm` and `-Im(Z)/Ohm` (the latter is −Z″ and is negated on reading);
/// other columns may appear in any order and are ignored, except `time/s` (see below).
/// Numbers may use `,` as decimal separator. Rows with frequency 0 (DC segments) are skipped.
///
/// If a `cycle number` column is present and the file holds several sweeps (EC-Lab's repeated
/// PEIS, "nc cycles"), ``parse(_:fileName:timeZone:)`` returns the **last** one and
/// ``parseAll(_:fileName:timeZone:)`` returns them all in file order.
///
/// `acquiredAt` is `Acquisition started on : MM/DD/YYYY HH:MM:SS(.fff)` from the header, read in
/// the given time zone (EC-Lab writes the instrument PC's local wall-clock time and no offset),
/// plus the `time/s` value of the first impedance row when that column exists (EC-Lab's
/// `time/s` counts from the acquisition start, so this is the start of this sweep).
public enum BioLogicMPTParser {
    /// Parses the text of an `.mpt` file.
    /// - Parameters:
    ///   - text: whole file content.
    ///   - fileName: used in error messages and stored in the spectrum.
    ///   - timeZone: zone of the header's wall-clock time (default: this machine's zone).
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let all = try parseAll(text, fileName: fileName, timeZone: timeZone)
        return all[all.count - 1]
    }

    /// Parses every sweep in the file (split on changes of the `cycle number` column, if present).
    /// Never returns an empty array: a file without data rows throws ``SpectrumParseError/Kind/noData``.
    public static func parseAll(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> [Spectrum] {
        let lines = ParsingSupport.lines(text)
        guard lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        guard lines[0].trimmingCharacters(in: .whitespaces).uppercased().hasPrefix("EC-LAB ASCII FILE") else {
            throw SpectrumParseError(.malformedHeader("first line must be 'EC-Lab ASCII FILE'"), fileName: fileName, line: 1)
        }
        // "Nb header lines : N" (line 2 in every EC-Lab version seen; search the first 5 lines to be lenient).
        var headerCount: Int? = nil
        for (i, line) in lines.prefix(5).enumerated() where line.lowercased().hasPrefix("nb header lines") {
            guard let colon = line.firstIndex(of: ":"),
                  let n = Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)) else {
                throw SpectrumParseError(.malformedHeader("cannot read 'Nb header lines'"), fileName: fileName, line: i + 1)
            }
            headerCount = n
        }
        guard let n = headerCount else {
            throw SpectrumParseError(.malformedHeader("missing 'Nb header lines : N'"), fileName: fileName, line: 2)
        }
        guard n >= 3, n <= lines.count else {
            throw SpectrumParseError(.malformedHeader("'Nb header lines : \(n)' but file has \(lines.count) lines"), fileName: fileName, line: 2)
        }
        // Acquisition start.
        var start: Date? = nil
        for (i, line) in lines.prefix(n - 1).enumerated() where line.lowercased().hasPrefix("acquisition started on") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let parts = value.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, let (y, mo, d) = ParsingSupport.monthDayYear(parts[0]),
                  let (h, mi, s) = ParsingSupport.timeOfDay(parts[1]),
                  let date = ParsingSupport.date(year: y, month: mo, day: d, hour: h, minute: mi, second: s, timeZone: timeZone) else {
                throw SpectrumParseError(.invalidDate(value), fileName: fileName, line: i + 1)
            }
            start = date
        }
        // Column header is line n (1-based).
        let headerLineNumber = n
        let names = lines[n - 1].split(separator: "\t", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        func index(_ wanted: [String]) -> Int? {
            names.firstIndex { name in wanted.contains { $0.caseInsensitiveCompare(name) == .orderedSame } }
        }
        guard let iF = index(["freq/Hz"]) else {
            throw SpectrumParseError(.missingColumn("freq/Hz"), fileName: fileName, line: headerLineNumber)
        }
        guard let iRe = index(["Re(Z)/Ohm"]) else {
            throw SpectrumParseError(.missingColumn("Re(Z)/Ohm"), fileName: fileName, line: headerLineNumber)
        }
        let iNegIm = index(["-Im(Z)/Ohm"])
        let iIm = index(["Im(Z)/Ohm"])
        guard iNegIm != nil || iIm != nil else {
            throw SpectrumParseError(.missingColumn("-Im(Z)/Ohm"), fileName: fileName, line: headerLineNumber)
        }
        let iT = index(["time/s"])
        let iC = index(["cycle number"])
        let needed = [iF, iRe, iNegIm ?? iIm!, iT ?? 0, iC ?? 0].max()! + 1

        var f: [Double] = [], re: [Double] = [], im: [Double] = []
        var firstTime: Double? = nil
        var cycle: Double? = nil
        var sweeps: [Spectrum] = []
        func flush() {
            guard !f.isEmpty else { return }
            var acquired = start
            if let s = start, let t = firstTime, t >= 0 { acquired = s.addingTimeInterval(t) }
            sweeps.append(Spectrum(frequencies: f, real: re, imaginary: im, acquiredAt: acquired, source: .bioLogicMPT, fileName: fileName))
            f = []; re = []; im = []; firstTime = nil
        }
        for li in n..<lines.count {
            let line = lines[li]
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            let lineNo = li + 1
            guard fields.count >= needed else {
                throw SpectrumParseError(.missingField(expected: needed, found: fields.count), fileName: fileName, line: lineNo)
            }
            func value(_ i: Int) throws(SpectrumParseError) -> Double {
                guard let v = ParsingSupport.number(fields[i]) else {
                    throw SpectrumParseError(.invalidNumber(String(fields[i])), fileName: fileName, line: lineNo, column: names[i])
                }
                guard v.isFinite else {
                    throw SpectrumParseError(.invalidValue("not finite"), fileName: fileName, line: lineNo, column: names[i])
                }
                return v
            }
            let freq = try value(iF)
            if freq == 0 { continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: lineNo, column: names[iF])
            }
            if let iC {
                let c = try value(iC)
                if let prev = cycle, c != prev { flush() }
                cycle = c
            }
            f.append(freq)
            re.append(try value(iRe))
            if let i = iNegIm { im.append(-(try value(i))) } else { im.append(try value(iIm!)) }
            if firstTime == nil, let iT { firstTime = try value(iT) }
        }
        flush()
        guard !sweeps.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: headerLineNumber) }
        return sweeps
    }
}
