import Foundation

/// The file format a ``Spectrum`` was read from.
public enum SpectrumFormat: String, Sendable, Equatable, CaseIterable {
    /// BioLogic EC-Lab ASCII export (`.mpt`).
    case bioLogicMPT
    /// Gamry Framework `EXPLAIN` data file (`.DTA`).
    case gamryDTA
    /// Plain comma- or semicolon-separated values with a header row.
    case csv
    /// Built in code (synthesised or converted), not read from a file.
    case synthetic
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
    /// Acquisition time of the spectrum as recorded in the file itself, if the file carries one.
    public let acquiredAt: Date?
    /// The format the spectrum was read from.
    public let source: SpectrumFormat
    /// The file name the spectrum was read from, if any (used in messages only).
    public let fileName: String?

    /// Creates a spectrum. The three arrays must have equal length (checked with a precondition).
    public init(frequencies: [Double], real: [Double], imaginary: [Double],
                acquiredAt: Date? = nil, source: SpectrumFormat = .synthetic, fileName: String? = nil) {
        precondition(frequencies.count == real.count && real.count == imaginary.count,
                     "Spectrum arrays must have equal length")
        self.frequencies = frequencies
        self.real = real
        self.imaginary = imaginary
        self.acquiredAt = acquiredAt
        self.source = source
        self.fileName = fileName
    }

    /// Number of frequency points.
    public var count: Int { frequencies.count }

    /// Modulus |Z| in Ω at point `i`.
    public func modulus(at i: Int) -> Double { (real[i] * real[i] + imaginary[i] * imaginary[i]).squareRoot() }

    /// Returns a copy with the points ordered by descending frequency (the usual sweep order).
    public func sortedByDescendingFrequency() -> Spectrum {
        let order = frequencies.indices.sorted { frequencies[$0] > frequencies[$1] }
        return Spectrum(frequencies: order.map { frequencies[$0] }, real: order.map { real[$0] },
                        imaginary: order.map { imaginary[$0] }, acquiredAt: acquiredAt,
                        source: source, fileName: fileName)
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
    public var description: String {
        var s = fileName
        if let line { s += ":\(line)" }
        s += ": "
        if let column { s += "column '\(column)': " }
        switch kind {
        case .emptyFile: s += "file is empty"
        case .unrecognisedFormat: s += "not a recognised impedance file (expected EC-Lab .mpt, Gamry .DTA or CSV)"
        case .malformedHeader(let what): s += "malformed header: \(what)"
        case .missingColumn(let what): s += "missing column: \(what)"
        case .invalidNumber(let text): s += "invalid number '\(text)'"
        case .missingField(let expected, let found): s += "row has \(found) fields, expected at least \(expected)"
        case .invalidDate(let text): s += "invalid date/time '\(text)'"
        case .invalidValue(let what): s += "invalid value: \(what)"
        case .noData: s += "no data rows with non-zero frequency"
        }
        return s
    }
}
