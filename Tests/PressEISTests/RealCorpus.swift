import Foundation
import Testing
import PressEIS

/// The real instrument files in `../shared/data/eis-real/` beside the repository (read in
/// place, never copied into the project): where they are, whether they are all there and
/// unchanged (their `SHA256SUMS`).
///
/// Outside CI a checkout without them skips the corpus tests, saying why; in CI (`CI=true`)
/// the tests run and fail. `PRESSD_EIS_CORPUS` names another directory with the same files.
enum RealCorpus {
    /// The repository's root, from this file's path (Tests/PressEISTests/RealCorpus.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The corpus directory: `PRESSD_EIS_CORPUS`, else `../shared/data/eis-real` beside the repository.
    static let directory: URL = {
        if let d = ProcessInfo.processInfo.environment["PRESSD_EIS_CORPUS"], !d.isEmpty { return URL(fileURLWithPath: d) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data/eis-real").standardizedFileURL
    }()

    static var inCI: Bool { ["true", "1", "yes"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") }

    /// The files `SHA256SUMS` lists, in its order.
    static var listed: [String] {
        guard let sums = try? String(contentsOf: directory.appendingPathComponent("SHA256SUMS"), encoding: .utf8) else { return [] }
        return sums.split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) }
    }

    /// Listed files that are not there.
    static var missing: [String] { listed.filter { !FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) } }

    /// Whether the corpus is there at all (its SHA256SUMS).
    static var present: Bool { !listed.isEmpty }

    /// Run the corpus tests: the corpus is there, or this is CI (where its absence must fail).
    static var shouldRun: Bool { present || inCI }

    /// Why the corpus tests are skipped, for the test's name.
    static let skipReason: Comment = "the real-instrument corpus (../shared/data/eis-real/SHA256SUMS beside the repository, or PRESSD_EIS_CORPUS) is not in this checkout; in CI this fails"

    /// The files to test: the listed ones that are there. Records an issue (a failure) for a
    /// missing corpus (in CI: the tests run only there or where it is), for a corpus with none
    /// of its files, and for a changed file anywhere. A listed file that is absent is reported
    /// and left out, in CI too: the corpus as delivered to this workplace lacks two of the 16
    /// files its SHA256SUMS lists (`impedance.py__exampleData.csv`,
    /// `hybrid-drt__Sample2_PEIS_AtRest.csv`); a complete copy is named by PRESSD_EIS_CORPUS.
    static func files() -> [String] {
        guard present else {
            Issue.record("the real-instrument corpus is missing: no \(directory.path)/SHA256SUMS (CI=\(inCI))")
            return []
        }
        let absent = missing
        if !absent.isEmpty {
            let message = "corpus incomplete: \(absent.joined(separator: ", ")) listed in \(directory.path)/SHA256SUMS but not there"
            print("RealCorpus: \(message) — left out (set PRESSD_EIS_CORPUS to a complete copy)")
        }
        let present = listed.filter { !absent.contains($0) }
        if present.isEmpty { Issue.record("the real-instrument corpus at \(directory.path) has none of the files its SHA256SUMS lists") }
        // Byte-exact as published: sha256sum -c on the files that are there.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sha256sum", "--quiet", "-c", "--ignore-missing", "SHA256SUMS"]
        p.currentDirectoryURL = directory
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        do {
            try p.run()
            p.waitUntilExit()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if p.terminationStatus != 0 { Issue.record("corpus files differ from SHA256SUMS: \(text)") }
        } catch {
            Issue.record("cannot run sha256sum: \(error)")
        }
        return present
    }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(name)) }

    /// Dates in the corpus are read in UTC (the files give none), and files without a date are
    /// dated by a fixed stand-in for their modification time, so that the table does not depend
    /// on when the files were copied.
    static let options = ReadOptions(timeZone: TimeZone(identifier: "UTC")!, modificationTime: Date(timeIntervalSince1970: 1_700_000_000))
}
