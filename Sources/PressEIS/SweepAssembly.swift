import Foundation

/// One impedance row as a reader found it, before the rows are grouped into sweeps.
struct RawPoint {
    /// 1-based line in the file.
    var line: Int
    var frequency: Double
    var real: Double
    var imaginary: Double
    /// Seconds from the file's time origin (EC-Lab `time/s`), if the file has them.
    var time: Double?
    /// The file's own sweep number for this row (`cycle number`, `loop_index`, a Loop block), if any.
    var sweepKey: Double?
}

/// Groups a file's rows into sweeps and dates each one. Internal.
///
/// * Rows with frequency 0 (DC segments between EIS loops) are not impedance points: they
///   are skipped, but their times still count for the file's last row.
/// * A sweep ends where the file's own sweep number changes; without one, where the
///   frequency returns to the sweep's first frequency (±5 %) after the sweep has moved at
///   least half a decade away from it, or jumps back more than two decades against the
///   sweep's direction (a second sweep written right after the first).
/// * Each sweep is dated by the file's start plus the time of its first row.
struct SweepAssembly {
    var fileName: String
    var source: SpectrumFormat
    /// The file's start (its header date and time), nil when it has none.
    var start: Date?
    /// Why the file has no usable start, when it has none.
    var startIssue: String?
    /// Notes that apply to every sweep of the file.
    var notes: [String] = []

    /// Builds the spectra. `dcTimes` are the times of rows skipped as DC rows (they extend the file's end).
    func spectra(_ rows: [RawPoint], dcTimes: [Double] = []) -> [Spectrum] {
        let groups = split(rows)
        let end = (rows.compactMap(\.time) + dcTimes).max()
        let many = groups.count > 1
        return groups.enumerated().map { k, g in
            let offset = g.first?.time
            var acquired = start
            if let s = start, let t = offset, t >= 0 { acquired = s.addingTimeInterval(t) }
            let source: AcquisitionTimeSource = acquired != nil ? .file : .none(reason: startIssue ?? "the file carries no date")
            return Spectrum(frequencies: g.map(\.frequency), real: g.map(\.real), imaginary: g.map(\.imaginary),
                            acquiredAt: acquired, source: self.source, fileName: fileName, timeSource: source,
                            sweep: many ? k + 1 : nil, startOffset: offset, fileEndOffset: end, firstLine: g.first?.line, notes: notes)
        }
    }

    private func split(_ rows: [RawPoint]) -> [[RawPoint]] {
        var groups: [[RawPoint]] = []
        var current: [RawPoint] = []
        let keyed = rows.contains { $0.sweepKey != nil } && Set(rows.compactMap(\.sweepKey)).count > 1
        for r in rows {
            if let prev = current.last, startsNewSweep(r, after: prev, in: current, keyed: keyed) {
                groups.append(current)
                current = []
            }
            current.append(r)
        }
        if !current.isEmpty { groups.append(current) }
        return groups
    }

    private func startsNewSweep(_ r: RawPoint, after prev: RawPoint, in current: [RawPoint], keyed: Bool) -> Bool {
        if keyed { return r.sweepKey != prev.sweepKey }
        guard let first = current.first, current.count >= 3 else { return false }
        let moved = current.map { abs(log10($0.frequency / first.frequency)) }.max() ?? 0
        if moved >= 0.5, abs(log10(r.frequency / first.frequency)) < log10(1.05) { return true }
        let descending = current[current.count - 1].frequency < first.frequency
        let jump = log10(r.frequency / prev.frequency)
        return descending ? jump > 2 : jump < -2
    }
}
