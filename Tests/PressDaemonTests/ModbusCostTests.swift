import Foundation
import Testing
@testable import PressDrivers

/// Issue 17, cost per rig: pressd read its actuator registers back every cycle and wrote
/// every output every cycle, three requests per cycle where one read does the job.
/// Against the independent misbehaving peer, counting the requests it answers per
/// function code.
@Suite("Modbus: output registers cost a request only when it matters", .serialized)
struct ModbusCostTests {
    static let output = ModbusSignal(id: "out", unit: 1, table: .holding, address: 20, codec: RegisterCodec(type: .u16, scale: 0.0001))
    static let force = [ModbusSignal(id: "f", unit: 1, table: .input, address: 0, codec: RegisterCodec(type: .u16)),
                        ModbusSignal(id: "t", unit: 1, table: .input, address: 2, codec: RegisterCodec(type: .u16))]

    func counts(_ peer: MisbehavingPeer) throws -> (reads: Int, readbacks: Int, writes: Int) {
        let s = try peer.command("stats")
        return ((s["fc4"] as? Int) ?? 0, (s["fc3"] as? Int) ?? 0, ((s["fc6"] as? Int) ?? 0) + ((s["fc16"] as? Int) ?? 0))
    }

    @Test("50 Hz for 3 s with a steady output: one read per cycle, the output read back and re-written about once a second; a changing output is written each time it changes; after a dropped connection both happen at once")
    func steadyAndChanging() throws {
        let peer = try MisbehavingPeer()
        defer { peer.stop() }
        let poller = ModbusPoller(name: "mb", transport: peer.transport, timeout: 0.2, retries: 1, pollRate: 50,
                                  readSignals: Self.force, readbackSignals: [Self.output], clock: { modbusTestNow() })
        poller.start()
        defer { poller.stop() }
        let deadline = modbusTestNow() + 5
        while modbusTestNow() < deadline, poller.value("f") == nil || poller.value("out") == nil { usleep(10_000) }
        try #require(poller.value("out") != nil, "no read-back at start: \(poller.snapshotHealth())")
        #expect(poller.value("out")?.value == MisbehavingPeerImage.holding(20) * 0.0001, "the register's value before any write")

        // A steady output, offered every 10 ms as the control loop does.
        let before = try counts(peer)
        let t0 = modbusTestNow()
        while modbusTestNow() < t0 + 3 { poller.write(Self.output, 0.3456); usleep(10_000) }
        let steady = try counts(peer)
        let cycles = 3.0 * 50
        let reads = steady.reads - before.reads, readbacks = steady.readbacks - before.readbacks, writes = steady.writes - before.writes
        #expect(Double(reads) > cycles * 0.6 && Double(reads) <= cycles * 1.1, "\(reads) force reads for about \(cycles) cycles")
        #expect(readbacks >= 2 && readbacks <= 5, "\(readbacks) read-backs in 3 s (at start, then once a second)")
        #expect(writes >= 1 && writes <= 5, "\(writes) writes of an unchanged output in 3 s (the first, then a re-assertion a second)")
        #expect(abs((poller.value("out")?.value ?? 0) - 0.3456) < 1e-9, "the cache holds the value written: \(String(describing: poller.value("out")))")
        #expect(poller.snapshotHealth().unchangedWritesSkipped > 100)

        // A changing output: every change is written.
        var sent = 0
        let t1 = modbusTestNow()
        var v = 0.1
        while modbusTestNow() < t1 + 1 { v += 0.001; poller.write(Self.output, v); sent += 1; usleep(20_000) }
        usleep(100_000)
        let changing = try counts(peer)
        #expect(changing.writes - steady.writes >= sent * 6 / 10, "\(changing.writes - steady.writes) writes for \(sent) changes")

        // The connection dropped: the same value is written again and read back at once.
        try peer.command("close x1")
        let t2 = modbusTestNow()
        while modbusTestNow() < t2 + 1.5 { poller.write(Self.output, v); usleep(10_000) }
        let after = try counts(peer)
        #expect(poller.snapshotHealth().resyncs >= 1, "the close was seen: \(poller.snapshotHealth())")
        #expect(after.writes > changing.writes, "re-written after the reconnect")
        #expect(after.readbacks > changing.readbacks, "read back after the reconnect")
    }
}
