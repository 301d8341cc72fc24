import Foundation
import Testing
import PressLog

/// Runs `pressctl ARGS` with `cwd` as its working directory.
private func pressctl(_ args: [String], cwd: String) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binDir + "/pressctl")
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Issue 23: three generated files (`pressure-comparison.json/.md/.svg`) were committed at
/// the repository root: `compare --json` wrote them into the working directory.
@Suite("pressctl compare: files only where asked")
struct CompareOutputTests {
    @Test("compare --json prints the comparison and writes no file; with --output it writes STEM.md, .json, .svg too")
    func jsonWritesNoFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-cmp-\(UUID().uuidString.prefix(6))").path
        let state = dir + "/state", work = dir + "/work"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try RunLog(path: state + "/runlog.sqlite")
        let t0 = Date().timeIntervalSince1970 - 600
        let samples = (0..<300).flatMap { k in ["A", "B"].map { ch in
            LogSample(time: t0 + Double(k), channel: ch, mode: "regulating", setpoint: 5, pressure: 5.01, pressureMin: 5, pressureMax: 5.02,
                      pressureMean: 5.01, force: 501, output: 1000, temperature: 25, current: 1, resistance: 40, count: 100)
        } }
        _ = try log.append(samples: samples, events: [])

        let r = try pressctl(["compare", state + ":A", state + ":B", "--since", "1h", "--json"], cwd: work)
        #expect(r.status == 0, "\(r.stderr)")
        let sources = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]).flatMap { ($0["ok"] as? [String: Any])?["sources"] as? [[String: Any]] }
        #expect(sources?.map { $0["channel"] as? String } == ["A", "B"], "\(r.stdout)")
        let written = try FileManager.default.contentsOfDirectory(atPath: work)
        #expect(written.isEmpty, "files written: \(written)")

        let w = try pressctl(["compare", state + ":A", state + ":B", "--since", "1h", "--json", "--output", "cells"], cwd: work)
        #expect(w.status == 0, "\(w.stderr)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: work)) == ["cells.md", "cells.json", "cells.svg"])
    }
}
