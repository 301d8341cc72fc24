import Foundation

/// Reader for Scribner's text formats, which ZPlot and ZView write and Metrohm Autolab (NOVA)
/// exports for ZView:
///
/// * **ZPlot `.z`** (`ZPLOT2 ASCII`): `Key: value` header lines (`Date:`, `Time:`,
///   `Data Points:`), the tab-separated column names on the line before `End Comments`, then
///   tab-separated rows.
/// * **Windows text** (`"Z60W Data File: Version 1.1"`, `"ZPlotW Data File: …"`): quoted header
///   lines, optionally `Date: MM-DD-YYYY    Time: HH:MM:SS`, a sweep-settings line, the point
///   count, the column names as one quoted field (names separated by runs of blanks), then
///   comma-separated rows.
///
/// Columns: `Freq(Hz)`, `Z'(a)`, `Z''(b)` (signed Im(Z)), `Time(Sec)` (seconds from the sweep's
/// start). The date is written in the PC's locale: day and month as for Gamry (values, then
/// `dateOrder`, then the separator). A sweep with fewer rows than the header planned (an
/// interrupted or trimmed sweep) is read as it is, with a note.
public enum ScribnerParser {
    /// Parses a ZPlot `.z` file or a Z60W/ZPlotW text file, every sweep in file order.
    public static func parseAll(_ text: String, fileName: String, timeZone: TimeZone = .current,
                                dateOrder: DateOrder? = nil) throws(SpectrumParseError) -> [Spectrum] {
        let lines = ParsingSupport.lines(String(ParsingSupport.withoutBOM(text)))
        guard lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        let zplot = isZPlot(lines[0])
        // The column-name line and where the rows start.
        let nameLine: Int
        let names: [String]
        let separator: Separator
        if zplot {
            guard let end = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).lowercased() == "end comments" }), end >= 1 else {
                throw SpectrumParseError(.malformedHeader("ZPlot file without an 'End Comments' line"), fileName: fileName)
            }
            nameLine = end - 1
            names = lines[nameLine].split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces) }
            separator = .character("\t")
        } else {
            guard let i = lines.prefix(100).firstIndex(where: isQuotedColumnLine) else {
                throw SpectrumParseError(.malformedHeader("no quoted column-name line naming Freq and Z'"), fileName: fileName)
            }
            nameLine = i
            names = lines[i].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                .components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            separator = .character(",")
        }
        let firstData = zplot ? nameLine + 2 : nameLine + 1
        let layout = try CSVSpectrumParser.Layout(names: names, fileName: fileName, line: nameLine + 1)
        var assembly = SweepAssembly(fileName: fileName, source: zplot ? .zPlot : .autolabZ60W, start: nil,
                                     startIssue: "the header has no Date line")
        let (start, issue, notes) = headerDate(lines[..<nameLine], timeZone: timeZone, dateOrder: dateOrder)
        assembly.start = start
        if let issue { assembly.startIssue = issue }
        assembly.notes += notes
        let needed = ([layout.frequency, layout.time ?? 0] + layout.impedance.indices).max()! + 1
        var rows: [RawPoint] = []
        for li in firstData..<lines.count {
            let line = lines[li]
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let fields = separator.split(line)
            guard fields.count >= needed else {
                throw SpectrumParseError(.missingField(expected: needed, found: fields.count), fileName: fileName, line: li + 1)
            }
            let row = TableRow(fields: fields, names: names, fileName: fileName, line: li + 1)
            let freq = try row.value(layout.frequency)
            if freq == 0 { continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: li + 1, column: names[layout.frequency])
            }
            let z = try layout.impedance.impedance(row)
            let t = try layout.time.map { i throws(SpectrumParseError) in try row.value(i) }
            rows.append(RawPoint(line: li + 1, frequency: freq, real: z.real, imaginary: z.imaginary, time: t, sweepKey: nil))
        }
        guard !rows.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: nameLine + 1) }
        if let planned = plannedPoints(lines[..<nameLine], zplot: zplot), planned > rows.count {
            assembly.notes.append("sweep cut short: \(rows.count) of the \(planned) points the header plans")
        }
        return assembly.spectra(rows)
    }

    /// `ZPLOT2 ASCII` (the `.z` layout).
    static func isZPlot(_ first: Substring) -> Bool {
        first.trimmingCharacters(in: .whitespaces).uppercased().hasPrefix("ZPLOT2 ASCII")
    }

    /// `"  Freq(Hz)    Ampl  …  Z'(a)    Z''(b) …"`: the Windows layout's quoted column names.
    static func isQuotedColumnLine(_ line: Substring) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        return t.hasPrefix("\"") && t.lowercased().contains("freq") && t.contains("Z'")
    }

    /// Whether the text looks like a Scribner file: a ZPlot header, or a quoted "… Data File"
    /// first line with a quoted column-name line in the first 100 lines.
    static func recognises(_ lines: [Substring]) -> Bool {
        guard let first = lines.first else { return false }
        if isZPlot(first) { return true }
        return first.hasPrefix("\"") && lines.prefix(100).contains(where: isQuotedColumnLine)
    }

    /// `Date: 10-12-2018` and `Time: 11:04:34`, on one line or two.
    static func headerDate(_ header: ArraySlice<Substring>, timeZone: TimeZone, dateOrder: DateOrder?) -> (Date?, String?, [String]) {
        var date: ParsingSupport.VendorDate? = nil, time: (Int, Int, Double)? = nil
        var issue: String? = nil
        for (k, line) in header.enumerated() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            // `Date:` and `Time:` as the line's first word, or side by side (`Date: … Time: …`).
            for (j, w) in words.enumerated() where j + 1 < words.count && (j == 0 || j == 2) {
                if w.lowercased() == "date:", date == nil, issue == nil {
                    date = ParsingSupport.vendorDate(words[j + 1], fixed: nil, configured: dateOrder)
                    if date == nil { issue = "line \(k + header.startIndex + 1): Date is not a date" }
                } else if w.lowercased() == "time:", time == nil {
                    time = ParsingSupport.timeOfDay(words[j + 1])
                }
            }
        }
        guard let d = date else { return (nil, issue, []) }
        let (h, mi, s) = time ?? (0, 0, 0)
        guard let at = ParsingSupport.date(year: d.year, month: d.month, day: d.day, hour: h, minute: mi, second: s, timeZone: timeZone) else {
            return (nil, "the header's Date and Time are not a valid date and time", [])
        }
        return (at, nil, d.assumption.map { [$0] } ?? [])
    }

    /// The number of points the header plans: ZPlot's `Data Points:`, or the Windows layout's
    /// count line (the line before the column names).
    static func plannedPoints(_ header: ArraySlice<Substring>, zplot: Bool) -> Int? {
        if zplot {
            for line in header where line.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("data points:") {
                return Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "")
            }
            return nil
        }
        return header.last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }
}
