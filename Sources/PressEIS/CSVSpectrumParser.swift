import Foundation

/// Reader for plain delimited text: with a header row naming the columns, or three numeric
/// columns without one.
///
/// * Separator: `;` if the first row contains one, else tab if it contains one, else `,`
///   if that gives the columns, else runs of blanks. With any separator but `,` a `,` inside
///   a number is a decimal separator. A UTF-8 byte-order mark is ignored, lines may end in CRLF.
/// * Lines starting with `#` are comments. `# acquired_at: <ISO 8601>` sets `acquiredAt`
///   (e.g. `2026-11-28T14:03:12Z`, `2026-11-28 14:03:12+01:00`; without offset: `timeZone`).
/// * Header names (case-insensitive, quotes and units such as `/Hz`, `(Ohm)`, `[Ω]`, `/deg`
///   ignored): frequency — `freq`, `frequency`, `f`; Z′ — `Zreal`, `Z'`, `Re(Z)`, `Zre`, `Z_re`,
///   `real`; Z″ — `Zimag`, `Z''`, `Z"`, `Im(Z)`, `Zim`, `Z_im`, `imag`. A leading `-` (or `−`)
///   on the Z″ name means the column holds −Z″. Without Z′/Z″, polar columns: `|Z|`, `Zmod`,
///   `mod` with `Phase(Z)`, `phase`, `Zphz` in degrees. `time/s` (seconds from the
///   experiment's start) and `loop_index`, `loop`, `cycle number` (one sweep per value) are used when present.
/// * Without a header (the first row is all numbers): frequency, Z′, Z″ in the first three
///   columns, in either frequency order. Whether the third column is Z″ or −Z″ is decided
///   from the data: a cell is capacitive over most of a sweep, so the sign most of its values
///   have is the capacitive one; the spectrum's notes say what was chosen.
/// * Rows with frequency 0 are skipped. Several sweeps (by loop column, or the frequency
///   starting over) become several spectra.
public enum CSVSpectrumParser {
    /// Parses delimited text and returns its last sweep.
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let all = try parseAll(text, fileName: fileName, timeZone: timeZone)
        return all[all.count - 1]
    }

    /// Parses every sweep of delimited text, in file order.
    public static func parseAll(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> [Spectrum] {
        let lines = ParsingSupport.lines(String(ParsingSupport.withoutBOM(text)))
        guard lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        var acquired: Date? = nil
        var headerIndex: Int? = nil
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let body = line.dropFirst().trimmingCharacters(in: .whitespaces)
                if body.lowercased().hasPrefix("acquired_at") {
                    guard let colon = body.firstIndex(of: ":") else {
                        throw SpectrumParseError(.invalidDate(body), fileName: fileName, line: i + 1)
                    }
                    let value = body[body.index(after: colon)...]
                    guard let d = ParsingSupport.iso8601(value, timeZone: timeZone) else {
                        throw SpectrumParseError(.invalidDate(value.trimmingCharacters(in: .whitespaces)), fileName: fileName, line: i + 1)
                    }
                    acquired = d
                }
                continue
            }
            headerIndex = i
            break
        }
        guard let h = headerIndex else { throw SpectrumParseError(.malformedHeader("no header row"), fileName: fileName) }
        let sep = Separator.detect(lines[h])
        var assembly = SweepAssembly(fileName: fileName, source: .csv, start: acquired,
                                     startIssue: "the file carries no date (no '# acquired_at:' line)")
        let firstFields = sep.split(lines[h])
        let headerless = firstFields.count >= 3 && firstFields.prefix(3).allSatisfy { ParsingSupport.number($0) != nil }
        let names: [String]
        let layout: Layout
        let firstData: Int
        if headerless {
            assembly = SweepAssembly(fileName: fileName, source: .headerless, start: acquired,
                                     startIssue: "the file carries no date (no header)")
            names = ["frequency", "Z′", "Z″"] + (firstFields.count > 3 ? (4...firstFields.count).map { "\($0)" } : [])
            layout = Layout(frequency: 0, impedance: .cartesian(real: 1, imaginary: 2, negated: false), time: nil, loop: nil)
            firstData = h
        } else {
            names = firstFields.map { String($0).trimmingCharacters(in: .whitespaces) }
            layout = try Layout(names: names, fileName: fileName, line: h + 1)
            if case .polar = layout.impedance { assembly.notes.append("polar columns |Z| and phase (degrees) converted to Z′, Z″") }
            firstData = h + 1
        }
        let needed = ([layout.frequency, layout.time ?? 0, layout.loop ?? 0] + layout.impedance.indices).max()! + 1
        var rows: [RawPoint] = []
        var dcTimes: [Double] = []
        for li in firstData..<lines.count {
            let line = lines[li]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let lineNo = li + 1
            let fields = sep.split(line)
            guard fields.count >= needed else {
                throw SpectrumParseError(.missingField(expected: needed, found: fields.count), fileName: fileName, line: lineNo)
            }
            let row = TableRow(fields: fields, names: names, fileName: fileName, line: lineNo)
            let freq = try row.value(layout.frequency)
            let t = try layout.time.map { i throws(SpectrumParseError) in try row.value(i) }
            if freq == 0 { if let t { dcTimes.append(t) }; continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: lineNo, column: names[layout.frequency])
            }
            let z = try layout.impedance.impedance(row)
            let loop = try layout.loop.map { i throws(SpectrumParseError) in try row.value(i) }
            rows.append(RawPoint(line: lineNo, frequency: freq, real: z.real, imaginary: z.imaginary, time: t, sweepKey: loop))
        }
        guard !rows.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: h + 1) }
        if headerless {
            // Capacitive is the majority: the third column holds Im(Z) if most values are negative.
            let negatives = rows.filter { $0.imaginary < 0 }.count
            if negatives * 2 < rows.count {
                for k in rows.indices { rows[k].imaginary = -rows[k].imaginary }
                assembly.notes.append("third column read as −Z″ (most values positive)")
            } else {
                assembly.notes.append("third column read as Z″ (most values negative)")
            }
        }
        return assembly.spectra(rows, dcTimes: dcTimes)
    }

    /// Which columns hold what, found from the header's names.
    struct Layout {
        var frequency: Int
        var impedance: ImpedanceColumns
        var time: Int?
        var loop: Int?

        init(frequency: Int, impedance: ImpedanceColumns, time: Int?, loop: Int?) {
            self.frequency = frequency; self.impedance = impedance; self.time = time; self.loop = loop
        }

        init(names: [String], fileName: String, line: Int) throws(SpectrumParseError) {
            var iF: Int? = nil, iRe: Int? = nil, iIm: Int? = nil, iMod: Int? = nil, iPh: Int? = nil, iT: Int? = nil, iL: Int? = nil
            var imNegated = false
            for (i, name) in names.enumerated() {
                let (key, negated) = normalise(name)
                if iF == nil, ["freq", "frequency", "f"].contains(key) { iF = i }
                else if iRe == nil, !negated, ["zreal", "z'", "re(z)", "zre", "z_re", "real", "re", "z'(a)"].contains(key) { iRe = i }
                else if iIm == nil, ["zimag", "z''", "z\"", "im(z)", "zim", "z_im", "imag", "im", "z''(b)"].contains(key) {
                    iIm = i; imNegated = negated
                } else if iMod == nil, !negated, ["|z|", "zmod", "mod", "modulus", "mod(z)"].contains(key) { iMod = i }
                else if iPh == nil, ["phase(z)", "phase", "zphz", "phz", "phi"].contains(key) { iPh = i }
                else if iT == nil, ["time", "t"].contains(key) { iT = i }
                else if iL == nil, ["loop_index", "loop", "cyclenumber", "cycle", "loopindex"].contains(key) { iL = i }
            }
            guard let iF else { throw SpectrumParseError(.missingColumn("frequency (freq, frequency, f/Hz)"), fileName: fileName, line: line) }
            if let iRe, let iIm {
                impedance = .cartesian(real: iRe, imaginary: iIm, negated: imNegated)
            } else if iRe == nil, iIm == nil, let iMod, let iPh {
                impedance = .polar(modulus: iMod, phaseDegrees: iPh)
            } else if iRe == nil {
                throw SpectrumParseError(.missingColumn("Z′ (Zreal, Z', Re(Z)) or |Z| with phase"), fileName: fileName, line: line)
            } else {
                throw SpectrumParseError(.missingColumn("Z″ (Zimag, Z'', Im(Z), -Im(Z), -Z'')"), fileName: fileName, line: line)
            }
            frequency = iF; time = iT; loop = iL
        }
    }

    /// Lower-cases, strips quotes/blanks and unit suffixes; reports a leading minus separately.
    static func normalise(_ name: String) -> (String, Bool) {
        var s = name.lowercased().replacingOccurrences(of: "\"", with: "\u{1}") // keep Z" distinguishable from quoting
        // Strip surrounding quotes: "\u{1}freq\u{1}".
        if s.hasPrefix("\u{1}") && s.hasSuffix("\u{1}") && s.count >= 2 { s = String(s.dropFirst().dropLast()) }
        s = s.replacingOccurrences(of: "\u{1}", with: "\"")
        s = s.filter { !$0.isWhitespace }
        s = s.replacingOccurrences(of: "\u{2212}", with: "-").replacingOccurrences(of: "′", with: "'").replacingOccurrences(of: "″", with: "''")
        for unit in ["/hz", "(hz)", "[hz]", "/ohm", "(ohm)", "[ohm]", "/ω", "(ω)", "[ω]", "_hz", "_ohm",
                     "/deg", "(deg)", "[deg]", "(°)", "[°]", "/°", "/s", "(s)", "[s]", "(sec)"] {
            if s.hasSuffix(unit) { s = String(s.dropLast(unit.count)); break }
        }
        var negated = false
        if s.hasPrefix("-") { negated = true; s.removeFirst() }
        return (s, negated)
    }
}

/// A field separator chosen from the first row.
enum Separator {
    case character(Character)
    case blanks

    /// `;` if present, else tab, else `,` — unless the row is numbers separated by blanks
    /// with decimal commas (`1,5 2,25 -0,4`) — else runs of blanks.
    static func detect(_ line: Substring) -> Separator {
        if line.contains(";") { return .character(";") }
        if line.contains("\t") { return .character("\t") }
        if line.contains(",") {
            let byBlanks = Separator.blanks.split(line)
            if byBlanks.count >= 3, byBlanks.allSatisfy({ ParsingSupport.number($0) != nil }) { return .blanks }
            return .character(",")
        }
        return .blanks
    }

    func split(_ line: Substring) -> [Substring] {
        switch self {
        case .character(let c): return line.split(separator: c, omittingEmptySubsequences: false)
        case .blanks: return line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        }
    }
}
