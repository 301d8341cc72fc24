import Foundation
import Testing
import PressProtocol
import PressLog

/// A pressd child process with its own socket, state directory and config.
final class DaemonProcess: @unchecked Sendable {
    let dir: String
    let socket: String
    let configPath: String
    let process = Process()
    let stderr = Pipe()

    init(dir: String? = nil, configEdits: [(String, String)] = [], timeScale: Double = 5, env: [String: String] = [:],
         launcher: [String]? = nil, configOverride: String? = nil) throws {
        self.dir = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("pressd-u-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: self.dir, withIntermediateDirectories: true)
        socket = self.dir + "/p.sock"
        configPath = self.dir + "/p.toml"
        var text = try configOverride ?? defaultConfigText()
        for (a, b) in configEdits { text = text.replacingOccurrences(of: a, with: b) }
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        let args = ["--config", configPath, "--socket", socket, "--state-dir", self.dir + "/state", "--time-scale", "\(timeScale)"]
        if let launcher {
            process.executableURL = URL(fileURLWithPath: launcher[0])
            process.arguments = Array(launcher.dropFirst()) + [binDir + "/pressd"] + args
        } else {
            process.executableURL = URL(fileURLWithPath: binDir + "/pressd")
            process.arguments = args
        }
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }.filter { $0.key != "PRESSD_SOCKET" }
        process.standardError = stderr
        try process.run()
    }

    func client(timeout: Double = 10) throws -> ControlClient {
        let end = Date().addingTimeInterval(timeout)
        while true {
            if let c = try? ControlClient(path: socket) { return c }
            if Date() > end { throw ClientError.notRunning(path: socket, reason: "timed out") }
            usleep(50_000)
        }
    }

    func kill9() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    var log: String { String(decoding: stderr.fileHandleForReading.availableData, as: UTF8.self) }

    func cleanup() { stop(); try? FileManager.default.removeItem(atPath: dir) }
}

/// A datagram socket standing in for systemd's notification socket.
final class NotifySocket: @unchecked Sendable {
    let path: String
    let fd: Int32
    init(dir: String) {
        path = dir + "/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let b = Array(path.utf8); raw.copyBytes(from: b); raw[b.count] = 0
        }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }

    /// Messages received within `seconds`, each with its arrival time.
    func collect(for seconds: Double) -> [(Date, String)] {
        var out: [(Date, String)] = []
        let end = Date().addingTimeInterval(seconds)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { out.append((Date(), String(decoding: buf[..<n], as: UTF8.self))) }
        }
        return out
    }
}

@Suite("Unattended operation: restart, systemd, metrics, reload", .serialized)
struct UnattendedTests {
    @Test("kill -9 mid-run: setpoint and program position resume without a spike, the run log is intact and lost ≤ 1 s")
    func killNineAndResume() throws {
        let first = try DaemonProcess(timeScale: 5)
        defer { first.cleanup() }
        let c = try first.client()
        _ = try c.call("set", SetParams(channel: "B", value: 5, unit: "MPa"), as: SetResult.self)
        let program = try String(contentsOfFile: repoRoot + "/config/programs/pulsed.toml", encoding: .utf8)
        _ = try c.call("program_start", ProgramStartParams(channel: "A", program: program, source: "pulsed.toml"), as: ProgramResult.self)
        usleep(6_000_000) // 30 s of plant time: A is in the program's hold or square step
        let before = try c.status()
        let loopTimeAtKill = before.channels[0].timeS
        let progBefore = try c.call("program_status", OptionalChannelParams(channel: "A"), as: [ProgramResult].self)[0].program
        first.kill9()

        let second = try DaemonProcess(dir: first.dir, timeScale: 5)
        defer { second.stop() }
        let c2 = try second.client()
        let watcher = try second.client()
        _ = try watcher.call("subscribe", SubscribeParams(rateHz: 50), as: SubscribeResult.self)
        var worst: [String: Double] = [:]
        for _ in 0..<100 { // 2 s wall, 10 s of plant time
            let e = try watcher.nextEvent()
            for ch in e.channels {
                guard let sp = ch.setpointMpa, let p = ch.pressureMpa else { continue }
                worst[ch.name] = max(worst[ch.name] ?? 0, abs(p - sp) / sp)
                #expect(ch.mode == "regulating" || ch.mode == "holding", "\(ch.name) \(ch.mode)")
            }
        }
        let after = try c2.status()
        for ch in before.channels {
            let a = after.channels.first { $0.name == ch.name }!
            #expect(a.mode == "regulating")
            #expect(a.setpointMpa != nil)
        }
        #expect(after.channels.first { $0.name == "B" }?.setpointMpa == 5)
        #expect((worst["A"] ?? 1) < 0.05, "A worst deviation after restart \(worst["A"] ?? -1)")
        #expect((worst["B"] ?? 1) < 0.05, "B worst deviation after restart \(worst["B"] ?? -1)")
        let progAfter = try c2.call("program_status", OptionalChannelParams(channel: "A"), as: [ProgramResult].self)[0].program
        #expect(progAfter?.name == progBefore?.name)
        #expect(progAfter.map { $0.step >= progBefore!.step } == true)
        #expect(progAfter?.state == "running")

        second.stop()
        let log = try RunLog(path: first.dir + "/state/runlog.sqlite")
        #expect(try log.integrityCheck() == "ok")
        // Log timestamps run at plant speed (×5): the last sample before the kill is
        // within 1 s of wall time of the kill, i.e. ≤ 5 s of plant time at ×5 + a period.
        // Loss: the first run's last logged sample against the loop time at the kill.
        // Sample times are epoch + loop time, and the first run's "started" event is
        // written at its epoch. Allowed: one flush interval (0.5 s wall = 2.5 s of plant
        // time at ×5) plus one sample period (1 s) plus the status round trip.
        let starts = try log.events(since: 0, until: .infinity).filter { $0.kind == "daemon" && $0.detail.contains("started") }
        #expect(starts.count == 2)
        let epoch1 = starts[0].time
        let firstRun = try log.samples(since: 0, until: starts[1].time)
        let lastLoopTime = try #require(firstRun.last).time - epoch1
        let lost = loopTimeAtKill - lastLoopTime
        #expect(lost < 0.5 * 5 + 1 + 0.5, "lost \(lost) s of plant time (\(lost / 5) s of wall time)")
        let requests = try log.events(since: 0, until: .infinity).filter { $0.kind == "request" }
        #expect(requests.contains { $0.uid == Int(getuid()) && $0.pid != nil && $0.detail.contains("\"set\"") })
    }

    @Test("READY=1 and STATUS= arrive on NOTIFY_SOCKET; the watchdog is fed only while the loop ticks")
    func notifyAndWatchdog() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-n-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let notify = NotifySocket(dir: dir)
        let d = try DaemonProcess(dir: dir, timeScale: 1, env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])
        defer { d.cleanup() }
        let early = notify.collect(for: 3)
        #expect(early.contains { $0.1.contains("READY=1") })
        #expect(early.contains { $0.1.contains("STATUS=A released") })
        #expect(early.filter { $0.1.contains("WATCHDOG=1") }.count >= 5)

        // A hung sensor read stalls the loop for 2.5 s: the watchdog must go quiet.
        let c = try d.client()
        _ = try c.call("sim_inject", SimInjectParams(channel: "A", stallS: 2.5), as: OkResult.self)
        let stallStart = Date()
        let during = notify.collect(for: 3.5)
        let pings = [stallStart] + during.filter { $0.1.contains("WATCHDOG=1") }.map(\.0)
        var longestGap = 0.0
        for (a, b) in zip(pings, pings.dropFirst()) { longestGap = max(longestGap, b.timeIntervalSince(a)) }
        #expect(longestGap > 1.5, "watchdog gaps: \(longestGap); \(during.map { "\($0.0.timeIntervalSince1970) \($0.1)" })")
        #expect(notify.collect(for: 1).contains { $0.1.contains("WATCHDOG=1") }) // and resumes
    }

    @Test("socket activation: pressd adopts the socket systemd-socket-activate passes")
    func socketActivation() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate") else {
            Issue.record("systemd-socket-activate missing: install the 'systemd' package")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-sa-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let sock = dir + "/activated.sock"
        let d = try DaemonProcess(dir: dir, timeScale: 1, launcher: ["/usr/bin/systemd-socket-activate", "-l", sock, "--fdname=control"])
        defer { d.cleanup() }
        // Connecting makes systemd-socket-activate start pressd, which adopts the socket.
        var client: ControlClient?
        let end = Date().addingTimeInterval(15)
        while client == nil && Date() < end {
            client = try? ControlClient(path: sock, timeout: 10)
            if client == nil { usleep(100_000) }
        }
        let c = try #require(client)
        #expect(c.hello?.channels == ["A", "B"])
        #expect(try c.status().channels.count == 2)
        usleep(300_000)
        #expect(d.log.contains("adopted from systemd"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.sock")) // it did not bind its own
    }

    @Test("Prometheus metrics are served on loopback and parse")
    func metrics() throws {
        let port = freePort()
        let d = try DaemonProcess(configEdits: [("log_level = \"info\"", "log_level = \"info\"\nmetrics = \"127.0.0.1:\(port)\"")], timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        usleep(2_500_000)
        let body = try httpGet(port: port, path: "/metrics")
        var values: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2, "bad line \(line)")
            values[String(parts[0])] = Double(parts[1])
        }
        let p = try #require(values["pressd_stack_pressure_pascals{channel=\"A\"}"])
        #expect(abs(p - 5e6) < 0.25e6)
        #expect(values["pressd_setpoint_pascals{channel=\"A\"}"] == 5e6)
        #expect(values["pressd_channel_mode{channel=\"A\",mode=\"regulating\"}"] == 1)
        #expect((values["pressd_control_loop_ticks_total"] ?? 0) > 100)
        #expect(values["pressd_fault_active{channel=\"B\",code=\"over_pressure\"}"] == 0)
        // The controller: A runs the learned strategy (confidence 0…1), B the adaptive one.
        #expect(values["pressd_autotune_running{channel=\"A\"}"] == 0)
        #expect(values["pressd_adaptive_gain_scale{channel=\"B\"}"] != nil)
        #expect((values["pressd_learned_confidence_ratio{channel=\"A\"}"] ?? -1) >= 0)
        #expect(values["pressd_learned_confidence_ratio{channel=\"B\"}"] == nil)
        let r = try #require(values["pressd_interfacial_resistance_ohm_square_metres{channel=\"A\"}"])
        #expect(r > 1e-4 && r < 1e-1, "Ω·m²: \(r)")
        #expect(try httpGet(port: port, path: "/nope").isEmpty == false)
    }

    @Test("SIGHUP reloads a valid config bumplessly and keeps the running one on an error")
    func reload() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        usleep(2_000_000)
        var text = try String(contentsOfFile: d.configPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "max_mpa = 12.0", with: "max_mpa = 11.0")
        try text.write(toFile: d.configPath, atomically: true, encoding: .utf8)
        kill(d.process.processIdentifier, SIGHUP)
        usleep(500_000)
        #expect(try c.channel("A").limits.maxMpa == 11)
        #expect(try c.channel("A").inBand)
        try (text + "\nbogus_key = 1\n").write(toFile: d.configPath, atomically: true, encoding: .utf8)
        kill(d.process.processIdentifier, SIGHUP)
        usleep(500_000)
        #expect(d.process.isRunning)
        #expect(try c.channel("A").limits.maxMpa == 11)
        let log = d.log
        #expect(log.contains("configuration reloaded"))
        #expect(log.contains("reload refused") && log.contains("bogus_key"))
    }

    @Test("pressctl log export writes CSV of the run")
    func export() throws {
        let d = try DaemonProcess(timeScale: 10)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 3, unit: "MPa"), as: SetResult.self)
        usleep(2_000_000)
        // "--until 1d" means a day ago: before --since, refused with the reason.
        let r = try run("pressctl", ["log", "export", "--since", "1h", "--until", "1d", "--socket", d.socket, "-c", "A"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("must be after since"))
        // At ×10 the plant's clock (and so the log's timestamps) runs ahead of the wall
        // clock: export up to a day ahead.
        let tomorrow = String(Int(Date().timeIntervalSince1970 + 86400))
        let all = try run("pressctl", ["log", "export", "--since", "1h", "--until", tomorrow, "--socket", d.socket, "-c", "A", "--csv"])
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("time_unix,time_iso,channel") == true)
        #expect(lines.count > 10)
        #expect(lines.dropFirst().allSatisfy { $0.contains(",A,") })
    }
}

func freePort() -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
    return Int(UInt16(bigEndian: a.sin_port))
}

/// A minimal HTTP/1.1 GET over loopback; returns the body.
func httpGet(port: Int, path: String) throws -> String {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_addr.s_addr = inet_addr("127.0.0.1"); a.sin_port = UInt16(port).bigEndian
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw ClientError.io("connect 127.0.0.1:\(port) failed") }
    let req = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    _ = req.withCString { send(s, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(s, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        data += buf[..<n]
        let text = String(decoding: data, as: UTF8.self)
        if let r = text.range(of: "\r\n\r\n"), let cl = text.range(of: "Content-Length: ") {
            let len = Int(text[cl.upperBound...].prefix { $0.isNumber }) ?? 0
            if text[r.upperBound...].utf8.count >= len { break }
        }
    }
    let text = String(decoding: data, as: UTF8.self)
    return text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
}

@Suite("pressctl report and plot", .serialized)
struct ReportTests {
    @Test("report writes an SVG and a Markdown summary from the real run log; watch --plot draws")
    func report() throws {
        let d = try DaemonProcess(timeScale: 10)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("run_set", RunSetParams(channel: "A", metadata: RunMetadataInfo(cellId: "SSB-7", preparationPressureMpa: 375)), as: RunResult.self)
        _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        usleep(4_000_000) // 40 s of plant time
        let stem = d.dir + "/rep"
        let tomorrow = String(Int(Date().timeIntervalSince1970 + 86400))
        let r = try run("pressctl", ["report", "-c", "A", "--since", "1h", "--until", tomorrow, "-o", stem, "--socket", d.socket])
        #expect(r.status == 0, "\(r.stderr)")
        let md = try String(contentsOfFile: stem + ".md", encoding: .utf8)
        let svg = try String(contentsOfFile: stem + ".svg", encoding: .utf8)
        #expect(md.contains("| cell id | SSB-7 |"))
        #expect(md.contains("One preparation pressure was recorded: 375 MPa"), "\(md)")
        #expect(md.contains("| time in band ±5 % | ") && md.contains("(100.00 % of samples) |"), "\(md)")
        #expect(svg.contains("<polyline"))
        let w = try run("pressctl", ["watch", "--plot", "-c", "A", "--count", "5", "--rate", "20", "--size", "70x16", "--socket", d.socket])
        #expect(w.status == 0)
        #expect(w.stdout.contains("●") && w.stdout.contains("A regulating"))
    }
}
