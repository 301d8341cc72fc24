import Foundation

/// Reader for BioLogic EC-Lab ASCII exports of PEIS/GEIS techniques (`.mpt`, or saved under
/// any other name: the content decides).
///
/// Layout: line 1 `EC-Lab ASCII FILE`, line 2 `Nb header lines : N`; the N-th line holds the
/// tab-separated column names (v11 ends it with a TAB, v10 does not), data rows follow.
/// Columns are located by name: `freq/Hz`, and either `Re(Z)/Ohm` with `-Im(Z)/Ohm` (−Z″,
/// negated on reading; `Im(Z)/Ohm` is also accepted) or, in polar exports, `|Z|/Ohm` with
/// `Phase(Z)/deg`. Other columns may appear in any order and are ignored, except `time/s`
/// and `cycle number`. Numbers may use `,` as decimal separator (German Windows, v10 and
/// v11). Rows with frequency 0 (DC segments) are skipped.
///
/// Every loop is a sweep of its own: split where `cycle number` changes, else by the
/// header's `Loop i from point number a to b` lines, else where the frequency starts over.
///
/// `acquiredAt` is `Acquisition started on : MM/DD/YYYY HH:MM:SS(.fff)` (month first also
/// with dots, `08.27.2015`: EC-Lab writes month first in every locale), read in the given
/// time zone, plus the `time/s` of the sweep's first row. A missing or unreadable date does
/// not refuse the file: the spectra carry the reason (``AcquisitionTimeSource/none(reason:)``).
public enum BioLogicMPTParser {
    /// Parses the text of an `.mpt` file and returns its **last** sweep.
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let all = try parseAll(text, fileName: fileName, timeZone: timeZone)
        return all[all.count - 1]
    }

    /// Parses every sweep in the file, in file order.
    /// Never returns an empty array: a file without data rows throws ``SpectrumParseError/Kind/noData``.
    public static func parseAll(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> [Spectrum] {
        let lines = ParsingSupport.lines(String(ParsingSupport.withoutBOM(text)))
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
        var assembly = SweepAssembly(fileName: fileName, source: .bioLogicMPT, start: nil, startIssue: "the header has no 'Acquisition started on' line")
        var loopRanges: [ClosedRange<Int>] = []
        for (i, line) in lines.prefix(n - 1).enumerated() {
            let lower = line.lowercased()
            if lower.hasPrefix("acquisition started on") {
                let (date, issue, note) = acquisitionStart(line, timeZone: timeZone)
                assembly.start = date
                assembly.startIssue = issue.map { "line \(i + 1): \($0)" }
                if let note { assembly.notes.append(note) }
            } else if lower.hasPrefix("loop "), let r = loopRange(line) {
                loopRanges.append(r)
            }
        }
        let headerLineNumber = n
        let names = lines[n - 1].split(separator: "\t", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        func index(_ wanted: String) -> Int? {
            names.firstIndex { $0.caseInsensitiveCompare(wanted) == .orderedSame }
        }
        guard let iF = index("freq/Hz") else {
            throw SpectrumParseError(.missingColumn("freq/Hz"), fileName: fileName, line: headerLineNumber)
        }
        let iRe = index("Re(Z)/Ohm"), iNegIm = index("-Im(Z)/Ohm"), iIm = index("Im(Z)/Ohm")
        let iMod = index("|Z|/Ohm"), iPhase = index("Phase(Z)/deg")
        let columns: ImpedanceColumns
        if let iRe, let im = iNegIm ?? iIm {
            columns = .cartesian(real: iRe, imaginary: im, negated: iNegIm != nil)
        } else if let iMod, let iPhase {
            columns = .polar(modulus: iMod, phaseDegrees: iPhase)
            assembly.notes.append("polar columns |Z|/Ohm and Phase(Z)/deg converted to Z′, Z″")
        } else {
            throw SpectrumParseError(.missingColumn(iRe == nil ? "Re(Z)/Ohm (or |Z|/Ohm with Phase(Z)/deg)" : "-Im(Z)/Ohm"),
                                     fileName: fileName, line: headerLineNumber)
        }
        let iT = index("time/s"), iC = index("cycle number")
        let needed = ([iF, iT ?? 0, iC ?? 0] + columns.indices).max()! + 1

        var rows: [RawPoint] = []
        var dcTimes: [Double] = []
        var point = -1
        var loopOfRow: [Int?] = []
        for li in n..<lines.count {
            let line = lines[li]
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            point += 1
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            let lineNo = li + 1
            guard fields.count >= needed else {
                throw SpectrumParseError(.missingField(expected: needed, found: fields.count), fileName: fileName, line: lineNo)
            }
            let table = TableRow(fields: fields, names: names, fileName: fileName, line: lineNo)
            let freq = try table.value(iF)
            let t = try iT.map { i throws(SpectrumParseError) in try table.value(i) }
            if freq == 0 { if let t { dcTimes.append(t) }; continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: lineNo, column: names[iF])
            }
            let z = try columns.impedance(table)
            let cycle = try iC.map { i throws(SpectrumParseError) in try table.value(i) }
            rows.append(RawPoint(line: lineNo, frequency: freq, real: z.real, imaginary: z.imaginary, time: t, sweepKey: cycle))
            loopOfRow.append(loopRanges.firstIndex { $0.contains(point) })
        }
        // Loops by cycle number when it changes; else by the header's Loop block.
        if Set(rows.compactMap(\.sweepKey)).count <= 1 {
            for k in rows.indices { rows[k].sweepKey = loopRanges.count > 1 ? loopOfRow[k].map(Double.init) : nil }
        }
        guard !rows.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: headerLineNumber) }
        return assembly.spectra(rows, dcTimes: dcTimes)
    }

    /// `Acquisition started on : 08.27.2015 14:25:34` → the date, or why there is none.
    static func acquisitionStart(_ line: Substring, timeZone: TimeZone) -> (Date?, String?, String?) {
        guard let colon = line.firstIndex(of: ":") else { return (nil, "no date after 'Acquisition started on'", nil) }
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let d = ParsingSupport.vendorDate(parts[0], fixed: .monthFirst, configured: nil),
              let (h, mi, s) = ParsingSupport.timeOfDay(parts[1]),
              let date = ParsingSupport.date(year: d.year, month: d.month, day: d.day, hour: h, minute: mi, second: s, timeZone: timeZone) else {
            return (nil, "'Acquisition started on' is not a date and time (MM/DD/YYYY HH:MM:SS)", nil)
        }
        return (date, nil, d.assumption)
    }

    /// `Loop 3 from point number 63 to 83` → 63...83.
    static func loopRange(_ line: Substring) -> ClosedRange<Int>? {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 8, words[2].lowercased() == "from", let a = Int(words[5]), let b = Int(words[7]), a <= b else { return nil }
        return a...b
    }
}

/// Where Z is in a table: Z′ and Z″ (or −Z″) columns, or modulus and phase in degrees.
enum ImpedanceColumns {
    case cartesian(real: Int, imaginary: Int, negated: Bool)
    case polar(modulus: Int, phaseDegrees: Int)

    var indices: [Int] {
        switch self {
        case .cartesian(let r, let i, _): return [r, i]
        case .polar(let m, let p): return [m, p]
        }
    }

    /// Z of one row: Z″ = |Z| sin φ for polar columns (φ negative for capacitive points).
    func impedance(_ row: TableRow) throws(SpectrumParseError) -> (real: Double, imaginary: Double) {
        switch self {
        case .cartesian(let r, let i, let negated):
            let im = try row.value(i)
            return (try row.value(r), negated ? -im : im)
        case .polar(let m, let p):
            let mod = try row.value(m), phi = try row.value(p) * Double.pi / 180
            return (mod * cos(phi), mod * sin(phi))
        }
    }
}

/// One delimited row with its column names, for reading numbers with errors that name the
/// file, line and column.
struct TableRow {
    var fields: [Substring]
    var names: [String]
    var fileName: String
    var line: Int

    /// The number in field `i` (decimal comma accepted), or an error naming file, line and column.
    func value(_ i: Int) throws(SpectrumParseError) -> Double {
        let column = names.indices.contains(i) && !names[i].isEmpty ? names[i] : "\(i + 1)"
        guard fields.indices.contains(i) else {
            throw SpectrumParseError(.missingField(expected: i + 1, found: fields.count), fileName: fileName, line: line)
        }
        guard let v = ParsingSupport.number(fields[i]) else {
            throw SpectrumParseError(.invalidNumber(fields[i].trimmingCharacters(in: .whitespaces)), fileName: fileName, line: line, column: column)
        }
        guard v.isFinite else {
            throw SpectrumParseError(.invalidValue("not finite"), fileName: fileName, line: line, column: column)
        }
        return v
    }
}
