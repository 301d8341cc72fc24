import ArgumentParser
import Foundation
import PressProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `pressbench flood`: a hostile local observer floods the control socket — pipeliners
/// that never read their replies, subscribers that never read, slow-loris partial lines,
/// idle connections up to its per-user cap — while an operator (another uid) issues
/// `hold` and `release` every 100 ms. Measures the operator's round trips, pressd's
/// resident memory before, during and after the flood, and the control loop's ticks and
/// overruns (docs/protocol.md, "Limits"). Needs root and `setpriv` (util-linux) to run
/// the two peers as other users.
struct FloodBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "An observer floods the socket while an operator holds/releases every 100 ms: latency, memory, loop (needs root).")

    @Option(help: "Seconds of flood.") var duration = 15.0
    @Option(help: "Connections that send status requests as fast as they can and never read.") var pipeliners = 12
    @Option(help: "Connections that subscribe at 100 Hz and never read.") var subscribers = 8
    @Option(help: "Connections that send a request one byte every 0.2 s.") var loris = 4
    @Option(help: "Connections that only connect.") var idle = 8
    @Option(help: "Seconds between the operator's requests.") var interval = 0.1
    @Option(help: "daemon.client_stall_timeout_s for the run (default: the configuration's).") var stallTimeout: Double?
    @Option(help: "Configuration the daemon starts from (the simulated rig).") var config = "config/pressd.toml"
    @Option(help: "The pressd executable (default: next to pressbench).") var pressd: String?
    @Option(help: "The flooding observer's uid (and gid).") var observerUid = 65534
    @Option(help: "The operator's uid; it gets the supplementary group --operator-gid, which [access] makes operators.") var operatorUid = 65533
    @Option(help: "The operators' group id.") var operatorGid = 4242
    @Flag(help: "Print JSON instead of a table.") var json = false

    struct Result: Codable {
        var durationS: Double
        var connections: Int
        var operatorRequests: Int
        var operatorErrors: [String]
        var operatorP50Ms: Double
        var operatorP99Ms: Double
        var operatorMaxMs: Double
        var rssBaselineMB: Double
        var rssPeakMB: Double
        var rssAfterMB: Double
        /// Nil when pressd did not answer root's `status` within 30 s after the flood.
        var ticks: UInt64?
        var expectedTicks: Double
        var overruns: UInt64?
        var maxTickUs: Double?
        var flood: FloodPeer.Report
        /// Journal lines saying a connection was dropped, and the first of them.
        var droppedLogged: Int
        var droppedSample: String?
    }

    func validate() throws {
        guard geteuid() == 0 else { throw ValidationError("pressbench flood runs its peers as other users: run it as root") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw ValidationError("/usr/bin/setpriv not found (util-linux)") }
        guard duration > 0, interval > 0 else { throw ValidationError("--duration and --interval must be > 0") }
    }

    func run() throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let pressdPath = pressd ?? URL(fileURLWithPath: me).deletingLastPathComponent().path + "/pressd"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressbench-flood-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = try String(contentsOfFile: config, encoding: .utf8)
        let daemonKeys = "socket_mode = \"0666\"\n" + (stallTimeout.map { "client_stall_timeout_s = \($0)\n" } ?? "")
        guard let mode = text.range(of: #"socket_mode = "[0-7]+"\n"#, options: .regularExpression) else {
            throw ValidationError("\(config) has no socket_mode line to replace")
        }
        text.replaceSubrange(mode, with: daemonKeys)
        guard let sim = text.range(of: "[simulator]") else { throw ValidationError("\(config) has no [simulator] table") }
        text.replaceSubrange(sim, with: "[access]\nobservers = [\"*\"]\noperators = [\"@\(operatorGid)\"]\n\n[simulator]")
        try text.write(toFile: dir + "/p.toml", atomically: true, encoding: .utf8)
        let sock = dir + "/p.sock"
        let daemon = try spawn(pressdPath, ["--config", dir + "/p.toml", "--socket", sock, "--state-dir", dir + "/state"], stderr: dir + "/pressd.err")
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        try waitFor("pressd's socket") { (try? ControlClient(path: sock)) != nil }
        let root = try ControlClient(path: sock)
        _ = try root.call("set", SetParams(channel: "A", value: 5, unit: "MPa"), as: SetResult.self)
        _ = try root.call("set", SetParams(channel: "B", value: 3, unit: "MPa"), as: SetResult.self)

        let rss = RSSSampler(pid: daemon.processIdentifier)
        rss.start()
        Thread.sleep(forTimeInterval: 2)
        let baseline = rss.median(since: 0)
        let before = try root.status().loop
        let t0 = Date()
        let op = try spawnCapturing("/usr/bin/setpriv", ["--reuid=\(operatorUid)", "--regid=\(operatorUid)", "--groups=\(operatorGid)", me,
                                                         "flood-operator", "--socket", sock, "--duration", "\(duration + 2)", "--interval", "\(interval)"])
        Thread.sleep(forTimeInterval: 1)
        let floodStart = rss.elapsed
        let flood = try spawnCapturing("/usr/bin/setpriv", ["--reuid=\(observerUid)", "--regid=\(observerUid)", "--clear-groups", me, "flood-peer",
                                                            "--socket", sock, "--duration", "\(duration)", "--pipeliners", "\(pipeliners)",
                                                            "--subscribers", "\(subscribers)", "--loris", "\(loris)", "--idle", "\(idle)"])
        let floodReport: FloodPeer.Report = try flood.decode()
        let floodEnd = rss.elapsed
        let opReport: FloodOperator.Report = try op.decode()
        root.setTimeout(30) // a starved server may take long to answer even root
        let after = try? root.status().loop
        let elapsed = Date().timeIntervalSince(t0)
        // Memory after: the flood's connections are closed; give the server a few seconds.
        Thread.sleep(forTimeInterval: 5)
        let afterRSS = rss.median(since: rss.elapsed - 2)
        let peak = rss.max(from: floodStart, to: floodEnd + 1)
        rss.stop()
        daemon.terminate()
        daemon.waitUntilExit()
        let log = (try? String(contentsOfFile: dir + "/pressd.err", encoding: .utf8)) ?? ""
        let drops = log.split(separator: "\n").filter { $0.contains("dropped a client") }
        let lat = opReport.latenciesMs.sorted()
        let result = Result(durationS: duration, connections: pipeliners + subscribers + loris + idle,
                            operatorRequests: lat.count, operatorErrors: opReport.errors,
                            operatorP50Ms: percentile(lat, 50), operatorP99Ms: percentile(lat, 99), operatorMaxMs: lat.last ?? .nan,
                            rssBaselineMB: baseline, rssPeakMB: peak, rssAfterMB: afterRSS,
                            ticks: after.map { $0.ticks - before.ticks }, expectedTicks: elapsed * before.rateHz,
                            overruns: after.map { $0.overruns - before.overruns }, maxTickUs: after?.maxTickUs, flood: floodReport,
                            droppedLogged: drops.count, droppedSample: drops.first.map(String.init))
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(result), as: UTF8.self))
            return
        }
        print("pressbench flood: uid \(observerUid) floods for \(f(duration, 0)) s with \(result.connections) connections (\(pipeliners) pipelining without reading, \(subscribers) subscribers at 100 Hz not reading, \(loris) slow-loris, \(idle) idle); uid \(operatorUid) (operator) holds/releases every \(f(interval * 1000, 0)) ms; \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("operator: \(lat.count) requests, \(opReport.errors.count) errors; round trip p50 \(f(result.operatorP50Ms, 1)) ms, p99 \(f(result.operatorP99Ms, 1)) ms, max \(f(result.operatorMaxMs, 1)) ms")
        print("pressd RSS: \(f(baseline, 1)) MB before, \(f(peak, 1)) MB peak during the flood, \(f(afterRSS, 1)) MB 5 s after")
        if let ticks = result.ticks, let overruns = result.overruns, let longest = result.maxTickUs {
            print("loop: \(ticks) ticks of \(Int(result.expectedTicks)) expected, \(overruns) overruns, longest tick \(f(longest, 0)) µs")
        } else {
            print("loop: pressd did not answer status within 30 s after the flood")
        }
        print("flood: \(floodReport.connected) connected, \(floodReport.refused) refused at connect, \(f(Double(floodReport.bytesSent) / 1e6, 2)) MB sent; \(floodReport.overloaded) got 'overloaded', \(floodReport.closedByServer) closed by pressd; \(result.droppedLogged) drops in the journal")
        for e in opReport.errors.prefix(5) { print("  operator error: \(e)") }
    }
}

private func f(_ v: Double, _ d: Int) -> String { String(format: "%.\(d)f", v) }

/// A child whose standard output is captured, decoded as JSON when it exits.
struct CapturedChild {
    let process: Process
    let output: Pipe
    func decode<T: Decodable>() throws -> T {
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        do { return try JSONDecoder().decode(T.self, from: data) }
        catch { throw ValidationError("\(process.arguments?.dropFirst(4).first ?? "child") printed no report: \(String(decoding: data.prefix(300), as: UTF8.self))") }
    }
}

func spawnCapturing(_ path: String, _ args: [String]) throws -> CapturedChild {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.standardError
    try p.run()
    return CapturedChild(process: p, output: out)
}

/// Samples a process's resident memory every 100 ms on a thread of its own.
final class RSSSampler: @unchecked Sendable {
    let pid: Int32
    private let lock = NSLock()
    private var samples: [(t: Double, mb: Double)] = []
    private var running = true
    private let start0 = Date()
    init(pid: Int32) { self.pid = pid }
    var elapsed: Double { Date().timeIntervalSince(start0) }
    func start() {
        Thread { [self] in
            while lock.withLock({ running }) {
                let v = rssMB(pid)
                let t = elapsed
                lock.withLock { samples.append((t, v)) }
                usleep(100_000)
            }
        }.start()
    }
    func stop() { lock.withLock { running = false } }
    func median(since t: Double) -> Double {
        let v = lock.withLock { samples.filter { $0.t >= t }.map(\.mb) }.sorted()
        return v.isEmpty ? .nan : v[v.count / 2]
    }
    func max(from a: Double, to b: Double) -> Double {
        lock.withLock { samples.filter { $0.t >= a && $0.t <= b }.map(\.mb) }.max() ?? .nan
    }
}

/// `pressbench flood-peer` (run by `flood` as the observer): opens the flooding
/// connections, floods for `duration`, then reads what each pipeliner was sent and
/// prints a JSON report.
struct FloodPeer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flood-peer", abstract: "The flooding observer of 'pressbench flood'.",
                                                    shouldDisplay: false)
    @Option var socket: String
    @Option var duration = 15.0
    @Option var pipeliners = 12
    @Option var subscribers = 8
    @Option var loris = 4
    @Option var idle = 8

    struct Report: Codable {
        var connected = 0
        var refused = 0
        var bytesSent = 0
        /// Pipeliners that received the `overloaded` error line.
        var overloaded = 0
        /// Pipeliners whose connection pressd closed.
        var closedByServer = 0
    }

    enum Kind { case pipeline, subscribe, loris, idle }

    func run() throws {
        let kinds = Array(repeating: Kind.pipeline, count: pipeliners) + Array(repeating: .subscribe, count: subscribers)
            + Array(repeating: .loris, count: loris) + Array(repeating: .idle, count: idle)
        let report = Locked(Report())
        let end = Date().addingTimeInterval(duration)
        let group = DispatchGroup()
        for kind in kinds {
            guard let fd = try? ControlClient.connectSocket(socket) else { report.withLock { $0.refused += 1 }; continue }
            report.withLock { $0.connected += 1 }
            group.enter()
            Thread {
                defer { close(fd); group.leave() }
                let r = Self.drive(fd, kind, until: end)
                report.withLock { $0.bytesSent += r.sent; $0.overloaded += r.overloaded ? 1 : 0; $0.closedByServer += r.closed ? 1 : 0 }
            }.start()
        }
        group.wait()
        let e = JSONEncoder()
        print(String(decoding: try e.encode(report.withLock { $0 }), as: UTF8.self))
    }

    /// One connection's part: (bytes sent, saw `overloaded`, closed by the server).
    static func drive(_ fd: Int32, _ kind: Kind, until end: Date) -> (sent: Int, overloaded: Bool, closed: Bool) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var sent = 0
        func push(_ bytes: [UInt8]) -> Bool {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n }
            return n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK
        }
        switch kind {
        case .pipeline:
            let burst = Array(String(repeating: "{\"method\":\"status\"}\n", count: 200).utf8)
            while Date() < end { if !push(burst) { break }; usleep(1000) }
        case .subscribe:
            _ = push(Array("{\"id\":1,\"method\":\"subscribe\",\"params\":{\"rate_hz\":100}}\n".utf8))
            while Date() < end { usleep(50_000) }
        case .loris:
            let bytes = Array("{\"id\":1,\"method\":\"status\"".utf8)
            var i = 0
            while Date() < end { if !push([bytes[i % bytes.count]]) { break }; i += 1; usleep(200_000) }
        case .idle:
            while Date() < end { usleep(50_000) }
        }
        guard kind == .pipeline else { return (sent, false, false) }
        // What pressd sent: replies, then (when it dropped us) `overloaded` and the end.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var tail = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var closed = false
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { closed = true; break }
            // A socket closed with our unread requests still in it ends in a reset.
            if n < 0 { closed = errno == ECONNRESET; break }
            tail = Array((tail + buf[..<n]).suffix(4096))
        }
        let overloaded = String(decoding: tail, as: UTF8.self).contains("\"code\":\"overloaded\"")
        return (sent, overloaded, closed)
    }
}

/// `pressbench flood-operator` (run by `flood` as the operator): `hold` and `release`
/// on channel A in turn every `interval`, each timed; prints a JSON report.
struct FloodOperator: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flood-operator", abstract: "The operator of 'pressbench flood'.",
                                                    shouldDisplay: false)
    @Option var socket: String
    @Option var duration = 17.0
    @Option var interval = 0.1

    struct Report: Codable {
        var latenciesMs: [Double] = []
        var errors: [String] = []
    }

    func run() throws {
        var r = Report()
        var client: ControlClient?
        let start = Date()
        var k = 0
        while Date().timeIntervalSince(start) < duration {
            let t = DispatchTime.now().uptimeNanoseconds
            do {
                let c = try client ?? ControlClient(path: socket, timeout: 5)
                client = c
                _ = try c.call(k % 2 == 0 ? "hold" : "release", ChannelParams(channel: "A"), as: ModeResult.self)
                r.latenciesMs.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
            } catch {
                r.errors.append("\(error)")
                client = nil
            }
            k += 1
            let next = start.addingTimeInterval(Double(k) * interval).timeIntervalSinceNow
            if next > 0 { usleep(useconds_t(next * 1e6)) }
        }
        print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
    }
}

/// A value behind a lock (pressbench's threads).
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
