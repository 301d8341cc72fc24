import Foundation
import Testing
import PressProtocol
import PressCore
@testable import PressDrivers
@testable import PressDaemon

/// Tests/peers/misbehaving_peer.py: a Modbus TCP/RTU peer written with Python's standard
/// library only (not pymodbus, not libmodbus) that serves known registers and misbehaves
/// when told to on its stdin. Its stderr (one line per misbehaving reply, the seed and
/// the schedule) goes to `logPath`.
final class MisbehavingPeer: @unchecked Sendable {
    let process = Process()
    var socat: Process?
    let stdin = Pipe()
    let stdout = Pipe()
    let logPath: String
    let info: [String: Any]
    /// The serial device the client opens (RTU), or nil for TCP.
    let clientDevice: String?
    /// Loop-clock time (monotonic seconds) at which the peer's clock (registers 100-101,
    /// the schedule) read zero, give or take the pipe's latency.
    let startTime: Double
    private var buffer = Data()

    static let script = repoRoot + "/Tests/peers/misbehaving_peer.py"

    init(rtu: Bool = false, arguments: [String] = []) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mbpeer-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        logPath = dir + "/peer.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        var args = [Self.script, "--exit-on-eof"]
        if rtu {
            let s = Process()
            s.executableURL = URL(fileURLWithPath: "/bin/sh")
            s.arguments = ["-c", "exec /usr/bin/socat pty,raw,echo=0,link=\(dir)/peer pty,raw,echo=0,link=\(dir)/client </dev/null >/dev/null 2>&1"]
            try s.run()
            socat = s
            for _ in 0..<100 where !(FileManager.default.fileExists(atPath: dir + "/client") && FileManager.default.fileExists(atPath: dir + "/peer")) {
                usleep(50_000)
            }
            args += ["--rtu", dir + "/peer"]
            clientDevice = dir + "/client"
        } else {
            args += ["--tcp", "0"]
            clientDevice = nil
        }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = args + arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        var first: Data?
        do { first = try Self.readLine(stdout.fileHandleForReading, buffer: &buffer, timeout: 15) } catch {}
        startTime = modbusTestNow()
        guard let line = first, let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            kill(process.processIdentifier, SIGKILL)
            if let s = socat { kill(s.processIdentifier, SIGKILL) }
            throw ClientError.io("the misbehaving peer did not start (\(args.joined(separator: " ")))")
        }
        info = obj
    }

    var port: Int? { info["port"] as? Int }
    var seed: Int { info["seed"] as? Int ?? -1 }
    /// The schedule as (start, end, kind) in the peer's seconds.
    var schedule: [(start: Double, end: Double, kind: String)] {
        (info["schedule"] as? [[String: Any]] ?? []).map {
            (($0["start"] as! NSNumber).doubleValue, ($0["end"] as! NSNumber).doubleValue, $0["kind"] as! String)
        }
    }

    var transport: ModbusTransport {
        if let port { return .tcp(host: "127.0.0.1", port: port) }
        return .rtu(device: clientDevice!, baud: 19200, parity: "N", dataBits: 8, stopBits: 1, rs485: false)
    }

    /// Sends one control command ("busy 2", "garbage x1", "stats") and returns the
    /// peer's JSON acknowledgement.
    @discardableResult
    func command(_ line: String) throws -> [String: Any] {
        stdin.fileHandleForWriting.write(Data((line + "\n").utf8))
        let reply = try Self.readLine(stdout.fileHandleForReading, buffer: &buffer, timeout: 5)
        let obj = try JSONSerialization.jsonObject(with: reply) as? [String: Any] ?? [:]
        guard obj["ok"] as? Bool == true else { throw ClientError.io("peer refused '\(line)': \(obj)") }
        return obj
    }

    /// The peer's stderr so far: its seed, schedule and every misbehaving reply.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        if let s = socat, s.isRunning { kill(s.processIdentifier, SIGKILL); s.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: (logPath as NSString).deletingLastPathComponent)
    }

    private static func readLine(_ h: FileHandle, buffer: inout Data, timeout: Double) throws -> Data {
        let deadline = modbusTestNow() + timeout
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<nl]
                buffer = Data(buffer[(nl + 1)...])
                return Data(line)
            }
            var p = pollfd(fd: h.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let left = deadline - modbusTestNow()
            guard left > 0, poll(&p, 1, Int32(left * 1000)) > 0 else { throw ClientError.io("no line from the peer within \(timeout) s") }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(h.fileDescriptor, &chunk, chunk.count)
            guard n > 0 else { throw ClientError.io("the peer closed its stdout") }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}

/// Monotonic seconds, the poller's clock in these tests.
func modbusTestNow() -> Double { Double(monotonicNanos()) / 1e9 }

/// What the tests read from the misbehaving peer, and what each value must be.
enum MisbehavingPeerImage {
    /// Input register `a` holds (0x1111 + 257·a) mod 2¹⁶, holding register `a` 0x2222 + 257·a.
    static func input(_ a: Int) -> Double { Double((0x1111 + 257 * a) & 0xFFFF) }
    static func holding(_ a: Int) -> Double { Double((0x2222 + 257 * a) & 0xFFFF) }
    static let u16 = RegisterCodec(type: .u16)
    static let u32 = RegisterCodec(type: .u32)
    /// `transmitter`: one read per cycle, input registers 0…9 (0, 1, 5 and the peer's clock
    /// in 8-9), as a load-cell transmitter is read. `twoTables`: a second read, holding
    /// registers 5…9 (5 and the clock again).
    enum Layout { case transmitter, twoTables }
    static func signals(_ layout: Layout = .twoTables, unit: Int = 1) -> [ModbusSignal] {
        let input = [ModbusSignal(id: "in0", unit: unit, table: .input, address: 0, codec: u16),
                     ModbusSignal(id: "in1", unit: unit, table: .input, address: 1, codec: u16),
                     ModbusSignal(id: "in5", unit: unit, table: .input, address: 5, codec: u16),
                     ModbusSignal(id: "clock", unit: unit, table: .input, address: 8, codec: u32)]
        guard layout == .twoTables else { return input }
        return input + [ModbusSignal(id: "hold5", unit: unit, table: .holding, address: 5, codec: u16),
                        ModbusSignal(id: "hclock", unit: unit, table: .holding, address: 8, codec: u32)]
    }
    static let expected: [String: Double] = ["in0": input(0), "in1": input(1), "in5": input(5), "hold5": holding(5)]
    static let clocks: Set<String> = ["clock", "hclock"]
}

/// Watches a poller from a thread of its own: every new sample of every signal (a new
/// sample is one whose time changed) and whether the poller ever reported itself
/// disconnected.
final class ModbusSampleRecorder: @unchecked Sendable {
    struct Seen { var id: String; var sample: Sample; var seenAt: Double }
    private let lock = NSLock()
    private var seen: [Seen] = []
    private var disconnectedAt: [Double] = []
    private let stopFlag = NSLock()
    private var stopping = false
    private var thread: Thread?

    let ids: [String]

    init(_ poller: ModbusPoller, ids: [String]) {
        self.ids = ids
        let t = Thread { [self] in
            var last: [String: Sample] = [:]
            var wasConnected = false
            while !isStopping {
                let now = modbusTestNow()
                for id in ids {
                    guard let s = poller.value(id), s != last[id] else { continue }
                    last[id] = s
                    lock.withLock { seen.append(Seen(id: id, sample: s, seenAt: now)) }
                }
                let c = poller.snapshotHealth().connected
                if wasConnected && !c { lock.withLock { disconnectedAt.append(now) } }
                wasConnected = c
                usleep(1_000)
            }
        }
        thread = t
        t.start()
    }

    private var isStopping: Bool { stopFlag.withLock { stopping } }
    func stop() { stopFlag.withLock { stopping = true }; usleep(20_000) }

    var samples: [Seen] { lock.withLock { seen } }
    var disconnections: [Double] { lock.withLock { disconnectedAt } }

    /// Samples whose value is not what the peer serves: a static register with another
    /// value, or a clock that runs backwards, ahead of the peer's time, or behind the
    /// sample's own timestamp (an old reply dated as new).
    func wrongValues(peerStart: Double) -> [String] {
        var bad: [String] = []
        var lastClock: [String: Double] = [:]
        for s in samples {
            if let e = MisbehavingPeerImage.expected[s.id], s.sample.value != e {
                bad.append("\(s.id) = \(Int(s.sample.value)) (0x\(String(Int(s.sample.value), radix: 16))), expected \(Int(e)) at t=\(String(format: "%.3f", s.sample.time - peerStart))")
            }
            if MisbehavingPeerImage.clocks.contains(s.id) {
                let ms = s.sample.value
                let limit = (s.seenAt - peerStart) * 1000 + 50
                if ms > limit || ms < (lastClock[s.id] ?? 0) {
                    bad.append("\(s.id) = \(Int(ms)) ms, the peer's clock was ≤ \(Int(limit)) ms, previous \(Int(lastClock[s.id] ?? 0))")
                }
                // The peer made the reply after the request was sent (the sample's time),
                // give or take how well startTime maps its clock onto ours.
                let dated = (s.sample.time - peerStart) * 1000
                if ms < dated - 20 {
                    bad.append("\(s.id) = \(Int(ms)) ms in a sample dated \(Int(dated)) ms: an old reply taken as new")
                }
                lastClock[s.id] = max(ms, lastClock[s.id] ?? 0)
            }
        }
        return bad
    }

    /// The first sample of `id` acquired at or after `time` (loop clock).
    func first(_ id: String, after time: Double) -> Seen? { samples.first { $0.id == id && $0.sample.time >= time } }

    /// The first clock sample whose value (the peer's milliseconds) is at least `peerSeconds`.
    func firstClock(atLeast peerSeconds: Double) -> Seen? {
        samples.first { $0.id == "clock" && $0.sample.value >= peerSeconds * 1000 }
    }
}

@Suite("Modbus against a misbehaving peer", .serialized)
struct ModbusMisbehaviourTests {
    static let period = 0.02   // 50 Hz
    static let timeout = 0.2

    /// Starts a poller on `peer`, waits until every signal has a sample, runs `body`, and
    /// always stops both.
    func withPoller(_ peer: MisbehavingPeer, _ layout: MisbehavingPeerImage.Layout = .twoTables,
                    _ body: (ModbusPoller, ModbusSampleRecorder) throws -> Void) throws {
        defer { peer.stop() }
        let signals = MisbehavingPeerImage.signals(layout)
        let poller = ModbusPoller(name: "mb", transport: peer.transport, defaultUnit: 1, timeout: Self.timeout, retries: 1,
                                  pollRate: 1 / Self.period, readSignals: signals, clock: { modbusTestNow() })
        poller.start()
        let rec = ModbusSampleRecorder(poller, ids: signals.map(\.id))
        defer { rec.stop(); poller.stop() }
        let deadline = modbusTestNow() + 5
        while modbusTestNow() < deadline, !signals.allSatisfy({ poller.value($0.id) != nil }) { usleep(10_000) }
        try #require(signals.allSatisfy { poller.value($0.id) != nil }, "no samples from the peer within 5 s: \(poller.snapshotHealth())")
        try body(poller, rec)
        let wrong = rec.wrongValues(peerStart: peer.startTime)
        #expect(wrong.isEmpty, "wrong values delivered as data: \(wrong.prefix(5)) (\(wrong.count) in all)\npeer log:\n\(peer.log.suffix(2000))")
    }

    /// Every signal has a sample acquired after `time` within `within` seconds of it, and
    /// the peer's clock in it is past `peerSeconds`.
    func expectFresh(_ rec: ModbusSampleRecorder, after time: Double, peerSeconds: Double, within: Double, _ what: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        for id in rec.ids {
            let s = rec.first(id, after: time)
            #expect(s != nil && s!.sample.time <= time + within,
                    "\(what): no fresh \(id) within \(within) s (first: \(s.map { String(format: "%.3f s later", $0.sample.time - time) } ?? "none"))",
                    sourceLocation: sourceLocation)
        }
        let c = rec.firstClock(atLeast: peerSeconds)
        #expect(c != nil && c!.sample.time <= time + within,
                "\(what): the peer's clock never came back past \(peerSeconds) s within \(within) s", sourceLocation: sourceLocation)
    }

    @Test("one garbled reply (garbage, junk before the reply, a duplicated reply, a 65535-byte or a too-short MBAP length): reconnect, correct fresh values within 2 s, then no more errors",
          arguments: ["garbage", "noise", "duplicate", "long-length", "short-length"])
    func garbledReply(kind: String) throws {
        let peer = try MisbehavingPeer(arguments: ["--seed", "7"])
        try withPoller(peer, .transmitter) { poller, rec in
            usleep(300_000)
            let before = poller.snapshotHealth()
            let sent = modbusTestNow()
            let ack = try peer.command("\(kind) x1")
            let peerT = (ack["t"] as! NSNumber).doubleValue
            usleep(2_000_000)
            let mid = poller.snapshotHealth()
            usleep(1_000_000)
            let after = poller.snapshotHealth()
            expectFresh(rec, after: sent + 0.001, peerSeconds: peerT, within: 2, "after one \(kind) reply")
            #expect(mid.errors - before.errors <= 3, "\(mid.errors - before.errors) errors in the 2 s after one \(kind) reply (last: \(mid.lastError ?? "-"))")
            #expect(after.errors == mid.errors, "the errors did not stop: \(after.errors - mid.errors) more in the next second (last: \(after.lastError ?? "-"))")
            #expect(after.errors > before.errors, "the \(kind) reply was not reported as an error")
            #expect(after.connected)
        }
    }

    @Test("replies with the wrong unit id or transaction id are errors, never data; samples resume when they stop",
          arguments: ["wrong-unit", "wrong-tid"])
    func wrongIdentity(kind: String) throws {
        let peer = try MisbehavingPeer()
        try withPoller(peer) { poller, rec in
            usleep(300_000)
            let before = poller.snapshotHealth()
            let ack = try peer.command("\(kind) 1.0")
            let end = (ack["end"] as! NSNumber).doubleValue
            let endLocal = modbusTestNow() + 1.0
            usleep(3_000_000)
            let after = poller.snapshotHealth()
            #expect(after.errors > before.errors, "\(kind) replies were not reported as errors")
            #expect(after.lastError?.contains("/unit 1") == true, "\(after.lastError ?? "-")")
            expectFresh(rec, after: endLocal, peerSeconds: end, within: 2, "after 1 s of \(kind)")
        }
    }

    @Test("a reply that stalls mid-frame: recovered after the response timeout")
    func stallMidFrame() throws {
        let peer = try MisbehavingPeer()
        try withPoller(peer) { poller, rec in
            usleep(300_000)
            let before = poller.snapshotHealth()
            let sent = modbusTestNow()
            let ack = try peer.command("stall x1")
            usleep(2_500_000)
            let after = poller.snapshotHealth()
            expectFresh(rec, after: sent + 0.001, peerSeconds: (ack["t"] as! NSNumber).doubleValue,
                        within: Self.timeout * 2 + 1, "after a stalled reply")
            #expect(after.errors - before.errors >= 1 && after.errors - before.errors <= 3, "\(after.errors - before.errors) errors")
            #expect(after.lastError?.lowercased().contains("timed out") == true, "\(after.lastError ?? "-")")
        }
    }

    @Test("a 2 s burst of DEVICE_BUSY: an error per read, the connection kept, fresh samples within one poll period of the end")
    func busyBurst() throws {
        let peer = try MisbehavingPeer()
        try withPoller(peer) { poller, rec in
            usleep(300_000)
            let before = poller.snapshotHealth()
            let lo = modbusTestNow()
            let ack = try peer.command("busy 2.0")
            let hi = modbusTestNow()
            let end = (ack["end"] as! NSNumber).doubleValue
            usleep(1_000_000)
            let during = poller.snapshotHealth()
            usleep(2_000_000)
            let after = poller.snapshotHealth()
            // The burst ends somewhere in [lo + 2, hi + 2] on our clock.
            let endLocal = lo + 2
            let bound = (hi - lo) + Self.period + 0.06
            expectFresh(rec, after: endLocal, peerSeconds: end, within: bound, "after a 2 s DEVICE_BUSY burst")
            for id in rec.ids {
                let last = rec.samples.last { $0.id == id && $0.sample.time < lo }
                let firstAfter = rec.first(id, after: lo)
                if let firstAfter, let last {
                    #expect(firstAfter.sample.time >= endLocal - 0.01, "\(id) sampled during the burst")
                    #expect(last.sample.time < lo)
                }
            }
            #expect(during.lastError?.contains("busy") == true, "\(during.lastError ?? "-")")
            #expect(during.lastError?.contains("tcp://127.0.0.1:\(peer.port!)/unit 1: read") == true, "\(during.lastError ?? "-")")
            #expect(during.connected, "a busy device is not a lost connection")
            #expect(rec.disconnections.isEmpty, "the poller dropped the connection on DEVICE_BUSY")
            // One error per failed read: 2 reads per cycle, 50 cycles per second.
            let errors = after.errors - before.errors
            #expect(errors >= 2 * 50 && errors <= 2 * 2 * 50 + 8, "\(errors) errors over a 2 s burst")
            #expect(after.exceptions - before.exceptions == errors, "every error of the burst is an exception reply")
            #expect(after.resyncs == before.resyncs, "DEVICE_BUSY made the poller drop the connection")
            #expect(after.reads > during.reads)
        }
    }

    @Test("a random schedule of misbehaviours (seeded): never a wrong value as data; samples resume after every window")
    func randomSchedule() throws {
        let seed = ProcessInfo.processInfo.environment["PRESSD_PEER_SEED"].flatMap(Int.init) ?? 20_261_212
        let span = 40.0
        let peer = try MisbehavingPeer(arguments: ["--random", "\(seed)", "--span", "\(span)", "--window", "0.1:5", "--gap", "6:7"])
        let schedule = peer.schedule
        let replay = "seed \(seed), schedule \(schedule.map { "\($0.kind) \($0.start)-\($0.end)" }.joined(separator: ", "))"
        try withPoller(peer) { poller, rec in
            #expect(schedule.count >= 3, "\(replay)")
            // Backoff doubles from 0.1 s only while reconnects keep failing, so the wait in
            // progress when a window ends is at most about the window's length (and never
            // over 5 s).
            func bound(_ w: (start: Double, end: Double, kind: String)) -> Double { min(5, w.end - w.start) + 1 }
            let until = schedule.map { $0.end + bound($0) }.max() ?? span
            while modbusTestNow() - peer.startTime < until + 0.5 { usleep(100_000) }
            for w in schedule {
                let bound = bound(w)
                let endLocal = peer.startTime + w.end
                let c = rec.firstClock(atLeast: w.end)
                #expect(c != nil && c!.sample.time <= endLocal + bound,
                        "no fresh sample within \(bound) s after \(w.kind) \(w.start)-\(w.end) (first: \(c.map { String(format: "%.3f s", $0.sample.time - endLocal) } ?? "none")); \(replay)")
                for id in MisbehavingPeerImage.expected.keys {
                    let s = rec.first(id, after: endLocal + 0.05)
                    #expect(s != nil && s!.sample.time <= endLocal + bound, "\(id) did not resume after \(w.kind) \(w.start)-\(w.end); \(replay)")
                }
            }
            print("misbehaving peer: \(replay); \(poller.snapshotHealth())")
        }
    }

    @Test("RTU: a reply from the wrong unit, a CRC error, garbage, junk, a duplicate, a stalled frame and a reply after the timeout are errors, never data; samples resume",
          arguments: ["wrong-unit", "bad-crc", "garbage", "noise", "duplicate", "stall", "late"])
    func rtu(kind: String) throws {
        // A late reply comes 0.3 s after its request: after the 0.2 s timeout, before the
        // port may be reopened (the timeout again), so it must be flushed, not read.
        let peer = try MisbehavingPeer(rtu: true, arguments: ["--seed", "7", "--late", "0.3"])
        try withPoller(peer) { poller, rec in
            usleep(300_000)
            let before = poller.snapshotHealth()
            let ack = try peer.command("\(kind) 0.5")
            let endLocal = modbusTestNow() + 0.5
            usleep(3_000_000)
            let after = poller.snapshotHealth()
            let mid = after
            usleep(1_000_000)
            let later = poller.snapshotHealth()
            #expect(after.errors > before.errors, "\(kind) was not reported as an error")
            #expect(after.lastError?.contains("/unit 1: read ") == true, "\(after.lastError ?? "-")")
            expectFresh(rec, after: endLocal, peerSeconds: (ack["end"] as! NSNumber).doubleValue, within: 2, "RTU after 0.5 s of \(kind)")
            #expect(later.errors == mid.errors, "errors went on after \(kind) ended: \(later.lastError ?? "-")")
        }
    }

    @Test("a peer that garbles every reply: reconnects back off from 0.1 s doubling to 5 s, so errors stay few; samples resume when it stops")
    func backoff() throws {
        let peer = try MisbehavingPeer(arguments: ["--seed", "7"])
        try withPoller(peer, .transmitter) { poller, rec in
            usleep(300_000)
            let before = poller.snapshotHealth()
            let ack = try peer.command("garbage 6")
            let endLocal = modbusTestNow() + 6
            usleep(6_000_000)
            let during = poller.snapshotHealth()
            // Reconnects 0.1, 0.2, 0.4, 0.8, 1.6 and 3.2 s apart: at most 7 garbled replies
            // in 6 s (each one error and one resync), not one per poll.
            let errors = during.errors - before.errors
            #expect(errors >= 4 && errors <= 8, "\(errors) errors in 6 s of garbage")
            #expect(during.resyncs - before.resyncs == errors, "each garbled reply drops the connection once")
            // Random bytes are taken apart as a frame (invalid) or wait for more (timeout).
            let last = during.lastError ?? "-"
            #expect(last.contains("invalid reply") || last.contains("timed out"), "\(last)")
            // The last wait is at most 5 s (3.2 s here), then the first request succeeds
            // and the backoff is back to 0.1 s.
            usleep(4_500_000)
            expectFresh(rec, after: endLocal, peerSeconds: (ack["end"] as! NSNumber).doubleValue, within: 4.5, "after 6 s of garbage")
            let after = poller.snapshotHealth()
            let check = try peer.command("garbage x1")
            let sent = modbusTestNow()
            usleep(1_000_000)
            expectFresh(rec, after: sent, peerSeconds: (check["t"] as! NSNumber).doubleValue, within: 0.5,
                        "after one more garbled reply (the backoff was reset by the first good read)")
            #expect(poller.snapshotHealth().errors == after.errors + 1)
        }
    }

    @Test("errors are typed and name the device, unit, function and register; only an exception reply keeps the connection in step")
    func typedErrors() throws {
        let peer = try MisbehavingPeer(arguments: ["--seed", "7"])
        defer { peer.stop() }
        let port = peer.port!
        func fresh() throws -> ModbusConnection { try ModbusConnection.tcp(host: "127.0.0.1", port: port, unit: 1, timeout: 0.3) }
        func expectError(_ kind: String, on c: ModbusConnection, address: Int = 3, _ check: (ModbusError) -> Bool,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
            try peer.command("\(kind) x1")
            do {
                let v = try c.read(unit: 1, table: .input, address: address, count: 2)
                Issue.record("\(kind): read \(v) as data", sourceLocation: sourceLocation)
            } catch {
                #expect(error.device == "tcp://127.0.0.1:\(port)/unit 1" && error.unit == 1, "\(error)", sourceLocation: sourceLocation)
                #expect(error.address == address && error.function == "read input registers (0x04)", "\(error)", sourceLocation: sourceLocation)
                #expect(error.description.hasPrefix("tcp://127.0.0.1:\(port)/unit 1: read input registers (0x04) at register \(address): "),
                        "\(error)", sourceLocation: sourceLocation)
                #expect(check(error), "\(kind): \(error) (\(error.kind))", sourceLocation: sourceLocation)
            }
        }
        let c = try fresh()
        #expect(try c.read(unit: 1, table: .input, address: 3, count: 2) == [UInt16(MisbehavingPeerImage.input(3)), UInt16(MisbehavingPeerImage.input(4))])
        try expectError("busy", on: c) { $0.kind == .exception(code: 6) && !$0.needsResync && $0.reason.contains("busy") }
        // The device said no, the connection is still in step.
        #expect(try c.read(unit: 1, table: .input, address: 3, count: 2) == [UInt16(MisbehavingPeerImage.input(3)), UInt16(MisbehavingPeerImage.input(4))])
        try expectError("wrong-unit", on: c) { $0.kind == .invalidReply && $0.needsResync && $0.reason.contains("reply from unit 2") }
        try expectError("wrong-tid", on: try fresh()) { $0.kind == .invalidReply && $0.reason.contains("transaction id") }
        try expectError("long-length", on: try fresh()) { $0.kind == .invalidReply && $0.reason.contains("MBAP length 65535") }
        try expectError("short-length", on: try fresh()) { $0.kind == .invalidReply && $0.reason.contains("MBAP length 2") }
        try expectError("stall", on: try fresh()) { $0.kind == .timeout && $0.needsResync }
        try expectError("close", on: try fresh()) { if case .connection = $0.kind { return $0.needsResync } else { return false } }
        // A duplicated reply: the first copy is good, the second is found waiting before
        // the next request is sent.
        let d = try fresh()
        try peer.command("duplicate x1")
        #expect(try d.read(unit: 1, table: .input, address: 3, count: 2) == [UInt16(MisbehavingPeerImage.input(3)), UInt16(MisbehavingPeerImage.input(4))])
        usleep(50_000)
        do { _ = try d.read(unit: 1, table: .input, address: 3, count: 2); Issue.record("read after a duplicated reply") }
        catch { #expect(error.kind == .invalidReply && error.reason.contains("no request asked for"), "\(error)") }
        // A request we will not send is not the connection's fault.
        let r = try fresh()
        do { _ = try r.read(unit: 1, table: .holding, address: 0, count: 126); Issue.record("read 126 registers") }
        catch { #expect(error.kind == .request && !error.needsResync, "\(error)") }
    }
}
