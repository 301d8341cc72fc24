import Foundation
import Testing
import PressProtocol
@testable import PressDrivers
@testable import PressDaemon

/// The independent Modbus peer (pymodbus 3.6.9 in .build-venv, made by scripts/deps),
/// on a loopback TCP port or on one end of a socat pseudo-terminal pair.
final class ModbusPeer: @unchecked Sendable {
    let process = Process()
    /// The peer's standard input: commands of the plant mode ("freeze", "thaw").
    let input = Pipe()
    var socat: Process?
    let port: Int?
    /// The serial device the client should open (RTU).
    let clientDevice: String?
    let info: [String: Any]

    static var python: String { repoRoot + "/.build-venv/bin/python" }

    init(mode: String, rtu: Bool = false, port fixedPort: Int? = nil, dir: String? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw ClientError.io("no \(Self.python): run scripts/deps (it makes the venv with pymodbus 3.6.9)")
        }
        var args = [repoRoot + "/Tests/peers/modbus_peer.py", "--mode", mode]
        if rtu {
            let d = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("pty-\(UUID().uuidString.prefix(6))").path
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            // socat through a shell, detached from the test's stdio (as scripts/rtu-check does).
            let s = Process()
            s.executableURL = URL(fileURLWithPath: "/bin/sh")
            s.arguments = ["-c", "exec /usr/bin/socat pty,raw,echo=0,link=\(d)/peer pty,raw,echo=0,link=\(d)/client </dev/null >/dev/null 2>&1"]
            try s.run()
            socat = s
            for _ in 0..<100 where !(FileManager.default.fileExists(atPath: d + "/client") && FileManager.default.fileExists(atPath: d + "/peer")) {
                usleep(50_000)
            }
            // Linux pseudo-terminals refuse parity (tcsetattr EINVAL), so the loopback is 8N1.
            args += ["--rtu", d + "/peer", "--baud", "19200", "--parity", "N"]
            clientDevice = d + "/client"
            port = nil
        } else {
            let p = fixedPort ?? freePort()
            args += ["--tcp", "\(p)"]
            port = p
            clientDevice = nil
        }
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = args
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = input
        try process.run()
        // The first stdout line describes what it serves; wait for it at most 15 s.
        let got = DispatchSemaphore(value: 0)
        let box = LineBox()
        let handle = out.fileHandleForReading
        DispatchQueue.global().async {
            while !box.line.contains(UInt8(ascii: "\n")) {
                let d = handle.availableData
                if d.isEmpty { break }
                box.line.append(d)
            }
            got.signal()
        }
        guard got.wait(timeout: .now() + 15) == .success, box.line.contains(UInt8(ascii: "\n")) else {
            kill(process.processIdentifier, SIGKILL)
            socat?.terminate()
            throw ClientError.io("the Modbus peer did not start (\(args.joined(separator: " ")))")
        }
        info = (try? JSONSerialization.jsonObject(with: box.line.prefix { $0 != UInt8(ascii: "\n") }) as? [String: Any]) ?? [:]
        // Wait until it listens.
        if let port {
            for _ in 0..<100 {
                if (try? ModbusConnection.tcp(host: "127.0.0.1", port: port)) != nil { break }
                usleep(50_000)
            }
        } else {
            usleep(500_000)
        }
    }

    var transport: ModbusTransport {
        if let port { return .tcp(host: "127.0.0.1", port: port) }
        return .rtu(device: clientDevice!, baud: 19200, parity: "N", dataBits: 8, stopBits: 1, rs485: false)
    }

    /// Sends the plant mode a command ("freeze" stops the transmitter's image, "thaw").
    func send(_ command: String) { input.fileHandleForWriting.write(Data((command + "\n").utf8)) }

    func stop() {
        // pymodbus' server traps SIGTERM for a graceful stop that can hang: a test
        // fixture is simply killed.
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        if let s = socat, s.isRunning { kill(s.processIdentifier, SIGKILL); s.waitUntilExit() }
    }
}

@Suite("Modbus against an independent peer (pymodbus)", .serialized)
struct ModbusTests {
    @Test("read planning batches signals into the fewest reads")
    func planning() {
        let c = RegisterCodec(type: .f32)
        let s = [ModbusSignal(id: "a", unit: 1, table: .input, address: 0, codec: c),
                 ModbusSignal(id: "b", unit: 1, table: .input, address: 2, codec: RegisterCodec(type: .i16)),
                 ModbusSignal(id: "c", unit: 1, table: .input, address: 8, codec: c),     // gap 5: same read
                 ModbusSignal(id: "d", unit: 1, table: .input, address: 40, codec: c),    // far: new read
                 ModbusSignal(id: "e", unit: 2, table: .input, address: 0, codec: c),     // other unit
                 ModbusSignal(id: "f", unit: 1, table: .holding, address: 0, codec: c)]   // other table
        let blocks = planReads(s)
        #expect(blocks.count == 4)
        #expect(blocks.contains(ReadBlock(unit: 1, table: .input, start: 0, count: 10)))
        #expect(blocks.contains(ReadBlock(unit: 1, table: .input, start: 40, count: 2)))
    }

    @Test("TCP: every data type and word order, coils, writes, exceptions, timeouts")
    func tcpConformance() throws { try conformance(rtu: false) }

    @Test("RTU over a socat serial pair (19200 8N1): the same")
    func rtuConformance() throws { try conformance(rtu: true) }

    func conformance(rtu: Bool) throws {
        let peer = try ModbusPeer(mode: "registers", rtu: rtu)
        defer { peer.stop() }
        let conn: ModbusConnection
        switch peer.transport {
        case .tcp(let h, let p): conn = try ModbusConnection.tcp(host: h, port: p, unit: 1, timeout: 0.5)
        case .rtu(let d, let b, let p, let db, let sb, _): conn = try ModbusConnection.rtu(device: d, baud: b, parity: p, dataBits: db, stopBits: sb, unit: 1, timeout: 0.5)
        }
        let layout = try #require(peer.info["layout"] as? [[String: Any]])
        #expect(layout.count == 14) // u16, i16, and every word order of u32, i32, f32
        for e in layout {
            let type = RegisterType(rawValue: e["type"] as! String)!
            let order = WordOrder(rawValue: e["order"] as! String)!
            let address = e["address"] as! Int
            let expected = (e["value"] as! NSNumber).doubleValue
            for table in [ModbusTable.holding, .input] {
                let words = try conn.read(unit: 1, table: table, address: address, count: type.count)
                let v = RegisterCodec(type: type, order: order).decode(words[...])
                #expect(abs(v - expected) <= (type == .f32 ? 1e-3 : 0), "\(type) \(order) \(table) at \(address): \(v)")
            }
        }
        let coils = try conn.read(unit: 1, table: .coil, address: 0, count: 16)
        #expect(coils == (0..<16).map { $0 % 3 == 0 ? 1 : 0 })
        // A write round-trips through the peer.
        try conn.writeRegisters(unit: 1, address: 150, values: RegisterCodec(type: .f32, order: .cdab).encode(-42.5))
        #expect(RegisterCodec(type: .f32, order: .cdab).decode(try conn.read(unit: 1, table: .holding, address: 150, count: 2)[...]) == -42.5)
        // An exception response names the function and the register address.
        do { _ = try conn.read(unit: 1, table: .holding, address: 1000, count: 2); Issue.record("read past the map succeeded") }
        catch {
            #expect(error.function == "read holding registers (0x03)")
            #expect(error.address == 1000)
            #expect(error.description.contains("at register 1000"))
            #expect(error.reason.lowercased().contains("illegal data address"), "\(error.reason)")
        }
        // A unit nobody answers for times out, and the error says which unit.
        do { _ = try conn.read(unit: 9, table: .input, address: 0, count: 1); Issue.record("unit 9 answered") }
        catch {
            #expect(error.device.hasSuffix("/unit 9"))
            #expect(error.isTimeout, "\(error)")
        }
    }



    @Test("a peer that goes away and comes back: errors are reported, the poller reconnects, the loop keeps its timing")
    func reconnect() throws {
        var peer = try ModbusPeer(mode: "plant")
        let port = peer.port!
        let d = try DaemonProcess(configEdits: [], timeScale: 1, configOverride: try hardwareConfig(transport: peer.transport))
        defer { d.cleanup(); peer.stop() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "B", value: 4, unit: "MPa"), as: SetResult.self)
        usleep(3_000_000)
        let before = try c.status()
        #expect(before.devices?.first?.connected == true)
        peer.stop()
        usleep(1_500_000)
        let during = try c.status()
        #expect(during.devices?.first?.connected == false)
        #expect(during.devices?.first?.lastError?.contains("127.0.0.1:\(port)") == true)
        #expect(during.channels[0].faults.contains { $0.code == "sensor_stale" })   // stale sample → hold
        peer = try ModbusPeer(mode: "plant", port: port)
        usleep(6_000_000) // backoff ≤ 5 s, then fresh samples
        let after = try c.status()
        #expect(after.devices?.first?.connected == true)
        #expect((after.devices?.first?.reads ?? 0) > (during.devices?.first?.reads ?? 0))
        #expect(after.loop.overruns == before.loop.overruns, "the loop missed deadlines while the device was gone")
        #expect(Double(after.loop.ticks - before.loop.ticks) > 0.9 * 7.5 * 100)
    }

    func holdOverModbus(rtu: Bool) throws {
        let peer = try ModbusPeer(mode: "plant", rtu: rtu)
        let d = try DaemonProcess(configEdits: [], timeScale: 1, configOverride: try hardwareConfig(transport: peer.transport))
        defer { d.cleanup(); peer.stop() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "B", value: 5, unit: "MPa"), as: SetResult.self)
        usleep(8_000_000) // ramp at 1 MPa/s, then settle
        let w = try d.client()
        _ = try w.call("subscribe", SubscribeParams(rateHz: 20), as: SubscribeResult.self)
        var n = 0, outside = 0
        for _ in 0..<200 { // 10 s
            guard let ch = try w.nextEvent().channels.first, let p = ch.pressureMpa else { continue }
            n += 1
            if abs(p - 5) > 0.25 { outside += 1 }
            #expect(ch.mode == "regulating")
        }
        #expect(n > 150)
        #expect(outside == 0, "\(outside) of \(n) samples outside ±5 %")
        let s = try c.status()
        #expect(s.devices?.first?.errors == 0)
        #expect(abs((s.channels[0].temperatureC ?? 0) - 25.1) < 1e-6)
        // The scripts that read pressctl's JSON (scripts/rtu-check does this by hand), on
        // this daemon's real answer.
        let json = try runProcess(binDir + "/pressctl", ["status", "--json", "--socket", d.socket])
        try ScriptJSON.check(status: json.stdout)
    }

    @Test("issue 23: a transmitter whose register image freezes is flagged sensor_frozen within 1 s (the slow check needed 5 s while the loop drove the cell +15 %)")
    func frozenTransmitter() throws {
        let peer = try ModbusPeer(mode: "plant")
        let d = try DaemonProcess(configEdits: [], timeScale: 1, configOverride: try hardwareConfig(transport: peer.transport))
        defer { d.cleanup(); peer.stop() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "B", value: 2, unit: "MPa"), as: SetResult.self)
        usleep(8_000_000) // ramp, settle, and hundreds of samples for the check to learn the transmitter
        #expect(try c.channel("B").faults.isEmpty)
        peer.send("freeze")
        let frozenAt = Date()
        var seen: Double?
        while seen == nil, Date().timeIntervalSince(frozenAt) < 8 {
            if try c.channel("B").faults.contains(where: { $0.code == "sensor_frozen" }) { seen = Date().timeIntervalSince(frozenAt) }
            else { usleep(20_000) }
        }
        // The check's 0.2 s minimum, a poll of the device (100 Hz), the status round trip.
        let s = try #require(seen, "sensor_frozen never raised within 8 s of the freeze")
        #expect(s <= 1, "sensor_frozen raised \(s) s after the freeze")
    }

    @Test("done-when: the datasheet-configured Modbus rig is held within ±5 % over TCP")
    func holdTCP() throws { try holdOverModbus(rtu: false) }

    @Test("done-when: the same rig over RTU (socat serial pair, 19200 8N1) is held within ±5 %")
    func holdRTU() throws { try holdOverModbus(rtu: true) }

}

/// The shipped Modbus TCP example, pointed at `transport`.
func hardwareConfig(transport: ModbusTransport) throws -> String {
    var text = try String(contentsOfFile: repoRoot + "/config/examples/modbus-tcp-pneumatic.toml", encoding: .utf8)
    switch transport {
    case .tcp(_, let port):
        text = text.replacingOccurrences(of: "port = 1502", with: "port = \(port)")
    case .rtu(let dev, _, _, _, _, _):
        text = text.replacingOccurrences(of: """
        type = "modbus-tcp"
        host = "127.0.0.1"
        port = 1502
        """, with: """
        type = "modbus-rtu"
        device = "\(dev)"
        baud = 19200
        parity = "N"
        rs485 = false
        """)
        text = text.replacingOccurrences(of: "poll_hz = 100", with: "poll_hz = 40")
    }
    return text
}

final class LineBox: @unchecked Sendable { var line = Data() }

/// Issue 17: labs correlate pressure with voltage in the cycler's own data file, so
/// pressd copies each channel's pressure (and setpoint) to a register the cycler reads.
/// Checked by reading the peer's registers with pymodbus, not with pressd's driver.
@Suite("Modbus: pressure mirrored to a cycler's register", .serialized)
struct RegisterMirrorTests {
    /// Holding registers `address`… of `unit` on the peer, read by an independent client.
    func peerRegisters(port: Int, unit: Int, address: Int, count: Int) throws -> [Int] {
        let script = """
        from pymodbus.client import ModbusTcpClient
        c = ModbusTcpClient("127.0.0.1", port=\(port)); c.connect()
        print(" ".join(map(str, c.read_holding_registers(\(address), \(count), slave=\(unit)).registers)))
        """
        let r = try runProcess(ModbusPeer.python, ["-c", script])
        return r.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
    }

    @Test("pressure and setpoint reach holding registers 5 and 6 of the output module at 10 Hz, scaled; the setpoint reads 0 once released")
    func mirrors() throws {
        let peer = try ModbusPeer(mode: "plant")
        let port = try #require(peer.port)
        var config = try hardwareConfig(transport: peer.transport)
        config += """

        [[channels.B.mirror]]
        quantity = "pressure_mpa"
        device = "gateway"
        unit = 2
        address = 5
        scale = 0.001            # MPa per count
        rate_hz = 10

        [[channels.B.mirror]]
        quantity = "setpoint_mpa"
        device = "gateway"
        unit = 2
        address = 6
        scale = 0.001

        """
        let d = try DaemonProcess(configEdits: [], timeScale: 1, configOverride: config)
        defer { d.cleanup(); peer.stop() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "B", value: 4, unit: "MPa"), as: SetResult.self)
        usleep(7_000_000)
        var worst = 0.0
        for _ in 0..<5 {
            let p = try #require(try c.status().channels[0].pressureMpa)
            let regs = try peerRegisters(port: port, unit: 2, address: 5, count: 2)
            try #require(regs.count == 2, "read \(regs)")
            worst = max(worst, abs(Double(regs[0]) * 0.001 - p))
            #expect(regs[1] == 4000, "setpoint register \(regs[1]) for 4 MPa")
            usleep(300_000)
        }
        // 0.3 N noise and 0.1 s between writes: within 0.05 MPa of the pressure read.
        #expect(worst < 0.05, "mirrored pressure differs by up to \(worst) MPa")
        _ = try c.call("release", ChannelParams(channel: "B"), as: ModeResult.self)
        usleep(1_000_000)
        let after = try peerRegisters(port: port, unit: 2, address: 5, count: 2)
        #expect(after.count == 2 && after[1] == 0, "setpoint register after release: \(after)")
        #expect(try c.status().devices?.first?.errors == 0)
    }

    @Test("a mirror on an input register, or faster than the loop, is refused with its key and line")
    func configErrors() throws {
        let base = try hardwareConfig(transport: .tcp(host: "127.0.0.1", port: 1502)) + "\n[[channels.B.mirror]]\nquantity = \"pressure_mpa\"\ndevice = \"gateway\"\naddress = 5\n"
        let text = base + "table = \"input\"\n"
        do { _ = try DaemonConfig.parse(text, file: "m.toml"); Issue.record("an input-register mirror was accepted") }
        catch { #expect(error.key == "channels.B.mirror[0].table" && error.line != nil, "\(error)") }
        let fast = base + "rate_hz = 500\n"
        do { _ = try DaemonConfig.parse(fast, file: "m.toml"); Issue.record("a 500 Hz mirror was accepted") }
        catch { #expect(error.key == "channels.B.mirror[0].rate_hz", "\(error)") }
    }
}
