import Foundation
import Testing
import PressLog
import PressProtocol

/// Issue 25, finding 4: `pressctl run set -c A --note "…"` silently erased the cell id,
/// chemistry and preparation steps recorded earlier, and with the disk full `run set`
/// failed with `internal` and the record was lost.
@Suite("run set keeps what it was not told to change", .serialized)
struct RunMetadataTests {
    func pressctl(_ d: DaemonProcess, _ args: [String]) throws -> Run {
        try runProcess(binDir + "/pressctl", args + ["--socket", d.socket])
    }

    func record(_ c: ControlClient, _ channel: String = "A") throws -> RunMetadataInfo {
        try c.call("run_get", ChannelParams(channel: channel), as: RunResult.self).metadata
    }

    @Test("a later run set keeps the fields it does not name; --clear clears one; every change is an event with who and the previous value")
    func mergeAndClear() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        var r = try pressctl(d, ["run", "set", "-c", "A", "--cell-id", "SSB-042", "--chemistry", "Li|Li6PS5Cl|NMC811",
                                 "--preparation", "Li6PS5Cl separator,375,300,25", "--preparation-pressure", "375"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try pressctl(d, ["run", "set", "-c", "A", "--note", "second cell of the batch"])
        #expect(r.status == 0, "\(r.stderr)")
        var m = try record(c)
        #expect(m.cellId == "SSB-042" && m.chemistry == "Li|Li6PS5Cl|NMC811", "erased: \(m)")
        #expect(m.preparation?.count == 1 && m.preparationPressureMpa == 375, "erased: \(m)")
        #expect(m.operatorNote == "second cell of the batch")
        // Clearing is explicit, one field at a time.
        r = try pressctl(d, ["run", "set", "-c", "A", "--clear", "chemistry"])
        #expect(r.status == 0, "\(r.stderr)")
        m = try record(c)
        #expect(m.chemistry == nil && m.cellId == "SSB-042" && m.operatorNote == "second cell of the batch" && m.preparation?.count == 1, "\(m)")
        // Setting and clearing the same field, or changing nothing, is refused.
        r = try pressctl(d, ["run", "set", "-c", "A", "--clear", "note", "--note", "x"])
        #expect(r.status != 0 && r.stderr.contains("--clear note") && r.stderr.contains("--note"), "\(r.stderr)")
        r = try pressctl(d, ["run", "set", "-c", "A"])
        #expect(r.status != 0 && r.stderr.contains("--clear"), "\(r.stderr)")
        // Over the socket: an unknown field to clear names the accepted ones.
        let bad = try c.rawCall(#"{"id":1,"method":"run_set","params":{"channel":"A","clear":["cell"]}}"#)
        #expect(bad.errorCode == "invalid_params" && bad.errorMessage?.contains("cell_id") == true, "\(bad)")
        // The socket's own call without metadata, only clear.
        let only = try c.rawCall(#"{"id":2,"method":"run_set","params":{"channel":"A","clear":["operator_note"]}}"#)
        #expect(only.errorCode == nil, "\(only)")
        #expect(try record(c).operatorNote == nil && record(c).cellId == "SSB-042")
        usleep(1_500_000)
        d.stop()
        let changes = try PressLogProbe.events(dir: d.dir).filter { $0.kind == "run" && $0.channel == "A" }
        #expect(changes.allSatisfy { $0.uid == Int(getuid()) && $0.pid != nil }, "\(changes.map { ($0.uid, $0.pid) })")
        #expect(changes.contains { $0.detail.contains("operator_note") && $0.detail.contains("(none) → \"second cell of the batch\"") }, "\(changes.map(\.detail))")
        #expect(changes.contains { $0.detail.contains("chemistry \"Li|Li6PS5Cl|NMC811\" → (cleared)") }, "\(changes.map(\.detail))")
        #expect(!changes.contains { $0.detail.contains("cell_id") && $0.detail.contains("(cleared)") }, "the cell id was never cleared: \(changes.map(\.detail))")
    }

    @Test("run set on a full disk: a storage error (not internal), the record kept in memory, answered by run get, written once there is room")
    func fullDisk() throws {
        guard getuid() == 0 else { Issue.record("needs root to mount a small tmpfs"); return }
        let (base, state, unmount) = try daemonDirOnSmallDisk()
        defer { unmount(); try? FileManager.default.removeItem(atPath: base) }
        let d = try DaemonProcess(dir: base, timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        #expect(try pressctl(d, ["run", "set", "-c", "A", "--cell-id", "SSB-7", "--chemistry", "sulfide"]).status == 0)
        usleep(700_000)
        fill(state)
        let reply = try c.rawCall(#"{"id":1,"method":"run_set","params":{"channel":"A","metadata":{"operator_note":"written while the disk was full"}}}"#)
        #expect(reply.errorCode == "storage", "\(reply)")
        #expect(reply.errorMessage?.contains("kept") == true, "\(String(describing: reply.errorMessage))")
        let cli = try pressctl(d, ["run", "set", "-c", "A", "--chemistry", "Li|Li6PS5Cl|NMC811"])
        #expect(cli.status != 0 && cli.stderr.contains("storage") && !cli.stderr.contains("internal"), "\(cli.stderr)")
        let inMemory = try record(c)
        #expect(inMemory.operatorNote == "written while the disk was full" && inMemory.cellId == "SSB-7" && inMemory.chemistry == "Li|Li6PS5Cl|NMC811", "\(inMemory)")
        try FileManager.default.removeItem(atPath: state + "/filler")
        usleep(3_000_000)
        d.stop()
        let stored = try RunLog(path: state + "/runlog.sqlite").metadata(channel: "A")
        #expect(stored?.operatorNote == "written while the disk was full" && stored?.cellId == "SSB-7" && stored?.chemistry == "Li|Li6PS5Cl|NMC811",
                "the record made while the disk was full was lost: \(String(describing: stored))")
    }
}
