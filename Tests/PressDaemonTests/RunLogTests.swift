import Foundation
import Testing
import PressCore
@testable import PressLog

@Suite("Run log (SQLite, WAL)")
struct RunLogTests {
    func tempLog() throws -> (RunLog, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-log-\(UUID().uuidString.prefix(8))").path
        return (try RunLog(path: dir + "/runlog.sqlite"), dir)
    }

    func sample(_ t: Double, _ ch: String = "A") -> LogSample {
        LogSample(time: t, channel: ch, mode: "regulating", setpoint: 5, pressure: 5.01, pressureMin: 4.9, pressureMax: 5.1,
                  pressureMean: 5.0, force: 501, output: 3000, temperature: 25, current: 1, resistance: 20, count: 100)
    }

    @Test("samples and events round-trip; queries are by time window and channel")
    func roundTrip() throws {
        let (log, dir) = try tempLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try log.append(samples: (0..<10).map { sample(1000 + Double($0)) } + [sample(1000, "B")],
                       events: [RunLogEvent(time: 1003, channel: "A", kind: "setpoint", detail: "5 MPa", uid: 1000, pid: 42)])
        #expect(try log.samples(since: 1002, until: 1005, channel: "A").map(\.time) == [1002, 1003, 1004])
        #expect(try log.samples(since: 0, until: 2000).count == 11)
        let e = try log.events(since: 0, until: 2000)
        #expect(e.first?.uid == 1000 && e.first?.pid == 42)
        #expect(try log.integrityCheck() == "ok")
    }

    @Test("load-cell non-uniformity and finished sweeps are stored and read back by window and channel")
    func uniformityAndSweeps() throws {
        let (log, dir) = try tempLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var s = sample(1000)
        s.nonUniformity = 0.034
        s.voltage = 3.712
        try log.append(samples: [s, sample(1001)], events: [])
        let back = try log.samples(since: 0, until: 2000, channel: "A")
        #expect(back.map(\.nonUniformity) == [0.034, nil])
        #expect(back.map(\.voltage) == [3.712, nil])
        // The cell voltage follows the non-uniformity (issue 14); the per-load-cell forces
        // (issue 15) are the last column, one field (';'-separated).
        #expect(RunLog.csvLine(back[0]).hasSuffix(",0.034,3.712,,,,"))
        #expect(RunLog.csvHeader.hasSuffix(",nonuniformity,voltage_v,load_cell_forces_n,period_s,bulk_resistance_ohm_cm2,thickness_um"))
        var three = sample(1500)
        three.loadCellForces = [210.5, 190.25, 199]
        try log.append(samples: [three], events: [])
        let f = try log.samples(since: 1500, until: 1501, channel: "A")
        #expect(f.first?.loadCellForces == [210.5, 190.25, 199])
        #expect(RunLog.csvLine(f[0]).hasSuffix(",210.5;190.25;199,,,"))
        let r = SweepResult(settings: SweepSettings(from: 8, to: 1), points: [SweepPoint(setpoint: 8, pressure: 8, resistance: 21, resistanceSD: 0.2, samples: 100, temperature: 25)],
                            fit: nil, status: .aborted, note: "operator set a setpoint", started: 10, finished: 70)
        try log.addSweep(r, channel: "A", time: 1500)
        try log.addSweep(r, channel: "B", time: 1600)
        #expect(try log.sweeps(since: 0, until: 2000, channel: "A").map(\.result) == [r])
        #expect(try log.sweeps(since: 1550, until: 2000).map(\.channel) == ["B"])
        // Existing logs from before gain the table and the column on open.
        let reopened = try RunLog(path: log.path)
        #expect(try reopened.sweeps(since: 0, until: 2000).count == 2)
    }

    @Test("restart state and run metadata persist across reopening")
    func state() throws {
        let (log, dir) = try tempLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = PersistedChannel(channel: "A", mode: .regulating, target: 5, ramp: 1, output: 3000,
                                 faults: [FaultRecord(code: .sensorStale, message: "m", raisedAt: 3, active: false)],
                                 program: nil, backend: ["spring.motor": 2400], updated: 9)
        try log.saveState([s])
        try log.setMetadata(RunMetadata(cellId: "SSB-1", chemistry: "sulfide", preparationPressureMpa: 375), channel: "A", time: 1)
        let reopened = try RunLog(path: log.path)
        #expect(try reopened.loadState()["A"] == s)
        #expect(try reopened.metadata(channel: "A")?.preparationPressureMpa == 375)
    }

    @Test("a loaded program persists as a typed value, and state saved by earlier versions (program as JSON text) still restores it")
    func programState() throws {
        var runner = ProgramRunner(program: PressureProgram(name: "p", steps: [.ramp(to: 5, rate: 0.5), .hold(mpa: nil, duration: 10)]), startSetpoint: 1)
        _ = runner.update(now: 0, inputs: { _ in nil }); _ = runner.update(now: 3, inputs: { _ in nil })
        var s = PersistedChannel(channel: "A", mode: .regulating, target: 5, ramp: nil, output: 3000, faults: [],
                                 program: runner, backend: nil, updated: 9)
        let data = try JSONEncoder().encode(s)
        #expect(try JSONDecoder().decode(PersistedChannel.self, from: data) == s)
        #expect(!String(decoding: data, as: UTF8.self).contains("\\\""), "no JSON inside the JSON")
        // What 0.2.0 before this change wrote: "program": "<the runner's JSON>".
        var legacy = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        legacy["program"] = String(decoding: try JSONEncoder().encode(runner), as: UTF8.self)
        let old = try JSONDecoder().decode(PersistedChannel.self, from: JSONSerialization.data(withJSONObject: legacy))
        #expect(old.program == runner)
        s.program = nil
        legacy["program"] = nil
        #expect(try JSONDecoder().decode(PersistedChannel.self, from: JSONSerialization.data(withJSONObject: legacy)) == s)
    }

    @Test("retention prunes rows older than the cut-off")
    func prune() throws {
        let (log, dir) = try tempLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try log.append(samples: (0..<100).map { sample(Double($0)) }, events: [RunLogEvent(time: 10, channel: "", kind: "daemon", detail: "x")])
        #expect(try log.prune(before: 50) == 51)
        #expect(try log.samples(since: 0, until: 1000).first?.time == 50)
    }

    @Test("CSV: header and rows have the same columns; absent values are empty")
    func csv() {
        var s = sample(1_764_000_000.25)
        s.temperature = nil
        let line = RunLog.csvLine(s)
        #expect(line.split(separator: ",", omittingEmptySubsequences: false).count == RunLog.csvHeader.split(separator: ",").count)
        #expect(line.contains("2025-11-24T16:00:00.250Z"))
        #expect(line.contains(",3000,,1,"))
    }

    @Test("samples older than the horizon become one row per period: envelope, tick-weighted mean, last values; idempotent; events untouched")
    func downsampling() throws {
        let (log, dir) = try tempLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Three hours of 1 s samples on two channels, a pressure that rises by 1 kPa a
        // second with an envelope of ±0.1 MPa, and one spike in the first minute.
        var rows: [LogSample] = []
        for k in 0..<10_800 {
            for ch in ["A", "B"] {
                var s = sample(1_000_020 + Double(k), ch)
                s.pressure = 5 + Double(k) * 0.001; s.pressureMean = s.pressure; s.pressureMin = s.pressure! - 0.1; s.pressureMax = s.pressure! + 0.1
                s.count = k % 2 == 0 ? 100 : 50
                if ch == "A" && k == 10 { s.pressureMax = 7.5 }
                rows.append(s)
            }
        }
        try log.append(samples: rows, events: [RunLogEvent(time: 1_000_030, channel: "A", kind: "setpoint", detail: "5 MPa")])
        let horizon = 1_000_020.0 + 7200
        var replaced = 0
        while true { let n = try log.downsample(before: horizon, period: 60, maxRows: 3000); replaced += n; if n == 0 { break } }
        #expect(replaced == 2 * 7200)
        #expect(try log.downsample(before: horizon, period: 60) == 0, "a second pass changes nothing")
        let a = try log.samples(since: 0, until: 2e6, channel: "A")
        #expect(a.count == 120 + 3600)
        let first = try #require(a.first)
        // The first minute [1 000 020, 1 000 080): samples 0…59.
        #expect(first.period == 60)
        #expect(first.time == 1_000_079)
        #expect(first.pressureMax == 7.5, "the spike survives in the envelope")
        #expect(abs((first.pressureMin ?? 0) - 4.9) < 1e-9)
        #expect(abs((first.pressure ?? 0) - 5.059) < 1e-9, "the last value")
        // Weights 100, 50, 100, …: the tick-weighted mean of 5 + k/1000 over k = 0…59.
        let w = (0..<60).map { Double($0 % 2 == 0 ? 100 : 50) }
        var weighted = 0.0
        for k in 0..<60 { weighted += (5 + Double(k) * 0.001) * w[k] }
        let mean = weighted / w.reduce(0, +)
        #expect(abs((first.pressureMean ?? 0) - mean) < 1e-9)
        #expect(first.count == 30 * 150)
        #expect(a.last?.period == nil, "samples newer than the horizon stay as logged")
        #expect(try log.events(since: 0, until: 2e6).count == 1)
        #expect(RunLog.csvLine(first).hasSuffix(",60,,"))
        #expect(try log.integrityCheck() == "ok")
    }

}
