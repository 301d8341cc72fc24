import Foundation
import PressEIS
import Synchronization

/// Renders docs/impedance.md's table of the real corpus from the analysis itself.
enum CorpusTable {
    struct Row {
        var name: String
        var spectra: [Spectrum]
        var results: [Result<Analysis, AnalysisRejection>]
    }

    /// Every file read and analysed once per test run (the corpus tests share it).
    static func rows(_ files: [String]) throws -> [Row] {
        try cache.withLock { cached in
            if let c = cached, c.map(\.name) == files { return c }
            let rows = try analyse(files)
            cached = rows
            return rows
        }
    }

    private static let cache = Mutex<[Row]?>(nil)

    private static func analyse(_ files: [String]) throws -> [Row] {
        try files.map { name in
            let spectra = try SpectrumReader.read(data: RealCorpus.data(name), fileName: name, options: RealCorpus.options)
            return Row(name: name, spectra: spectra, results: spectra.map { SpectrumAnalysis.analyse($0) })
        }
    }

    /// The circle estimate on the points the analysis fitted.
    static func reference(_ s: Spectrum, _ a: Analysis) -> NyquistArcReference.Estimate? {
        let keep = s.frequencies.indices.filter { a.fittedRange.contains(s.frequencies[$0]) }
        let sub = Spectrum(frequencies: keep.map { s.frequencies[$0] }, real: keep.map { s.real[$0] }, imaginary: keep.map { s.imaginary[$0] })
        return NyquistArcReference.estimate(sub, lowFrequencyCrossing: a.kind == .blockingElectrode)
    }

    /// "Of the 16 files, 9 are accepted whole …" as the note in docs/impedance.md says it.
    static func acceptanceSentence(_ files: [String]) throws -> String {
        let rows = try rows(files)
        let whole = rows.filter { r in r.results.allSatisfy { if case .success = $0 { true } else { false } } }.count
        let spectra = rows.map(\.results.count).reduce(0, +)
        let accepted = rows.map { $0.results.filter { if case .success = $0 { true } else { false } }.count }.reduce(0, +)
        return "Of the \(rows.count) files, \(whole) are accepted whole; of the \(spectra) spectra they hold, \(accepted) are accepted."
    }

    static func render(_ files: [String]) throws -> String {
        var out = "| file | read as | spectra | dated by | outcome | R_b (Ω) | R_int (Ω) | fit residual | Lin-KK max / RMS / 7-point (%) | circle: R_b / R_int (Ω) |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|\n"
        for r in try rows(files) {
            let accepted = zip(r.spectra, r.results).compactMap { s, res -> (Spectrum, Analysis)? in
                if case .success(let a) = res { return (s, a) } else { return nil }
            }
            let first = r.spectra[0]
            let reader = first.source.readerName + (first.notes.contains { $0.hasPrefix("polar") } ? " (polar)" : "")
                + (first.notes.contains { $0.hasPrefix("drift-corrected") } ? " (drift-corrected columns)" : "")
            let dated: String
            switch first.timeSource {
            case .file: dated = r.spectra.count > 1 ? "header + each loop's `time/s`" : "header"
            case .modificationTime(let why): dated = "modification time (\(why.replacingOccurrences(of: "|", with: "/")))"
            case .none(let why): dated = "none (\(why))"
            }
            // The check the analysis makes first, for every spectrum whatever came after it.
            let kks = r.spectra.compactMap { KramersKronigCheck.runTrimmed($0) }
            let kkText: String = {
                guard !kks.isEmpty else { return "–" }
                var t = range(kks.map { 100 * $0.maxResidual }, "%.2g") + " / " + range(kks.map { 100 * $0.rmsResidual }, "%.2g")
                    + " / " + range(kks.map { 100 * $0.systematicResidual }, "%.2g")
                let trimmed = kks.filter { $0.trimmedHighFrequency + $0.trimmedLowFrequency > 0 }
                if let k = trimmed.first {
                    t += r.spectra.count == 1 ? "; \(k.trimmedHighFrequency) HF, \(k.trimmedLowFrequency) LF points trimmed"
                                              : "; trimmed in \(trimmed.count) of \(kks.count)"
                }
                return t
            }()
            let rb = accepted.isEmpty ? "–" : range(accepted.map { $0.1.bulkResistance }, "%.4g") + " ± " + range(accepted.map { $0.1.bulkResistanceError }, "%.2g")
            let ri: String = {
                guard !accepted.isEmpty else { return "–" }
                let values = accepted.compactMap { $0.1.interfacialResistance }
                guard values.count == accepted.count else { return "not defined (blocking electrodes)" }
                return range(values, "%.4g") + " ± " + range(accepted.compactMap { $0.1.interfacialResistanceError }, "%.2g")
                    + (accepted.contains { $0.1.warburgSigma != nil } ? " (+ Warburg)" : "")
            }()
            let circle: String = {
                let refs = accepted.compactMap { reference($0.0, $0.1) }
                guard !refs.isEmpty else { return "–" }
                return range(refs.map(\.bulk), "%.4g") + " / " + (refs.allSatisfy { $0.interfacial.isNaN } ? "–" : range(refs.map(\.interfacial), "%.4g"))
            }()
            let fitResidual = accepted.isEmpty ? "–" : range(accepted.map { 100 * $0.1.fitResidual }, "%.2g") + " %"
            out += "| \(r.name) | \(reader) | \(r.spectra.count) | \(dated) | \(outcome(r)) | \(rb) | \(ri) | \(fitResidual) | \(kkText) | \(circle) |\n"
        }
        return out
    }

    /// "accepted", "4 accepted", "accepted as blocking electrodes", or the rejections grouped by
    /// reason with the range of the number behind them.
    static func outcome(_ r: Row) -> String {
        var groups: [(key: String, count: Int, values: [Double], unit: String)] = []
        func add(_ key: String, _ v: Double? = nil, _ unit: String = "") {
            if let i = groups.firstIndex(where: { $0.key == key }) {
                groups[i].count += 1
                if let v { groups[i].values.append(v) }
            } else {
                groups.append((key, 1, v.map { [$0] } ?? [], unit))
            }
        }
        for res in r.results {
            switch res {
            case .success(let a): add(a.kind == .blockingElectrode ? "accepted as blocking electrodes" : "accepted")
            case .failure(.kramersKronigFailed(let kk)):
                add(kk.failureReasons.contains { $0.contains("over the arc itself") } ? "rejected: Lin-KK inconsistent over the arc itself" : "rejected: Lin-KK inconsistent")
            case .failure(.arcOutsideWindow(let f, _, _)): add("rejected: arc apex too close to the sweep's end, at", f, "Hz")
            case .failure(.circuitDoesNotFit(let res, _, _)): add("rejected: the one-arc circuit does not fit, residual", 100 * res, "%")
            case .failure(let other): add("rejected: \(other)")
            }
        }
        let acceptedLoops = zip(r.spectra, r.results).compactMap { s, res -> Int? in if case .success = res { return s.sweep } else { return nil } }
        return groups.map { g in
            var n = r.results.count > 1 ? "\(g.count) " : ""
            if g.key.hasPrefix("accepted"), g.count < r.results.count, acceptedLoops.count <= 5 {
                n += "(loop \(acceptedLoops.map(String.init).joined(separator: ", "))) "
            }
            return n + g.key + (g.values.isEmpty ? "" : " " + range(g.values, "%.2g") + " " + g.unit)
        }.joined(separator: "; ")
    }

    /// "12.1" or "11.9–12.1".
    static func range(_ v: [Double], _ format: String) -> String {
        let lo = String(format: format, v.min()!), hi = String(format: format, v.max()!)
        return lo == hi ? lo : lo + "–" + hi
    }
}
