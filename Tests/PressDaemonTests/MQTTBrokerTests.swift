import Foundation
import Testing
import PressProtocol
@testable import PressDaemon
#if canImport(Glibc)
import Glibc
#endif

// Tests against Debian's real broker (`mosquitto`, `mosquitto-clients`; scripts/deps
// installs them). Each test starts its own mosquitto on 127.0.0.1 and a free port, with
// its own config and persistence directory, never the system service on 1883.


/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func tcpAccepts(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}

/// Starts `p` with no signals blocked. Children inherit the spawning thread's signal
/// mask, and the test runner's worker threads block them all: mosquitto would then
/// never see SIGTERM (it waits in epoll with the inherited mask), nor mosquitto_sub
/// its -W alarm.
func runUnblocked(_ p: Process) throws {
    var empty = sigset_t(), old = sigset_t()
    sigemptyset(&empty)
    pthread_sigmask(SIG_SETMASK, &empty, &old)
    defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
    try p.run()
}

/// A mosquitto broker of the test's own on the loopback. Persistence on, so a
/// restarted broker still holds the test subscriber's session and retained messages.
final class TestBroker {
    let dir: String
    let port: Int
    private(set) var process: Process?

    init(dir: String, extraConfig: String = "") throws {
        self.dir = dir
        port = freePort()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        listener \(port) 127.0.0.1
        allow_anonymous true
        user \(NSUserName())
        persistence true
        persistence_location \(dir)/
        autosave_interval 1
        max_queued_messages 100000
        log_dest file \(dir)/mosquitto.log
        log_type error
        log_type warning
        log_type notice
        \(extraConfig)
        """.write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
    }

    static var installed: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/mosquitto") && FileManager.default.isExecutableFile(atPath: "/usr/bin/mosquitto_sub")
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        p.arguments = ["-c", dir + "/mosquitto.conf"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try runUnblocked(p)
        process = p
        let deadline = Date().addingTimeInterval(15)
        while !tcpAccepts(port) {
            guard Date() < deadline, p.isRunning else { throw BrokerError.notListening(port, (try? String(contentsOfFile: dir + "/mosquitto.log", encoding: .utf8)) ?? "") }
            usleep(50_000)
        }
    }

    /// SIGKILL, as a crash or power cut would: what it had saved (every second) is what
    /// the restarted broker knows.
    func kill9() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM (the broker saves its persistence file) and wait.
    func stop() {
        guard let p = process, p.isRunning else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
    }

    enum BrokerError: Error { case notListening(Int, String) }
}

/// `mosquitto_sub` writing every message as one line `RETAIN QOS TOPIC PAYLOAD` to a
/// file (line-buffered through stdbuf). With `session`, a persistent session (clean
/// session off, fixed client id): the broker queues QoS 1 messages while it is away.
final class TestSubscriber {
    let file: String
    let process: Process

    init(port: Int, topic: String, file: String, session: String? = nil, extra: [String] = []) throws {
        self.file = file
        FileManager.default.createFile(atPath: file, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/stdbuf")
        var args = ["-oL", "/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-q", "1", "-F", "%r %q %t %p"]
        if let session { args += ["-c", "-i", session] }
        p.arguments = args + extra
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        p.standardError = FileHandle.nullDevice
        try runUnblocked(p)
        process = p
    }

    var lines: [Received] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap(Received.init)
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    struct Received {
        var retained: Bool
        var qos: Int
        var topic: String
        var json: [String: Any]
        init?(_ line: Substring) {
            let parts = line.split(separator: " ", maxSplits: 3)
            guard parts.count == 4, let q = Int(parts[1]),
                  let j = try? JSONSerialization.jsonObject(with: Data(parts[3].utf8)) as? [String: Any] else { return nil }
            retained = parts[0] == "1"; qos = q; topic = String(parts[2]); json = j
        }
    }
}

/// The retained messages on `topic`, up to `count`, as a late subscriber gets them
/// (a short-lived `mosquitto_sub --retained-only`, at most 10 s).
func retainedMessages(port: Int, topic: String, count: Int, extra: [String] = []) throws -> [TestSubscriber.Received] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
    p.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-t", topic, "-q", "1", "-F", "%r %q %t %p", "--retained-only", "-C", "\(count)", "-W", "10"] + extra
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try runUnblocked(p)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap(TestSubscriber.Received.init)
}

/// A pressd process on the simulated rig with a temporary config and state directory.
final class PressdProcess {
    let dir: String
    let socket: String
    let process = Process()
    let stderrFile: String

    init(dir: String, configText: String, timeScale: Double = 1) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socket = dir + "/p.sock"
        stderrFile = dir + "/pressd.err"
        FileManager.default.createFile(atPath: stderrFile, contents: nil)
        try configText.write(toFile: dir + "/p.toml", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: binDir + "/pressd")
        process.arguments = ["--config", dir + "/p.toml", "--socket", socket, "--state-dir", dir + "/state", "--time-scale", "\(timeScale)"]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrFile))
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while (try? ControlClient(path: socket)) == nil {
            guard Date() < deadline, process.isRunning else { throw DaemonError.noSocket(log) }
            usleep(50_000)
        }
    }

    var env: [String: String] { ["PRESSD_SOCKET": socket] }
    var log: String { (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? "" }

    func ctl(_ args: [String]) throws -> Run { try run("pressctl", args, env: env) }

    /// The loop's tick and overrun counters from `status`.
    func loopCounters() throws -> (ticks: Int, overruns: Int) {
        let r = try ctl(["status", "--json"])
        let ok = try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["ok"] as? [String: Any], "\(r.stdout) \(r.stderr)")
        let loop = try #require(ok["loop"] as? [String: Any], "\(ok.keys)")
        return (loop["ticks"] as? Int ?? -1, loop["overruns"] as? Int ?? -1)
    }

    /// Every event in the run log (read from the file, so it works after a SIGKILL).
    func runLogEvents() throws -> [[String: Any]] {
        let r = try run("pressctl", ["log", "events", "--json", "--since", "1d", "--state-dir", dir + "/state"])
        let ok = try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["ok"] as? [String: Any], "\(r.stdout) \(r.stderr)")
        return try #require(ok["events"] as? [[String: Any]])
    }

    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func terminate() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    enum DaemonError: Error { case noSocket(String) }
}

/// The `[mqtt]` table for a test broker.
func mqttTable(port: Int, site: String = "test", rig: String, sampleRate: Double = 5, extra: String = "") -> String {
    "\n[mqtt]\nhost = \"127.0.0.1\"\nport = \(port)\nsite = \"\(site)\"\nrig = \"\(rig)\"\nsample_rate_hz = \(sampleRate)\nstatus_interval_s = 5\nreconnect_min_s = 0.2\nreconnect_max_s = 1\n" + extra
}

/// Checks the events received against the run log: every run-log event arrived (at
/// QoS 1, on its channel's topic) and, deduplicated by `seq`, exactly once; no `seq`
/// names two different events. Returns (distinct seqs received, duplicate deliveries).
@discardableResult
func expectEventsMatch(runLog: [[String: Any]], received: [TestSubscriber.Received], rigTopic: String,
                       sourceLocation: SourceLocation = #_sourceLocation) -> (distinct: Int, duplicates: Int) {
    var bySeq: [Int: [String: Any]] = [:]
    var duplicates = 0
    for r in received where r.topic.hasSuffix("/events") {
        #expect(r.qos == 1, "event delivered at QoS \(r.qos)", sourceLocation: sourceLocation)
        guard let seq = r.json["seq"] as? Int else { continue } // a `missed` notice
        let ch = r.json["channel"] as? String ?? "?"
        #expect(r.topic == (ch.isEmpty ? "\(rigTopic)/events" : "\(rigTopic)/\(ch)/events"), sourceLocation: sourceLocation)
        if let old = bySeq[seq] {
            duplicates += 1
            #expect(old["detail"] as? String == r.json["detail"] as? String, "seq \(seq) names two events", sourceLocation: sourceLocation)
        }
        bySeq[seq] = r.json
    }
    // Match each run-log event to one received event (channel, kind, detail, time).
    func key(_ e: [String: Any]) -> String { "\(e["channel"] as? String ?? "")|\(e["kind"] as? String ?? "")|\(e["detail"] as? String ?? "")" }
    var pool: [String: [Double]] = [:]
    for e in bySeq.values { pool[key(e), default: []].append(e["time_unix"] as? Double ?? 0) }
    var missing: [String] = []
    for e in runLog {
        let k = key(e), t = e["time_unix"] as? Double ?? 0
        if let i = pool[k]?.firstIndex(where: { abs($0 - t) < 0.01 }) { pool[k]!.remove(at: i) } else { missing.append("\(t) \(k)") }
    }
    #expect(missing.isEmpty, "\(missing.count) of \(runLog.count) run-log events never arrived: \(missing.prefix(10))", sourceLocation: sourceLocation)
    #expect(bySeq.count >= runLog.count, sourceLocation: sourceLocation)
    return (bySeq.count, duplicates)
}

@Suite("MQTT against a real mosquitto", .serialized, .enabled(if: TestBroker.installed, "needs mosquitto and mosquitto-clients (scripts/deps)"))
struct MQTTBrokerTests {
    @Test("retained status for a late subscriber, samples at the configured rate, every run-log event exactly once across a broker restart, the loop unaffected, the last will on SIGKILL")
    func brokerRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-mqtt-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try TestBroker(dir: dir + "/broker")
        try broker.start()
        defer { broker.stop() }
        let rigTopic = "pressd/test/r1"
        // A persistent session, made before pressd starts, so it sees every event.
        let sub = try TestSubscriber(port: broker.port, topic: rigTopic + "/#", file: dir + "/sub.txt", session: "test-all")
        defer { sub.stop() }
        usleep(500_000)

        let sampleRate = 5.0
        let daemon = try PressdProcess(dir: dir + "/d", configText: try defaultConfigText() + mqttTable(port: broker.port, rig: "r1", sampleRate: sampleRate))
        defer { daemon.kill9() }
        #expect(try daemon.ctl(["set", "5MPa", "-c", "A"]).status == 0)
        #expect(try daemon.ctl(["set", "3MPa", "-c", "B"]).status == 0)
        sleep(seconds: 6)

        // A late subscriber gets the retained status of every channel and the rig's state.
        let retained = try retainedMessages(port: broker.port, topic: rigTopic + "/+/status", count: 2)
        #expect(Set(retained.map(\.topic)) == [rigTopic + "/A/status", rigTopic + "/B/status"], "\(retained.map(\.topic))")
        #expect(retained.allSatisfy { $0.retained })
        #expect(retained.first { $0.topic.hasSuffix("/A/status") }?.json["setpoint_mpa"] as? Double == 5)
        let state = try retainedMessages(port: broker.port, topic: rigTopic + "/state", count: 1)
        #expect(state.first?.json["state"] as? String == "online" && state.first?.retained == true, "\(state.map(\.json))")

        // Samples at the configured rate (±20 %), from their own timestamps, over ≥ 4 s.
        let samplesA = sub.lines.filter { $0.topic == rigTopic + "/A/samples" }.compactMap { $0.json["time_unix"] as? Double }
        #expect(samplesA.count >= 15, "\(samplesA.count) samples")
        if samplesA.count >= 15, let first = samplesA.first, let last = samplesA.last, last > first {
            let rate = Double(samplesA.count - 1) / (last - first)
            #expect(abs(rate - sampleRate) <= 0.2 * sampleRate, "samples at \(rate) Hz, configured \(sampleRate) Hz")
        }
        #expect(sub.lines.filter { $0.topic.hasSuffix("/samples") }.allSatisfy { !$0.retained })

        // Broker restart: kill it (SIGKILL), make events while it is away (1–8 s), start
        // it again on the same port.
        let before = try daemon.loopCounters()
        let t0 = Date()
        broker.kill9()
        let outage = Double.random(in: 1...8)
        let setpoints = ["4MPa", "6MPa", "5.5MPa"]
        for (i, sp) in setpoints.enumerated() {
            #expect(try daemon.ctl(["set", sp, "-c", i % 2 == 0 ? "A" : "B"]).status == 0)
            usleep(useconds_t(outage / Double(setpoints.count + 1) * 1e6))
        }
        #expect(try daemon.ctl(["sim", "-c", "A", "--thickness-step-um", "3"]).status == 0)
        let remaining = outage - Date().timeIntervalSince(t0)
        if remaining > 0 { sleep(seconds: remaining) }
        let during = try daemon.loopCounters()
        let elapsed = Date().timeIntervalSince(t0)
        try broker.start()
        // The loop kept its ticks while the broker was away (100 Hz; ≥ 80 % of them,
        // generous for a loaded 2-core machine) and overran no more than a handful.
        let ticks = during.ticks - before.ticks
        #expect(Double(ticks) >= 0.8 * 100 * (elapsed - 0.5), "\(ticks) ticks in \(elapsed) s")
        #expect(during.overruns - before.overruns <= 10, "overruns \(before.overruns) → \(during.overruns)")

        // After the reconnect: every event the run log has arrives, once per seq.
        #expect(try daemon.ctl(["set", "5MPa", "-c", "A"]).status == 0) // and one after
        var log: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(30)
        var matched = false
        repeat {
            sleep(seconds: 1)
            log = try daemon.runLogEvents()
            let got = Set(sub.lines.compactMap { $0.json["seq"] as? Int }).count
            matched = got >= log.count
        } while !matched && Date() < deadline
        #expect(log.count >= 8, "\(log.count) run-log events")
        #expect(log.contains { ($0["detail"] as? String)?.contains("6.0 MPa") == true && $0["kind"] as? String == "setpoint" }, "the outage's setpoints are in the run log")
        let (distinct, dups) = expectEventsMatch(runLog: log, received: sub.lines, rigTopic: rigTopic)
        print("MQTT broker test: outage \(String(format: "%.1f", outage)) s, \(log.count) run-log events, \(distinct) distinct received, \(dups) QoS 1 redeliveries, \(ticks) ticks")
        #expect(!sub.lines.contains { $0.json["kind"] as? String == "missed" })
        // The statuses were republished after the restart (retained, current).
        let after = try retainedMessages(port: broker.port, topic: rigTopic + "/A/status", count: 1)
        #expect(after.first?.json["setpoint_mpa"] as? Double == 5)
        #expect(daemon.log.contains("MQTT broker connection lost"), "\(String(daemon.log.suffix(2000)))")

        // SIGKILL: the broker publishes the last will, retained.
        daemon.kill9()
        var will: [TestSubscriber.Received] = []
        let willDeadline = Date().addingTimeInterval(15)
        repeat {
            sleep(seconds: 0.5)
            will = try retainedMessages(port: broker.port, topic: rigTopic + "/state", count: 1)
        } while will.first?.json["state"] as? String != "offline" && Date() < willDeadline
        #expect(will.first?.json["state"] as? String == "offline" && will.first?.json["reason"] as? String == "connection lost", "\(will.map(\.json))")
        #expect(sub.lines.contains { $0.topic == rigTopic + "/state" && $0.json["reason"] as? String == "connection lost" })
    }

    @Test("a clean stop publishes the last events and a retained offline state (reason stopped), not the will")
    func cleanStop() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-mqtt-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try TestBroker(dir: dir + "/broker")
        try broker.start()
        defer { broker.stop() }
        let sub = try TestSubscriber(port: broker.port, topic: "pressd/test/r2/#", file: dir + "/sub.txt", session: "test-stop")
        defer { sub.stop() }
        usleep(500_000)
        let daemon = try PressdProcess(dir: dir + "/d", configText: try defaultConfigText() + mqttTable(port: broker.port, rig: "r2"))
        defer { daemon.kill9() }
        #expect(try daemon.ctl(["set", "4MPa", "-c", "A"]).status == 0)
        sleep(seconds: 2)
        daemon.terminate()
        #expect(daemon.process.terminationStatus == 0)
        sleep(seconds: 1)
        let state = try retainedMessages(port: broker.port, topic: "pressd/test/r2/state", count: 1)
        #expect(state.first?.json["state"] as? String == "offline" && state.first?.json["reason"] as? String == "stopped", "\(state.map(\.json))")
        // The daemon's own "stopped" event, written by the run log at shutdown, was published.
        let log = try daemon.runLogEvents()
        #expect(log.contains { ($0["detail"] as? String)?.hasPrefix("pressd stopped") == true })
        expectEventsMatch(runLog: log, received: sub.lines, rigTopic: "pressd/test/r2")
        #expect(!sub.lines.contains { $0.json["reason"] as? String == "connection lost" })
    }

    @Test("beyond backlog_events the oldest events of an outage are dropped from MQTT (not from the run log) and one missed event names them; the newest arrive")
    func backlogBound() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-mqtt-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try TestBroker(dir: dir + "/broker")
        try broker.start()
        defer { broker.stop() }
        let rigTopic = "pressd/test/r3"
        let sub = try TestSubscriber(port: broker.port, topic: rigTopic + "/#", file: dir + "/sub.txt", session: "test-bound")
        defer { sub.stop() }
        usleep(500_000)
        let bound = 5
        let daemon = try PressdProcess(dir: dir + "/d", configText: try defaultConfigText() + mqttTable(port: broker.port, rig: "r3", extra: "backlog_events = \(bound)\n"))
        defer { daemon.kill9() }
        sleep(seconds: 2)
        let before = Set(try daemon.runLogEvents().map { "\($0["time_unix"] ?? "")|\($0["detail"] ?? "")" })
        broker.stop()
        // Well over the bound: each set is a request, a setpoint and often a mode event.
        for i in 0..<6 { #expect(try daemon.ctl(["set", "\(3 + i)MPa", "-c", i % 2 == 0 ? "A" : "B"]).status == 0) }
        sleep(seconds: 1.5) // the run log commits them (flush every 0.5 s)
        let outage = try daemon.runLogEvents().filter { !before.contains("\($0["time_unix"] ?? "")|\($0["detail"] ?? "")") }
        #expect(outage.count > bound + 3, "\(outage.count) events during the outage")
        try broker.start()
        var missed: [String: Any]?
        let deadline = Date().addingTimeInterval(20)
        repeat {
            sleep(seconds: 0.5)
            missed = sub.lines.first { $0.json["kind"] as? String == "missed" }?.json
        } while missed == nil && Date() < deadline
        let m = try #require(missed, "no missed event")
        #expect(m["missed"] as? Int == outage.count - bound && m["bound"] as? Int == bound, "\(m)")
        sleep(seconds: 1)
        // Exactly `bound` of the outage's events arrived (the newest in run-log order,
        // which is not quite time order: requests are logged at once, loop events within
        // 0.1 s), among them the last request and its setpoint; the rest did not.
        func key(_ e: [String: Any]) -> String { "\(e["channel"] as? String ?? "")|\(e["detail"] as? String ?? "")" }
        let outageKeys = Set(outage.map(key))
        let arrived = sub.lines.filter { $0.json["seq"] != nil && outageKeys.contains(key($0.json)) }
        #expect(arrived.count == bound, "\(arrived.map { key($0.json) })")
        #expect(arrived.contains { key($0.json) == "B|8.0 MPa, ramp 1.0 MPa/s" }, "\(arrived.map { key($0.json) })")
        #expect(arrived.contains { ($0.json["detail"] as? String)?.contains("\"value\":8") == true })
        #expect(!arrived.contains { key($0.json) == "A|3.0 MPa, ramp 1.0 MPa/s" }, "the oldest were dropped")
        // Still in the run log, all of them.
        #expect(try daemon.runLogEvents().count >= before.count + outage.count)
    }

    @Test("TLS with the broker's CA and a username/password from password_file: events arrive; a wrong password is refused, logged, and regulation goes on")
    func tlsAndPassword() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-mqtt-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/pki", withIntermediateDirectories: true)
        // A CA and a server certificate for localhost / 127.0.0.1, made here.
        let pki = dir + "/pki"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: pki + "/ext.cnf", atomically: true, encoding: .utf8)
        for args in [["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", pki + "/ca.key", "-out", pki + "/ca.crt", "-days", "2", "-subj", "/CN=pressd-test-ca"],
                     ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", pki + "/server.key", "-out", pki + "/server.csr", "-subj", "/CN=localhost"],
                     ["x509", "-req", "-in", pki + "/server.csr", "-CA", pki + "/ca.crt", "-CAkey", pki + "/ca.key", "-CAcreateserial",
                      "-out", pki + "/server.crt", "-days", "2", "-extfile", pki + "/ext.cnf"]] {
            let r = try runProcess("/usr/bin/openssl", args)
            #expect(r.status == 0, "openssl \(args.joined(separator: " ")): \(r.stderr)")
        }
        let pw = try runProcess("/usr/bin/mosquitto_passwd", ["-b", "-c", pki + "/passwd", "rig", "s3cret"])
        #expect(pw.status == 0, "\(pw.stderr)")
        try "s3cret\n".write(toFile: pki + "/rig.password", atomically: true, encoding: .utf8)
        let broker = try TestBroker(dir: dir + "/broker", extraConfig: """
            cafile \(pki)/ca.crt
            certfile \(pki)/server.crt
            keyfile \(pki)/server.key
            password_file \(pki)/passwd
            allow_anonymous false
            """)
        try broker.start()
        defer { broker.stop() }
        let auth = ["--cafile", pki + "/ca.crt", "-u", "rig", "-P", "s3cret"]
        let sub = try TestSubscriber(port: broker.port, topic: "pressd/test/r4/#", file: dir + "/sub.txt", session: "test-tls", extra: auth)
        defer { sub.stop() }
        usleep(500_000)
        let tls = "tls_ca_file = \"\(pki)/ca.crt\"\nusername = \"rig\"\npassword_file = \"\(pki)/rig.password\"\n"
        let daemon = try PressdProcess(dir: dir + "/d", configText: try defaultConfigText() + mqttTable(port: broker.port, rig: "r4", extra: tls))
        defer { daemon.kill9() }
        #expect(try daemon.ctl(["set", "4MPa", "-c", "A"]).status == 0)
        var log: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(20)
        repeat {
            sleep(seconds: 1)
            log = try daemon.runLogEvents()
        } while Set(sub.lines.compactMap { $0.json["seq"] as? Int }).count < log.count && Date() < deadline
        expectEventsMatch(runLog: log, received: sub.lines, rigTopic: "pressd/test/r4")
        #expect(sub.lines.contains { $0.topic == "pressd/test/r4/A/status" })
        #expect(daemon.log.contains("MQTT connected"), "\(String(daemon.log.suffix(1500)))")

        // The wrong password: refused by the broker, said in the log, the loop unaffected.
        let bad = "tls_ca_file = \"\(pki)/ca.crt\"\nusername = \"rig\"\npassword = \"wrong\"\n"
        let other = try PressdProcess(dir: dir + "/d2", configText: try defaultConfigText() + mqttTable(port: broker.port, rig: "r5", extra: bad))
        defer { other.kill9() }
        sleep(seconds: 2)
        let t0 = try other.loopCounters()
        sleep(seconds: 1)
        let t1 = try other.loopCounters()
        #expect(t1.ticks - t0.ticks >= 80, "\(t1.ticks - t0.ticks) ticks in 1 s while the broker refuses")
        #expect(other.log.contains("MQTT broker not reachable") && other.log.contains("not authorised"), "\(String(other.log.suffix(1500)))")
        #expect(!other.log.contains("MQTT connected"))
    }

    @Test("a fleet: 20 pressd on the simulated rig publish to one broker; every status retained, every event received exactly once, every rig offline after its stop")
    func fleet() throws {
        let n = 20
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-fleet-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broker = try TestBroker(dir: dir + "/broker")
        try broker.start()
        defer { broker.stop() }
        let sub = try TestSubscriber(port: broker.port, topic: "pressd/fleet/#", file: dir + "/sub.txt", session: "test-fleet")
        defer { sub.stop() }
        usleep(500_000)
        // Short-lived daemons at a 20 Hz loop: cheap enough for 20 on a small machine.
        let text = try editedConfig("loop_rate_hz = 100", "loop_rate_hz = 20")
        var daemons: [PressdProcess] = []
        defer { for d in daemons { d.kill9() } }
        for i in 1...n {
            let rig = String(format: "r%02d", i)
            daemons.append(try PressdProcess(dir: dir + "/" + rig, configText: text + mqttTable(port: broker.port, site: "fleet", rig: rig, sampleRate: 1)))
        }
        for (i, d) in daemons.enumerated() {
            #expect(try d.ctl(["set", "\(2 + i % 5)MPa", "-c", "A"]).status == 0)
            #expect(try d.ctl(["set", "3MPa", "-c", "B"]).status == 0)
        }
        sleep(seconds: 3)
        // Every rig's statuses are retained: a late subscriber gets all 2 × n at once.
        let statuses = try retainedMessages(port: broker.port, topic: "pressd/fleet/+/+/status", count: 2 * n)
        #expect(Set(statuses.map(\.topic)).count == 2 * n, "\(statuses.count) retained statuses")
        for (i, d) in daemons.enumerated() {
            let rig = String(format: "r%02d", i + 1)
            #expect(statuses.first { $0.topic == "pressd/fleet/\(rig)/A/status" }?.json["setpoint_mpa"] as? Double == Double(2 + i % 5))
            _ = d
        }
        // Stop them all (SIGTERM): each publishes its last events and a retained offline.
        for d in daemons { d.process.terminate() }
        for d in daemons { d.process.waitUntilExit() }
        #expect(daemons.allSatisfy { $0.process.terminationStatus == 0 })
        sleep(seconds: 1)
        let states = try retainedMessages(port: broker.port, topic: "pressd/fleet/+/state", count: n)
        #expect(states.count == n && states.allSatisfy { $0.json["state"] as? String == "offline" && $0.json["reason"] as? String == "stopped" }, "\(states.map(\.json))")
        var total = 0
        for (i, d) in daemons.enumerated() {
            let rigTopic = String(format: "pressd/fleet/r%02d", i + 1)
            let log = try d.runLogEvents()
            total += log.count
            let mine = sub.lines.filter { $0.topic.hasPrefix(rigTopic + "/") }
            let (_, dups) = expectEventsMatch(runLog: log, received: mine, rigTopic: rigTopic)
            #expect(dups == 0, "\(rigTopic): \(dups) duplicate deliveries without an outage")
        }
        print("MQTT fleet test: \(n) daemons, \(total) run-log events, \(sub.lines.count) messages received")
    }
}
