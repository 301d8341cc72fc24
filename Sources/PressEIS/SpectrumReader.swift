import Foundation

/// How to read a file's dates.
public struct ReadOptions: Sendable, Equatable {
    /// Zone of the wall-clock times vendors write without an offset (EC-Lab, Gamry, ZPlot).
    public var timeZone: TimeZone = .current
    /// The analyser PC's date convention, for dates whose day and month could be either way
    /// round; nil: decided by the separator (`.` day first, `/` and `-` month first), noted.
    public var dateOrder: DateOrder? = nil
    /// The file's modification time: spectra without a usable date of their own are dated by
    /// it (each sweep back by its offset to the file's last row, when the file has times).
    public var modificationTime: Date? = nil
    /// Creates options (defaults: this machine's zone, no date order, no modification time).
    public init(timeZone: TimeZone = .current, dateOrder: DateOrder? = nil, modificationTime: Date? = nil) {
        self.timeZone = timeZone; self.dateOrder = dateOrder; self.modificationTime = modificationTime
    }
}

/// Picks the reader for a file by its content (the extension only breaks a tie), reads
/// every spectrum it holds and dates each one.
public enum SpectrumReader {
    /// Detects the format from the content: `EC-Lab ASCII FILE` → EC-Lab; `EXPLAIN` → Gamry;
    /// `ZPLOT2 ASCII`, or a quoted Scribner header with a quoted column line naming `Freq` and
    /// `Z'` → ZPlot / Z60W; a first row of three or more numbers → headerless; a first row naming
    /// a frequency column → CSV. Content that says nothing (empty, unknown) falls back on the
    /// extension (`.mpt`, `.dta`, `.csv`, `.txt`) so that the reader can say what is missing.
    public static func detectFormat(fileName: String, text: String) -> SpectrumFormat? {
        let lines = ParsingSupport.lines(String(ParsingSupport.withoutBOM(text).prefix(64 * 1024)))
        let first = lines.first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if first.uppercased().hasPrefix("EC-LAB ASCII FILE") { return .bioLogicMPT }
        if first == "EXPLAIN" { return .gamryDTA }
        if ScribnerParser.isZPlot(Substring(first)) { return .zPlot }
        if ScribnerParser.recognises(lines) { return .autolabZ60W }
        if let body = lines.first(where: { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            let fields = Separator.detect(body).split(body)
            if fields.count >= 3, fields.prefix(3).allSatisfy({ ParsingSupport.number($0) != nil }) { return .headerless }
            if fields.contains(where: { ["freq", "frequency", "f"].contains(CSVSpectrumParser.normalise(String($0)).0) }) { return .csv }
        }
        let ext = fileName.split(separator: ".").count > 1 ? fileName.split(separator: ".").last!.lowercased() : ""
        switch ext {
        case "mpt": return .bioLogicMPT
        case "dta": return .gamryDTA
        case "z": return .zPlot
        case "csv", "txt": return .csv
        default: return nil
        }
    }

    /// Reads every spectrum the text holds (several loops, cycles or tables: several spectra,
    /// in file order), dated as ``ReadOptions`` says.
    public static func read(_ text: String, fileName: String, options: ReadOptions = ReadOptions()) throws(SpectrumParseError) -> [Spectrum] {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw SpectrumParseError(.emptyFile, fileName: fileName)
        }
        let zone = options.timeZone
        var spectra: [Spectrum]
        switch detectFormat(fileName: fileName, text: text) {
        case .bioLogicMPT: spectra = try BioLogicMPTParser.parseAll(text, fileName: fileName, timeZone: zone)
        case .gamryDTA: spectra = try GamryDTAParser.parseAll(text, fileName: fileName, timeZone: zone, dateOrder: options.dateOrder)
        case .zPlot, .autolabZ60W: spectra = try ScribnerParser.parseAll(text, fileName: fileName, timeZone: zone, dateOrder: options.dateOrder)
        case .csv, .headerless: spectra = try CSVSpectrumParser.parseAll(text, fileName: fileName, timeZone: zone)
        case .synthetic, nil: throw SpectrumParseError(.unrecognisedFormat, fileName: fileName, line: 1)
        }
        if let m = options.modificationTime {
            for k in spectra.indices { spectra[k] = datedByModificationTime(spectra[k], m) }
        }
        return spectra
    }

    /// Decodes raw bytes (UTF-8, falling back to ISO-8859-1 / Windows-1252 as vendor software on
    /// Windows writes `°` and `²` in a legacy code page) and reads every spectrum.
    public static func read(data: Data, fileName: String, options: ReadOptions = ReadOptions()) throws(SpectrumParseError) -> [Spectrum] {
        try read(decode(data), fileName: fileName, options: options)
    }

    /// Parses text and returns its last spectrum (the newest loop of a multi-loop file).
    public static func parse(_ text: String, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        let all = try read(text, fileName: fileName, options: ReadOptions(timeZone: timeZone))
        return all[all.count - 1]
    }

    /// Decodes raw bytes and returns the last spectrum, see ``read(data:fileName:options:)``.
    public static func parse(data: Data, fileName: String, timeZone: TimeZone = .current) throws(SpectrumParseError) -> Spectrum {
        try parse(decode(data), fileName: fileName, timeZone: timeZone)
    }

    static func decode(_ data: Data) -> String {
        if let utf8 = String(data: data, encoding: .utf8) { return utf8 }
        return String(data.map { Character(Unicode.Scalar($0)) })
    }

    /// A spectrum without a time of its own, dated by the file's modification time: the file
    /// was last written when its last row was, so a sweep that began `end − start` seconds
    /// before that row is dated that much earlier.
    static func datedByModificationTime(_ s: Spectrum, _ mtime: Date) -> Spectrum {
        guard case .none(let reason) = s.timeSource else { return s }
        var out = s
        var at = mtime
        if let start = s.startOffset, let end = s.fileEndOffset, end >= start { at = mtime.addingTimeInterval(-(end - start)) }
        out.acquiredAt = at
        out.timeSource = .modificationTime(reason: reason)
        return out
    }
}
