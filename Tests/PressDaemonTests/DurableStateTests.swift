import Foundation
import Testing
import PressCore
import PressLog
import PressProtocol
@testable import PressDaemon

/// A small tmpfs at `dir` (root only), unmounted by the returned closure.
func smallDisk(_ dir: String, size: String = "8m") throws -> () -> Void {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let r = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir])
    guard r.status == 0 else { throw ClientError.io("mount tmpfs: \(r.stderr)") }
    return { _ = try? runProcess("/bin/umount", ["-l", dir]) }
}

/// A daemon directory whose state directory is a small tmpfs: (base, state, unmount).
func daemonDirOnSmallDisk() throws -> (String, String, () -> Void) {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-df-\(UUID().uuidString.prefix(6))").path
    let state = base + "/state"
    return (base, state, try smallDisk(state, size: "16m"))
}

/// Fills the file system holding `dir` to the last block (with the file `dir/filler`).
func fill(_ dir: String) {
    let fd = open(dir + "/filler", O_WRONLY | O_CREAT, 0o600)
    let block = [UInt8](repeating: 0xAB, count: 65536)
    while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    // Then byte by byte into the last partial block.
    var one: UInt8 = 1
    while write(fd, &one, 1) > 0 {}
    close(fd)
}

/// Issue 12, finding 5: a latched trip and the operator's last setpoint survive `kill -9`
/// while the disk is full, and "run log not writing" is visible.
@Suite("State that survives a full disk and kill -9", .serialized)
struct DurableStateTests {


    func persisted(_ name: String, mode: ChannelMode, target: Double?, faults: [FaultRecord] = [], updated: Double) -> PersistedChannel {
        PersistedChannel(channel: name, mode: mode, target: target, ramp: nil, output: 1, faults: faults, program: nil, backend: nil, updated: updated)
    }

    @Test("the state file: round trip, the older slot after a torn write, and writes on a full disk")
    func journal() throws {
        guard getuid() == 0 else { Issue.record("needs root to mount a small tmpfs"); return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-j-\(UUID().uuidString.prefix(6))").path
        let unmount = try smallDisk(dir, size: "4m")
        defer { unmount(); try? FileManager.default.removeItem(atPath: dir) }
        let j = try StateJournal(path: dir + "/pressd.state")
        #expect(j.isNew && j.read() == nil)
        try j.write(.init(written: 1, channels: [persisted("A", mode: .regulating, target: 5, updated: 1)]))
        try j.write(.init(written: 2, channels: [persisted("A", mode: .regulating, target: 4, updated: 2)]))
        #expect(j.read()?.channels.first?.target == 4)
        fill(dir)
        let trip = FaultRecord(code: .overPressure, message: "x", raisedAt: 3, active: false)
        try j.write(.init(written: 3, channels: [persisted("A", mode: .tripped, target: 4, faults: [trip], updated: 3)]))
        #expect(j.read()?.channels.first?.faults == [trip], "the state file still writes on a full disk")
        // A write torn in the newer slot (seq 3 is in slot 1): the older one is read.
        let fd = open(dir + "/pressd.state", O_WRONLY)
        var junk = [UInt8](repeating: 0x55, count: 64)
        _ = pwrite(fd, &junk, 64, off_t(StateJournal.slotSize + 30))
        close(fd)
        let again = try StateJournal(path: dir + "/pressd.state")
        #expect(!again.isNew)
        #expect(again.read()?.written == 2)
    }

    @Test("restore: the newer of run log and state file wins; a state file that stopped while the run log went on is stale")
    func choice() {
        let log = ["A": persisted("A", mode: .regulating, target: 5, updated: 100)]
        let file = StateJournal.Contents(written: 130, channels: [persisted("A", mode: .tripped, target: 4, updated: 130)])
        let c = RestoreChoice.choose(runLog: log, file: file, fileIsNew: false, runLogLastTime: 131)
        #expect(c.states["A"]?.mode == .tripped && c.states["A"]?.target == 4 && c.staleSince == nil)
        let older = StateJournal.Contents(written: 90, channels: [persisted("A", mode: .released, target: nil, updated: 90)])
        let d = RestoreChoice.choose(runLog: log, file: older, fileIsNew: false, runLogLastTime: 200)
        #expect(d.states["A"]?.target == 5 && d.staleSince == 90)
        #expect(RestoreChoice.choose(runLog: log, file: nil, fileIsNew: true, runLogLastTime: 100).staleSince == nil)
        #expect(RestoreChoice.choose(runLog: log, file: nil, fileIsNew: false, runLogLastTime: 100).staleSince == 100)
    }

    @Test("disk full, a newer setpoint, an over-pressure trip, kill -9: the restarted daemon has the trip latched and the newer setpoint")
    func diskFullKillNine() throws {
        guard getuid() == 0 else { Issue.record("needs root to mount a small tmpfs"); return }
        let (base, state, unmount) = try daemonDirOnSmallDisk()
        defer { unmount(); try? FileManager.default.removeItem(atPath: base) }
        var d = try DaemonProcess(dir: base, timeScale: 5)
        defer { d.cleanup() }
        var c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        sleep(seconds: 3)
        fill(state)
        _ = try c.call("set", SetParams(channel: "A", value: 4, unit: "MPa"), as: SetResult.self)
        sleep(seconds: 2)
        let during = try c.status()
        #expect(during.storage?.first { $0.name == "run_log" }?.writing == false, "status does not say the run log stopped writing")
        #expect(during.alarms?.contains { $0.contains("run log not writing") } == true)
        #expect(during.storage?.first { $0.name == "state_file" }?.writing == true)
        // An over-pressure trip (the load cell reads 16 MPa), then the cause goes away.
        _ = try c.call("sim_inject", SimInjectParams(channel: "A", forceBiasN: 1600), as: OkResult.self)
        let end = Date().addingTimeInterval(5)
        while Date() < end, try c.channel("A").mode != "tripped" { usleep(20_000) }
        #expect(try c.channel("A").faults.contains { $0.code == "over_pressure" })
        _ = try c.call("sim_inject", SimInjectParams(channel: "A", forceBiasN: 0), as: OkResult.self)
        sleep(seconds: 0.3)
        d.kill9()
        // Restart on the same, still full, disk.
        d = try DaemonProcess(dir: base, timeScale: 5)
        c = try d.client()
        let a = try c.channel("A")
        #expect(a.mode == "tripped", "A came back \(a.mode)")
        #expect(a.faults.contains { $0.code == "over_pressure" }, "the latched trip was forgotten: \(a.faults.map(\.code))")
        #expect(a.setpointMpa == 4, "setpoint \(String(describing: a.setpointMpa)), the newer one was 4")
        #expect(throws: ClientError.self) { try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self) }
    }

    @Test("a latched trip is never forgotten across kill -9 at a random moment after it, disk full or not", arguments: [UInt64(11), 12, 13, 14])
    func randomKill(seed: UInt64) throws {
        guard getuid() == 0 else { Issue.record("needs root to mount a small tmpfs"); return }
        var rng = seed &* 0x9E37_79B9_7F4A_7C15
        func next() -> Double { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Double(rng >> 11) / Double(1 << 53) }
        let diskFull = seed % 2 == 0
        let delay = 0.05 + next() * 1.45
        let ctx = "seed \(seed): disk full \(diskFull), kill \(String(format: "%.2f", delay)) s after the trip was seen"
        print("random kill: \(ctx)")
        let (base, state, unmount) = try daemonDirOnSmallDisk()
        defer { unmount(); try? FileManager.default.removeItem(atPath: base) }
        var d = try DaemonProcess(dir: base, timeScale: 5)
        defer { d.cleanup() }
        var c = try d.client()
        _ = try c.call("set", SetParams(channel: "B", value: 4, unit: "MPa"), as: SetResult.self)
        sleep(seconds: 2)
        if diskFull { fill(state) }
        _ = try c.call("sim_inject", SimInjectParams(channel: "B", forceBiasN: 2100), as: OkResult.self) // 2100 N on 2 cm² reads 10.5 MPa > trip 10
        let end = Date().addingTimeInterval(5)
        while Date() < end, try c.channel("B").mode != "tripped" { usleep(5_000) }
        _ = try c.call("sim_inject", SimInjectParams(channel: "B", forceBiasN: 0), as: OkResult.self)
        sleep(seconds: delay)
        d.kill9()
        d = try DaemonProcess(dir: base, timeScale: 5)
        c = try d.client()
        let b = try c.channel("B")
        #expect(b.mode == "tripped" && b.faults.contains { $0.code == "over_pressure" }, "\(ctx): B came back \(b.mode) \(b.faults.map(\.code))")
        if !diskFull {
            // The run log may have lost the trip's own event to the kill; never its record.
            sleep(seconds: 1)
            d.stop()
            let events = try PressLogProbe.events(dir: base)
            #expect(events.contains { $0.channel == "B" && $0.kind == "fault" && $0.detail.hasPrefix("over_pressure") }, "\(ctx)")
        }
    }

    @Test("a state directory full at start: the same storage status and ALARM as one that fills later, and both stores write once there is room")
    func fullAtStart() throws {
        guard getuid() == 0 else { Issue.record("needs root to mount a small tmpfs"); return }
        let (base, state, unmount) = try daemonDirOnSmallDisk()
        defer { unmount(); try? FileManager.default.removeItem(atPath: base) }
        fill(state)
        let d = try DaemonProcess(dir: base, timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        let full = try c.status()
        for name in ["state_file", "run_log"] {
            let s = full.storage?.first { $0.name == name }
            #expect(s?.writing == false, "\(name) at start on a full disk: \(String(describing: s))")
            #expect(s?.failingSinceS != nil && (s?.lastError?.contains("No space left") == true || s?.lastError?.contains("full") == true),
                    "\(name): \(String(describing: s?.lastError))")
        }
        #expect(full.alarms?.contains { $0.hasPrefix("state file not writing") } == true, "\(String(describing: full.alarms))")
        #expect(full.alarms?.contains { $0.hasPrefix("run log not writing") } == true, "\(String(describing: full.alarms))")
        let pressctl = try runProcess(binDir + "/pressctl", ["status", "--socket", d.socket])
        #expect(pressctl.stdout.contains("ALARM: state file not writing"), "\(pressctl.stdout)")
        // A setpoint while nothing can be written: kept, and written once there is room.
        _ = try c.call("set", SetParams(channel: "A", value: 4, unit: "MPa"), as: SetResult.self)
        sleep(seconds: 1)
        try FileManager.default.removeItem(atPath: state + "/filler")
        var after = try c.status()
        let end = Date().addingTimeInterval(10)
        while Date() < end, after.storage?.allSatisfy(\.writing) != true || after.alarms != nil { usleep(100_000); after = try c.status() }
        #expect(after.storage?.count == 2 && after.storage?.allSatisfy(\.writing) == true, "\(String(describing: after.storage))")
        #expect(after.alarms == nil, "\(String(describing: after.alarms))")
        sleep(seconds: 1)
        d.stop()
        #expect(try StateJournal(path: state + "/pressd.state").read()?.channels.first { $0.channel == "A" }?.target == 4)
        let events = try PressLogProbe.events(dir: base)
        #expect(events.contains { $0.channel == "A" && $0.kind == "setpoint" && $0.detail.hasPrefix("4") }, "the setpoint made while the disk was full was not written: \(events.map(\.detail))")
        #expect(events.contains { $0.kind == "daemon" && $0.detail.contains("started") })
    }
}
