import Foundation

/// Picks the right parser for a file by extension and, failing that, by content.
public enum SpectrumReader {
    /// Detects the format: `.mpt` → EC-Lab, `.dta` (any case) → Gamry, `.csv`/`.txt` → CSV unless the
    /// content starts with `EC-Lab ASCII FILE` or `EXPLAIN`; unknown extensions are decided by content.
    public static func detectFormat(fileName: String, text: String) -> SpectrumFormat? {
        let firstLine = text.prefix(while: { !$0.isNewline }).trimmingCharacters(in: .whitespaces)
        let byContent: SpectrumFormat? = firstLine.uppercased().hasPrefix("EC-LAB ASCII FILE") ? .bioLogicMPT
            : (firstLine == "EXPLAIN" ? .gamryDTA : nil)
        let ext = fileName.split(separator: ".").count > 1 ? fileName.split(separator: ".").last!.lowercased() : ""
        switch ext {
        case "mpt": return .bioLogicMPT
        case "dta": return .gamryDTA
        case "csv", "txt": return byContent ?? .csv
        default:
            if let byContent { return byContent }
            let body = text.split(whereSeparator: { $0.isNewline }).first { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            if let body, body.lowercased().contains("freq") { return .csv }
            return nil
        }
    }

    /// Parses text with the parser chosen by ``detectFormat(fileName:text:)``.
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        switch detectFormat(fileName: fileName, text: text) {
        case .bioLogicMPT: return try BioLogicMPTParser.parse(text, fileName: fileName, timeZone: timeZone)
        case .gamryDTA: return try GamryDTAParser.parse(text, fileName: fileName, timeZone: timeZone)
        case .csv: return try CSVSpectrumParser.parse(text, fileName: fileName, timeZone: timeZone)
        case .synthetic, nil: throw SpectrumParseError(.unrecognisedFormat, fileName: fileName, line: 1)
        }
    }

    /// Decodes raw bytes (UTF-8, falling back to ISO-8859-1 / Windows-1252 as vendor software on
    /// Windows writes `°` and `²` in a legacy code page) and parses them.
    public static func parse(data: Data, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let decoded: String
        if let utf8 = String(data: data, encoding: .utf8) { decoded = utf8 }
        else { decoded = String(data.map { Character(Unicode.Scalar($0)) }) }
        return try parse(decoded, fileName: fileName, timeZone: timeZone)
    }
}
