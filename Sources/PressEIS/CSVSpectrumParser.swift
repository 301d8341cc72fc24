import Foundation

/// Reader for plain delimited text: one header row, then one row per frequency.
///
/// * Separator: `;` if the header contains one, else tab if it contains one, else `,`.
///   With `;` or tab separators a `,` inside a number is a decimal separator.
/// * Lines starting with `#` are comments. `# acquired_at: <ISO 8601>` sets `acquiredAt`
///   (e.g. `2026-11-28T14:03:12Z`, `2026-11-28 14:03:12+01:00`; without offset: `timeZone`).
/// * Header names (case-insensitive, units such as `/Hz`, `(Ohm)`, `[Ω]` ignored):
///   frequency — `freq`, `frequency`, `f`; Z′ — `Zreal`, `Z'`, `Re(Z)`, `Zre`, `Z_re`, `real`;
///   Z″ — `Zimag`, `Z''`, `Z"`, `Im(Z)`, `Zim`, `Z_im`, `imag`. A leading `-` (or `−`) on the
///   Z″ name means the column holds −Z″ and it is negated on reading.
/// * Rows with frequency 0 are skipped.
public enum CSVSpectrumParser {
    /// Parses CSV text.
    /// - Parameters:
    ///   - text: whole file content.
    ///   - fileName: used in error messages and stored in the spectrum.
    ///   - timeZone: zone for an `acquired_at` value that carries no UTC offset (default: this machine's zone).
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let lines = ParsingSupport.lines(text)
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
        let header = lines[h]
        let sep: Character = header.contains(";") ? ";" : (header.contains("\t") ? "\t" : ",")
        let names = header.split(separator: sep, omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
        var iF: Int? = nil, iRe: Int? = nil, iIm: Int? = nil
        var imNegated = false
        for (i, name) in names.enumerated() {
            let (key, negated) = normalise(name)
            if iF == nil, ["freq", "frequency", "f"].contains(key) { iF = i }
            else if iRe == nil, !negated, ["zreal", "z'", "re(z)", "zre", "z_re", "real", "re"].contains(key) { iRe = i }
            else if iIm == nil, ["zimag", "z''", "z\"", "im(z)", "zim", "z_im", "imag", "im"].contains(key) {
                iIm = i; imNegated = negated
            }
        }
        guard let iF else { throw SpectrumParseError(.missingColumn("frequency (freq, frequency, f/Hz)"), fileName: fileName, line: h + 1) }
        guard let iRe else { throw SpectrumParseError(.missingColumn("Z′ (Zreal, Z', Re(Z))"), fileName: fileName, line: h + 1) }
        guard let iIm else { throw SpectrumParseError(.missingColumn("Z″ (Zimag, Z'', Im(Z), -Im(Z), -Z'')"), fileName: fileName, line: h + 1) }
        let needed = max(iF, iRe, iIm) + 1
        var f: [Double] = [], re: [Double] = [], im: [Double] = []
        for li in (h + 1)..<lines.count {
            let line = lines[li]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let lineNo = li + 1
            let fields = line.split(separator: sep, omittingEmptySubsequences: false)
            guard fields.count >= needed else {
                throw SpectrumParseError(.missingField(expected: needed, found: fields.count), fileName: fileName, line: lineNo)
            }
            func value(_ i: Int) throws(SpectrumParseError) -> Double {
                let field = fields[i]
                // With a comma separator a comma cannot be a decimal mark; ParsingSupport handles the rest.
                guard let v = ParsingSupport.number(field), v.isFinite else {
                    throw SpectrumParseError(.invalidNumber(field.trimmingCharacters(in: .whitespaces)), fileName: fileName, line: lineNo, column: names[i])
                }
                return v
            }
            let freq = try value(iF)
            if freq == 0 { continue }
            guard freq > 0 else {
                throw SpectrumParseError(.invalidValue("negative frequency \(freq)"), fileName: fileName, line: lineNo, column: names[iF])
            }
            f.append(freq)
            re.append(try value(iRe))
            let z2 = try value(iIm)
            im.append(imNegated ? -z2 : z2)
        }
        guard !f.isEmpty else { throw SpectrumParseError(.noData, fileName: fileName, line: h + 1) }
        return Spectrum(frequencies: f, real: re, imaginary: im, acquiredAt: acquired, source: .csv, fileName: fileName)
    }

    /// Lower-cases, strips quotes/blanks and unit suffixes; reports a leading minus separately.
    static func normalise(_ name: String) -> (String, Bool) {
        var s = name.lowercased().replacingOccurrences(of: "\"", with: "\u{1}") // keep Z" distinguishable from quoting
        // Strip surrounding quotes: "\u{1}freq\u{1}".
        if s.hasPrefix("\u{1}") && s.hasSuffix("\u{1}") && s.count >= 2 { s = String(s.dropFirst().dropLast()) }
        s = s.replacingOccurrences(of: "\u{1}", with: "\"")
        s = s.filter { !$0.isWhitespace }
        s = s.replacingOccurrences(of: "\u{2212}", with: "-").replacingOccurrences(of: "′", with: "'").replacingOccurrences(of: "″", with: "''")
        for unit in ["/hz", "(hz)", "[hz]", "/ohm", "(ohm)", "[ohm]", "/ω", "(ω)", "[ω]", "/Ω", "(Ω)", "[Ω]", "_hz", "_ohm"] {
            if s.hasSuffix(unit.lowercased()) { s = String(s.dropLast(unit.count)); break }
        }
        var negated = false
        if s.hasPrefix("-") { negated = true; s.removeFirst() }
        return (s, negated)
    }
}
