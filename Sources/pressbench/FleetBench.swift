import ArgumentParser
import Foundation
import PressProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `pressbench fleet`: N pressd processes on the simulated rig publishing to one
/// mosquitto on the loopback, as a lab machine next to twenty fixtures would run them.
/// Measures CPU (from /proc/PID/stat) and resident memory (VmRSS) per daemon and for
/// the broker, and the messages per second a subscriber to everything receives.
struct FleetBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "N daemons + one mosquitto: CPU and RSS per daemon, messages/s at the broker (docs/performance.md).")

    @Option(help: "Daemons to start.") var daemons = 20
    @Option(help: "Configuration each daemon starts from (the simulated rig); [mqtt] is appended.") var config = "config/pressd.toml"
    @Option(help: "Control loop rate of every daemon, Hz (default: the configuration's).") var loopRate: Double?
    @Option(help: "MQTT samples per channel per second.") var sampleRate = 1.0
    @Option(help: "Seconds measured, after the warm-up.") var duration = 30.0
    @Option(help: "Seconds between the last start and the measurement.") var warmup = 5.0
    @Option(help: "The pressd executable (default: next to pressbench).") var pressd: String?
    @Option(help: "The broker executable.") var mosquitto = "/usr/sbin/mosquitto"
    @Flag(help: "Start the daemons without [mqtt] (the broker still runs): the baseline cost without publishing.") var noMQTT = false
    @Flag(help: "Print JSON instead of a table.") var json = false

    struct Row: Codable {
        var name: String
        var cpuPercent: Double
        var rssMB: Double
        var overruns: UInt64?
        var ticks: UInt64?
    }

    struct Result: Codable {
        var daemons: Int
        var loopRateHz: Double
        var sampleRateHz: Double
        var durationS: Double
        var rows: [Row]
        var broker: Row
        var messagesPerSecond: Double
        var meanCPUPercent: Double
        var maxCPUPercent: Double
        var meanRSSMB: Double
    }

    func validate() throws {
        guard daemons >= 1 else { throw ValidationError("--daemons must be ≥ 1") }
        guard FileManager.default.isExecutableFile(atPath: mosquitto) else {
            throw ValidationError("\(mosquitto) not found: apt-get install mosquitto mosquitto-clients (scripts/deps)")
        }
    }

    func run() throws {
        let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let pressdPath = pressd ?? binDir + "/pressd"
        var text = try String(contentsOfFile: config, encoding: .utf8)
        if let loopRate {
            guard let r = text.range(of: #"loop_rate_hz = [0-9.]+"#, options: .regularExpression) else {
                throw ValidationError("\(config) has no daemon loop_rate_hz line to replace")
            }
            text.replaceSubrange(r, with: "loop_rate_hz = \(loopRate)")
        }
        let rate = loopRate ?? 100
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressbench-fleet-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // The broker: its own config, a free loopback port, never the system service.
        let port = freePort()
        try "listener \(port) 127.0.0.1\nallow_anonymous true\nuser \(NSUserName())\npersistence false\n"
            .write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        let broker = try spawn(mosquitto, ["-c", dir + "/mosquitto.conf"])
        var children = [broker]
        defer { for c in children.reversed() where c.isRunning { c.terminate(); c.waitUntilExit() } }
        try waitFor("the broker on port \(port)") { tcpConnects(port) }

        // A subscriber to everything, counting messages.
        let counter = LineCounter()
        let sub = Process()
        sub.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
        sub.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-t", "pressd/#", "-q", "1"]
        let pipe = Pipe()
        sub.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { h in counter.add(h.availableData) }
        try sub.run()
        children.append(sub)

        var daemonProcs: [(name: String, process: Process, socket: String)] = []
        for i in 1...daemons {
            let name = String(format: "r%02d", i)
            let d = dir + "/" + name
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            let table = "\n[mqtt]\nhost = \"127.0.0.1\"\nport = \(port)\nsite = \"bench\"\nrig = \"\(name)\"\nsample_rate_hz = \(sampleRate)\n"
            try (noMQTT ? text : text + table)
                .write(toFile: d + "/p.toml", atomically: true, encoding: .utf8)
            let p = try spawn(pressdPath, ["--config", d + "/p.toml", "--socket", d + "/p.sock", "--state-dir", d + "/state"], stderr: d + "/pressd.err")
            children.append(p)
            daemonProcs.append((name, p, d + "/p.sock"))
        }
        for d in daemonProcs {
            try waitFor("\(d.name)'s socket") { (try? ControlClient(path: d.socket)) != nil }
            let c = try ControlClient(path: d.socket)
            _ = try c.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
            _ = try c.call("set", SetParams(channel: "B", value: 3, unit: "MPa"), as: SetResult.self)
        }
        Thread.sleep(forTimeInterval: warmup)

        let pids = daemonProcs.map { $0.process.processIdentifier } + [broker.processIdentifier]
        let cpu0 = pids.map(cpuSeconds)
        let ticks0 = daemonProcs.map { (try? ControlClient(path: $0.socket).status())?.loop }
        let m0 = counter.count
        let t0 = Date()
        Thread.sleep(forTimeInterval: duration)
        let wall = Date().timeIntervalSince(t0)
        let m1 = counter.count
        let cpu1 = pids.map(cpuSeconds)
        let ticks1 = daemonProcs.map { (try? ControlClient(path: $0.socket).status())?.loop }

        var rows: [Row] = []
        for (i, d) in daemonProcs.enumerated() {
            rows.append(Row(name: d.name, cpuPercent: (cpu1[i] - cpu0[i]) / wall * 100, rssMB: rssMB(pids[i]),
                            overruns: zip2(ticks0[i]?.overruns, ticks1[i]?.overruns).map { $1 - $0 },
                            ticks: zip2(ticks0[i]?.ticks, ticks1[i]?.ticks).map { $1 - $0 }))
        }
        let b = pids.count - 1
        let brokerRow = Row(name: "mosquitto", cpuPercent: (cpu1[b] - cpu0[b]) / wall * 100, rssMB: rssMB(pids[b]))
        let result = Result(daemons: daemons, loopRateHz: rate, sampleRateHz: sampleRate, durationS: wall, rows: rows, broker: brokerRow,
                            messagesPerSecond: Double(m1 - m0) / wall,
                            meanCPUPercent: rows.map(\.cpuPercent).reduce(0, +) / Double(rows.count),
                            maxCPUPercent: rows.map(\.cpuPercent).max() ?? 0,
                            meanRSSMB: rows.map(\.rssMB).reduce(0, +) / Double(rows.count))
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(result), as: UTF8.self))
            return
        }
        print("pressbench fleet: \(daemons) pressd (simulated rig, 2 channels each, \(fmt(rate, 0)) Hz loop, MQTT samples \(fmt(sampleRate, 1)) Hz), one mosquitto\(noMQTT ? " (daemons WITHOUT [mqtt])" : ""), \(fmt(wall, 1)) s measured on \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("DAEMON     CPU %   CPU %/channel   RSS MB   TICKS   OVERRUNS")
        for r in rows {
            print(pad(r.name, 8) + lpad(fmt(r.cpuPercent, 2), 8) + lpad(fmt(r.cpuPercent / 2, 2), 16) + lpad(fmt(r.rssMB, 1), 9)
                  + lpad(r.ticks.map(String.init) ?? "?", 8) + lpad(r.overruns.map(String.init) ?? "?", 11))
        }
        print(pad("broker", 8) + lpad(fmt(brokerRow.cpuPercent, 2), 8) + lpad("", 16) + lpad(fmt(brokerRow.rssMB, 1), 9))
        print("mean per daemon: \(fmt(result.meanCPUPercent, 2)) % CPU (\(fmt(result.meanCPUPercent / 2, 2)) % per channel), max \(fmt(result.maxCPUPercent, 2)) %, \(fmt(result.meanRSSMB, 1)) MB RSS")
        print("all daemons: \(fmt(rows.map(\.cpuPercent).reduce(0, +), 1)) % of one core; broker delivered \(fmt(result.messagesPerSecond, 1)) messages/s to a subscriber to pressd/#")
    }
}

private func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? { if let a, let b { return (a, b) } else { return nil } }
private func fmt(_ v: Double, _ d: Int) -> String { String(format: "%.\(d)f", v) }
private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
private func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

/// Counts newline-terminated lines arriving on a pipe.
final class LineCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ d: Data) { let k = d.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }; lock.withLock { n += k } }
    var count: Int { lock.withLock { n } }
}

/// User + system CPU seconds of a process (/proc/PID/stat fields 14 and 15).
func cpuSeconds(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return .nan }
    let f = s[s.index(after: close)...].split(separator: " ")
    guard f.count > 13, let u = Double(f[11]), let k = Double(f[12]) else { return .nan }
    return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Resident memory of a process, MB (VmRSS).
func rssMB(_ pid: Int32) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
    return kb / 1024
}

func spawn(_ path: String, _ args: [String], stderr: String? = nil) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    if let stderr {
        FileManager.default.createFile(atPath: stderr, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
    } else {
        p.standardError = FileHandle.nullDevice
    }
    try p.run()
    return p
}

func waitFor(_ what: String, timeout: Double = 30, _ ok: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !ok() {
        guard Date() < deadline else { throw ValidationError("timed out waiting for \(what)") }
        usleep(50_000)
    }
}

func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

func tcpConnects(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}
