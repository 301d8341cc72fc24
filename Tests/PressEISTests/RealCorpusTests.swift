import Foundation
import Testing
import PressEIS

/// The real instrument files (`../shared/data/eis-real/`, see SOURCES.md there): every file is
/// read whatever its layout, every spectrum it holds is judged on its physics, the outcome is
/// the one docs/impedance.md lists, and what is accepted agrees with an independent estimate.
@Suite("Real analysers' files", .enabled(if: RealCorpus.shouldRun, RealCorpus.skipReason))
struct RealCorpusTests {
    /// None is refused for its layout, date or columns (the reader's error would say which).
    @Test("every file is read: headerless, Autolab, ZPlot, polar, EC-Lab v11, Gamry locale and placeholder dates")
    func everyFileIsRead() throws {
        let files = RealCorpus.files()
        for name in files {
            let data = try RealCorpus.data(name)
            do throws(SpectrumParseError) {
                let s = try SpectrumReader.parse(data: data, fileName: name, timeZone: TimeZone(identifier: "UTC")!)
                #expect(s.count >= 10, "\(name): \(s.count) points")
            } catch {
                Issue.record("\(name) refused: \(error)")
            }
        }
    }

    /// The clean single-arc spectra of the issue: a Gamry 550 °C cell, a Gamry galvanostatic mΩ
    /// cell with inductive high frequencies, the four loops of an SP-300 PEIS.
    @Test("the clean single-arc spectra are accepted, every loop of a multi-loop file")
    func cleanSpectraAccepted() throws {
        guard !RealCorpus.files().isEmpty else { return }
        for name in ["bayes-drt__550C.0.5V.DTA", "hybrid-drt__EISGALV_EISTest3.DTA"] where !RealCorpus.missing.contains(name) {
            let s = try SpectrumReader.parse(data: RealCorpus.data(name), fileName: name, timeZone: TimeZone(identifier: "UTC")!)
            if case .failure(let why) = SpectrumAnalysis.analyse(s) { Issue.record("\(name): \(why)") }
        }
        let text = String(decoding: try RealCorpus.data("yadg__peis.issue_149.mpt"), as: UTF8.self)
        let loops = try BioLogicMPTParser.parseAll(text, fileName: "yadg__peis.issue_149.mpt")
        #expect(loops.count == 4)
        for (k, s) in loops.enumerated() {
            if case .failure(let why) = SpectrumAnalysis.analyse(s) { Issue.record("loop \(k + 1): \(why)") }
        }
    }

    /// An Li6PS5Cl pellet between ion-blocking steel at −25 °C: the bulk arc peaks at 1.4 MHz and
    /// meets the blocking spike near 1.44–1.46 kΩ (SOURCES.md's landmarks: R_bulk(+gb) ≈ 1.4–1.5 kΩ).
    @Test("a blocking-electrode spectrum gives R_b with its uncertainty and no R_int")
    func blockingElectrode() throws {
        let name = "hybrid-drt__PEIS_LPSCl_IonBlocking_-25C.txt"
        guard !RealCorpus.files().isEmpty, !RealCorpus.missing.contains(name) else { return }
        let s = try SpectrumReader.parse(data: RealCorpus.data(name), fileName: name, timeZone: TimeZone(identifier: "UTC")!)
        let a = try SpectrumAnalysis.analyse(s).get()
        #expect(a.bulkResistance > 1400 && a.bulkResistance < 1550, "R_b \(a.bulkResistance) Ω")
        #expect(a.bulkResistanceError > 0 && a.bulkResistanceError < 0.02 * a.bulkResistance)
        #expect(a.kind == .blockingElectrode && a.interfacialResistance == nil)
        let c = try #require(a.blocking?.arcCapacitance)
        #expect(c > 1e-12 && c < 1e-9, "the arc's capacitance \(c) F is a pellet's geometric capacitance")
    }

    /// The shorted Zn cell (yadg issue 225): its arc is not Kramers–Kronig consistent, so it is
    /// rejected rather than trimmed.
    @Test("the shorted cell is rejected as inconsistent over its arc")
    func shortedCellRejected() throws {
        let name = "yadg__peis.issue_225.no_ece.mpt"
        guard !RealCorpus.files().isEmpty, !RealCorpus.missing.contains(name) else { return }
        let s = try SpectrumReader.read(data: RealCorpus.data(name), fileName: name, options: RealCorpus.options)
        guard case .failure(.kramersKronigFailed(let kk)) = SpectrumAnalysis.analyse(s[0]) else {
            Issue.record("\(name) must fail Lin-KK over its arc"); return
        }
        #expect(kk.failureReasons.contains { $0.contains("over the arc itself") }, "\(kk.failureReasons)")
    }

    /// A long GEIS run with DC rows: 61 spectra, each dated by its own start, in order.
    @Test("yadg__geis.mpt holds 61 spectra with increasing acquisition times, its DC rows skipped")
    func sixtyOneLoops() throws {
        let name = "yadg__geis.mpt"
        guard !RealCorpus.files().isEmpty, !RealCorpus.missing.contains(name) else { return }
        let all = try SpectrumReader.read(data: RealCorpus.data(name), fileName: name, options: RealCorpus.options)
        #expect(all.count == 61)
        // SOURCES.md: 2499 impedance rows (60 loops of 41 points and one of 39) and 29 DC rows, not read as points.
        #expect(all.map(\.count).reduce(0, +) == 2499 && all.allSatisfy { !$0.frequencies.contains(0) })
        let times = all.compactMap(\.acquiredAt)
        #expect(times.count == 61 && zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
        // 03/03/2021 20:40:41 (month first, read in UTC here) + time/s of loop 1's first impedance row (45354.45 s).
        #expect(abs(times[0].timeIntervalSince1970 - (1_614_804_041 + 45_354.454_501_162_40)) < 0.001, "\(times[0])")
    }

    /// Every accepted fit against an algebraic circle through the same points (NyquistArcReference,
    /// which shares no code with the fitter). The bounds are the agreement documented in
    /// docs/impedance.md: a circle cannot tell a Warburg tail from the arc's end, so R_int is
    /// compared loosely when the fit kept a Warburg.
    @Test("accepted fits agree with the independent Nyquist-circle estimate")
    func fitsAgreeWithReference() throws {
        var agreement: [String: [Double]] = [:]
        defer {
            print("circle agreement, |fit − circle| / circle in %: " + agreement.keys.sorted().map { k in
                String(format: "%@ %.2g–%.2g", k, agreement[k]!.min()! * 100, agreement[k]!.max()! * 100)
            }.joined(separator: "; "))
        }
        for row in try CorpusTable.rows(RealCorpus.files()) {
            let name = row.name
            for (s, result) in zip(row.spectra, row.results) {
                guard case .success(let a) = result else { continue }
                let r = try #require(CorpusTable.reference(s, a), "\(name): no circle through the arc")
                let label = "\(name) loop \(s.sweep ?? 1)"
                let dRb = abs(a.bulkResistance - r.bulk) / r.bulk
                let kind = a.kind == .blockingElectrode ? "blocking" : a.warburgSigma != nil ? "Warburg" : "arc"
                agreement["\(kind) R_b", default: []].append(dRb)
                if let ri = a.interfacialResistance { agreement["\(kind) R_int", default: []].append(abs(ri - r.interfacial) / r.interfacial) }
                switch (a.kind, a.warburgSigma != nil) {
                case (.blockingElectrode, _):
                    #expect(dRb < 0.04, "\(label): R_b \(a.bulkResistance) vs circle \(r.bulk)")
                case (.interfacialArc, false):
                    #expect(dRb < 0.05, "\(label): R_b \(a.bulkResistance) vs circle \(r.bulk)")
                    #expect(abs(a.interfacialResistance! - r.interfacial) / r.interfacial < 0.06, "\(label): R_int \(a.interfacialResistance!) vs circle \(r.interfacial)")
                case (.interfacialArc, true):
                    #expect(dRb < 0.08, "\(label): R_b \(a.bulkResistance) vs circle \(r.bulk)")
                    #expect(abs(a.interfacialResistance! - r.interfacial) / r.interfacial < 0.25, "\(label): R_int \(a.interfacialResistance!) vs circle \(r.interfacial)")
                }
            }
        }
    }

    /// docs/impedance.md's corpus table is this test's output: rendered from the analysis of every
    /// file and compared with the block between its markers.
    @Test("docs/impedance.md's corpus table is what the analysis gives, file by file")
    func docsTableReproduced() throws {
        let files = RealCorpus.files()
        guard !files.isEmpty else { return }
        let rendered = try CorpusTable.render(files)
        let doc = try String(contentsOf: RealCorpus.repositoryRoot.appendingPathComponent("docs/impedance.md"), encoding: .utf8)
        let begin = "<!-- corpus-table: generated by RealCorpusTests -->\n", end = "<!-- /corpus-table -->"
        guard let a = doc.range(of: begin), let b = doc.range(of: end, range: a.upperBound..<doc.endIndex) else {
            Issue.record("docs/impedance.md has no corpus-table markers; the table is:\n\(rendered)"); return
        }
        let documented = String(doc[a.upperBound..<b.lowerBound])
        guard RealCorpus.missing.isEmpty else {
            // A partial corpus: every file that is there has exactly its documented row.
            let rows = Set(documented.split(separator: "\n").map(String.init))
            for line in rendered.split(separator: "\n").map(String.init) {
                #expect(rows.contains(line), "docs/impedance.md's corpus table has no row\n\(line)")
            }
            print("RealCorpus: docs table checked for the \(files.count) files present; \(RealCorpus.missing.count) rows unchecked")
            return
        }
        #expect(documented == rendered, "docs/impedance.md's corpus table differs from the analysis; it is now:\n\(rendered)")
        // And the count the note gives.
        let sentence = try CorpusTable.acceptanceSentence(files)
        #expect(doc.contains(sentence), "docs/impedance.md should say: \(sentence)")
    }
}
