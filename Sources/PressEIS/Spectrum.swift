import Foundation

/// The reader a ``Spectrum`` was read with (chosen by the file's content, see ``SpectrumReader``).
public enum SpectrumFormat: String, Sendable, Equatable, CaseIterable {
    /// BioLogic EC-Lab ASCII export (`.mpt`, or any name), v10 and v11 headers.
    case bioLogicMPT
    /// Gamry Framework `EXPLAIN` data file (`.DTA`).
    case gamryDTA
    /// Delimited text with a header row naming the columns.
    case csv
    /// Delimited numbers without a header: frequency, Z′, Z″ (DRTtools, impedance.py, spreadsheets).
    case headerless
    /// Scribner ZView "Z60W Data File" text, as Metrohm Autolab (NOVA) exports it for ZView.
    case autolabZ60W
    /// Scribner ZPlot/ZView `.z` file (`ZPLOT2 ASCII`).
    case zPlot
    /// Built in code (synthesised or converted), not read from a file.
    case synthetic

    /// The reader's name as events and messages give it.
    public var readerName: String {
        switch self {
        case .bioLogicMPT: return "EC-Lab ASCII"
        case .gamryDTA: return "Gamry DTA"
        case .csv: return "CSV with header"
        case .headerless: return "headerless numeric columns"
        case .autolabZ60W: return "Autolab/ZView Z60W text"
        case .zPlot: return "ZPlot .z"
        case .synthetic: return "synthetic"
        }
    }
}

/// How to read a date whose day and month could be either way round (`4/5/2024`), for
/// software that writes dates in the PC's locale (Gamry, ZPlot). EC-Lab always writes
/// month first and is not affected.
public enum DateOrder: String, Sendable, Equatable, CaseIterable {
    /// `M/D/Y` (US locale).
    case monthFirst = "month_first"
    /// `D.M.Y`, `D/M/Y` (most other locales).
    case dayFirst = "day_first"
}

/// Where a spectrum's ``Spectrum/acquiredAt`` came from.
public enum AcquisitionTimeSource: Sendable, Equatable {
    /// The file's own date and time (plus the sweep's offset from the file's start).
    case file
    /// The file's modification time, because the file has no usable date: the reason.
    /// With several sweeps, each is dated back from it by its offset to the file's last row.
    case modificationTime(reason: String)
    /// No time at all (no usable date and no modification time was given).
    case none(reason: String)
}

/// One impedance spectrum: frequencies with the complex impedance measured at each.
///
/// Sign convention: ``imaginary`` is the imaginary part of Z itself, so a capacitive
/// (Nyquist-arc) response has **negative** values. Parsers convert vendor conventions
/// such as BioLogic's `-Im(Z)` into this convention.
public struct Spectrum: Sendable, Equatable {
    /// Frequencies in Hz, in the order they appear in the file (usually descending).
    public let frequencies: [Double]
    /// Real part Z′ in Ω, one per frequency.
    public let real: [Double]
    /// Imaginary part Z″ in Ω, one per frequency (negative for capacitive behaviour).
    public let imaginary: [Double]
    /// Acquisition time of the spectrum (its first point), see ``timeSource``.
    public var acquiredAt: Date?
    /// The format the spectrum was read from.
    public let source: SpectrumFormat
    /// The file name the spectrum was read from, if any (used in messages only).
    public let fileName: String?
    /// Where ``acquiredAt`` came from.
    public var timeSource: AcquisitionTimeSource
    /// 1-based number of this sweep (loop, cycle) in its file when the file holds several; nil for a file of one.
    public var sweep: Int?
    /// Seconds from the file's time origin to this sweep's first point (EC-Lab `time/s`, a CSV's `time/s`), if known.
    public var startOffset: Double?
    /// Seconds from the file's time origin to the file's last row (any sweep, DC rows too), if known.
    public var fileEndOffset: Double?
    /// 1-based line of the sweep's first data row.
    public var firstLine: Int?
    /// What the reader did that a reader of the event should know (polar columns converted, a Z″
    /// sign chosen, a sweep cut short, a date read one way round …), each a short phrase.
    public var notes: [String]

    /// Creates a spectrum. The three arrays must have equal length (checked with a precondition).
    public init(frequencies: [Double], real: [Double], imaginary: [Double],
                acquiredAt: Date? = nil, source: SpectrumFormat = .synthetic, fileName: String? = nil,
                timeSource: AcquisitionTimeSource? = nil, sweep: Int? = nil, startOffset: Double? = nil,
                fileEndOffset: Double? = nil, firstLine: Int? = nil, notes: [String] = []) {
        precondition(frequencies.count == real.count && real.count == imaginary.count,
                     "Spectrum arrays must have equal length")
        self.frequencies = frequencies
        self.real = real
        self.imaginary = imaginary
        self.acquiredAt = acquiredAt
        self.source = source
        self.fileName = fileName
        self.timeSource = timeSource ?? (acquiredAt != nil ? .file : .none(reason: "no acquisition time"))
        self.sweep = sweep
        self.startOffset = startOffset
        self.fileEndOffset = fileEndOffset
        self.firstLine = firstLine
        self.notes = notes
    }

    /// The same spectrum with other points (the metadata kept).
    public func withPoints(frequencies: [Double], real: [Double], imaginary: [Double]) -> Spectrum {
        Spectrum(frequencies: frequencies, real: real, imaginary: imaginary, acquiredAt: acquiredAt, source: source,
                 fileName: fileName, timeSource: timeSource, sweep: sweep, startOffset: startOffset,
                 fileEndOffset: fileEndOffset, firstLine: firstLine, notes: notes)
    }

    /// Number of frequency points.
    public var count: Int { frequencies.count }

    /// Modulus |Z| in Ω at point `i`.
    public func modulus(at i: Int) -> Double { (real[i] * real[i] + imaginary[i] * imaginary[i]).squareRoot() }

    /// Returns a copy with the points ordered by descending frequency (the usual sweep order).
    public func sortedByDescendingFrequency() -> Spectrum {
        let order = frequencies.indices.sorted { frequencies[$0] > frequencies[$1] }
        return withPoints(frequencies: order.map { frequencies[$0] }, real: order.map { real[$0] },
                          imaginary: order.map { imaginary[$0] })
    }
}

/// A parse failure, naming the problem and where it happened.
///
/// `line` is 1-based; `column` is the column's header name (or 1-based field number
/// when the column has no name).
public struct SpectrumParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Equatable, Sendable {
        /// The file has no content.
        case emptyFile
        /// The content matches none of the supported formats.
        case unrecognisedFormat
        /// A required header line is missing or malformed; the associated text says which.
        case malformedHeader(String)
        /// A required column (frequency, Z′ or Z″) was not found; the associated text names it.
        case missingColumn(String)
        /// A field could not be read as a number; the associated value is the offending text.
        case invalidNumber(String)
        /// A data row has fewer fields than the column header requires.
        case missingField(expected: Int, found: Int)
        /// A date/time field could not be parsed; the associated value is the offending text.
        case invalidDate(String)
        /// A frequency is negative or a value is not finite.
        case invalidValue(String)
        /// The file holds no usable (non-zero-frequency) data rows.
        case noData
    }

    /// The problem.
    public let kind: Kind
    /// File name as given to the parser.
    public let fileName: String
    /// 1-based line number, if the problem is tied to a line.
    public let line: Int?
    /// Column name (or 1-based field number), if the problem is tied to a column.
    public let column: String?

    /// Creates an error value.
    public init(_ kind: Kind, fileName: String, line: Int? = nil, column: String? = nil) {
        self.kind = kind
        self.fileName = fileName
        self.line = line
        self.column = column
    }

    /// Human-readable message of the form `file.mpt:57: column 'Re(Z)/Ohm': invalid number 'abc'`.
    public var description: String { message(quotingContent: true) }

    /// The same message without any text taken from the file's content (the offending field
    /// is described, not quoted; column names are the reader's own): for events that others
    /// may read about a file they should not see, e.g. `file.mpt:57: column 'Re(Z)/Ohm': not a number`.
    public var descriptionWithoutContent: String { message(quotingContent: false) }

    private func message(quotingContent quote: Bool) -> String {
        var s = fileName
        if let line { s += ":\(line)" }
        s += ": "
        if let column, quote || SpectrumParseError.knownColumnNames.contains(column) { s += "column '\(column)': " }
        switch kind {
        case .emptyFile: s += "file is empty"
        case .unrecognisedFormat: s += "not a recognised impedance file (expected EC-Lab ASCII, Gamry DTA, ZPlot .z, Autolab/ZView text, CSV with a header naming frequency and Z′/Z″ or |Z|/phase columns, or three numeric columns f, Z′, Z″)"
        case .malformedHeader(let what): s += "malformed header: \(what)"   // the readers' own words, never the file's text
        case .missingColumn(let what): s += "missing column: \(what)"
        case .invalidNumber(let text): s += quote ? "invalid number '\(text)'" : "not a number (\(text.count) characters)"
        case .missingField(let expected, let found): s += "row has \(found) fields, expected at least \(expected)"
        case .invalidDate(let text): s += quote ? "invalid date/time '\(text)'" : "not a date/time"
        case .invalidValue(let what): s += "invalid value: \(what)"
        case .noData: s += "no data rows with non-zero frequency"
        }
        return s
    }

    /// Column names the readers look for; only these are repeated in content-free messages.
    static let knownColumnNames: Set<String> = [
        "freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "Im(Z)/Ohm", "|Z|/Ohm", "Phase(Z)/deg", "time/s", "cycle number",
        "Freq", "Zreal", "Zimag", "ZrealDrCor", "ZimagDrCor", "Time", "DATE", "TIME",
        "frequency", "Z′", "Z″", "|Z|", "phase", "loop", "time",
    ]
}
