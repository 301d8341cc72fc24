import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// The built executables sit next to the test bundle.
let binDir: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: url.appendingPathComponent("pressd").path), url.path != "/" {
        url.deleteLastPathComponent()
    }
    return url.path
}()

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs an executable to completion, capturing its output (`input` on its standard input).
func runProcess(_ path: String, _ args: [String], env: [String: String] = [:], input: String? = nil) throws -> Run {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out; p.standardError = err
    if input != nil { p.standardInput = inp }
    try p.run()
    if let input {
        inp.fileHandleForWriting.write(Data(input.utf8))
        try inp.fileHandleForWriting.close()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// Runs one of the built tools (`pressd`, `pressctl`).
func run(_ tool: String, _ args: [String], env: [String: String] = [:]) throws -> Run {
    try runProcess(binDir + "/" + tool, args, env: env)
}

@Suite("pressd and pressctl as processes", .serialized)
struct ProcessTests {
    @Test("the executables were built next to the tests")
    func built() {
        #expect(FileManager.default.isExecutableFile(atPath: binDir + "/pressd"), "pressd not found in \(binDir)")
        #expect(FileManager.default.isExecutableFile(atPath: binDir + "/pressctl"), "pressctl not found in \(binDir)")
    }

    @Test("a config with an error is rejected with file, line and key, exit code 2")
    func badConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-cfg-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = try editedConfig("kd = 0\n", "kd = -3\n")
        try text.write(toFile: dir + "/bad.toml", atomically: true, encoding: .utf8)
        let r = try run("pressd", ["--config", dir + "/bad.toml", "--check-config"])
        #expect(r.status == 2)
        let lineNo = try #require(line(of: "kd = -3", in: text))
        #expect(r.stderr.contains("\(dir)/bad.toml:\(lineNo): channels.A.pid.kd: must be a finite number ≥ 0"), "\(r.stderr)")
    }

    @Test("pressctl without a daemon prints one line naming the socket and exits 3")
    func notRunning() throws {
        let r = try run("pressctl", ["status", "--socket", "/tmp/pressd-nobody-here.sock"])
        #expect(r.status == 3)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("/tmp/pressd-nobody-here.sock") == true)
    }

    @Test("pressd: pressctl set/status/watch work; SIGTERM leaves the actuators in their shutdown state and removes the socket")
    func lifecycle() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-p-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sock = dir + "/p.sock"
        // Channel B releases on shutdown, A holds: both paths are exercised.
        let text = try editedConfig("safe_output = 0           # vented\nshutdown = \"hold\"", "safe_output = 0\nshutdown = \"release\"")
        try text.write(toFile: dir + "/p.toml", atomically: true, encoding: .utf8)

        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: binDir + "/pressd")
        // Its own state directory: never the machine's /var/lib/pressd.
        daemon.arguments = ["--config", dir + "/p.toml", "--socket", sock, "--state-dir", dir + "/state", "--time-scale", "5"]
        let err = Pipe()
        daemon.standardError = err
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }

        var client: ControlClient?
        for _ in 0..<100 where client == nil {
            client = try? ControlClient(path: sock)
            if client == nil { usleep(50_000) }
        }
        let c = try #require(client, "pressd did not open \(sock)")
        let env = ["PRESSD_SOCKET": sock]
        let set = try run("pressctl", ["set", "5MPa", "--channel", "A"], env: env)
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("A: setpoint 5.000 MPa"))
        #expect(try run("pressctl", ["set", "4MPa", "-c", "B"], env: env).status == 0)
        #expect(try run("pressctl", ["set", "99MPa", "-c", "B"], env: env).status == 1)
        usleep(3_000_000) // 15 s of plant time
        let st = try run("pressctl", ["status", "--json"], env: env)
        let status = try ControlProtocol.decoder().decode(OkEnvelope<StatusResult>.self, from: Data(st.stdout.utf8)).ok
        #expect(status.channels.allSatisfy { $0.mode == "regulating" && $0.inBand })
        let table = try run("pressctl", ["status"], env: env)
        #expect(table.stdout.contains("regulating"))
        // Read at a glance: a human uptime with its start, units in the headers.
        #expect(table.stdout.contains(" s (since 20") && table.stdout.contains("SETPOINT MPa") && table.stdout.contains("PRESSURE MPa"), "\(table.stdout)")
        let watch = try run("pressctl", ["watch", "--count", "2", "--rate", "10"], env: env)
        #expect(watch.status == 0)
        #expect(watch.stdout.split(separator: "\n").count == 2)
        // Clock time, not seconds since the daemon started.
        #expect(watch.stdout.split(separator: "\n").allSatisfy { $0.range(of: #"^\d\d:\d\d:\d\d\.\d\d "#, options: .regularExpression) != nil }, "\(watch.stdout)")
        // Piped, --plot falls back to plain lines: no screen-clearing codes in a log file.
        let piped = try run("pressctl", ["watch", "--plot", "-c", "A", "--count", "2", "--rate", "10", "--window", "10m"], env: env)
        #expect(piped.status == 0 && !piped.stdout.contains("\u{1B}[2J") && piped.stderr.contains("not a terminal"), "\(piped.stderr)")
        let heldOutput = try c.channel("A").output

        daemon.terminate() // SIGTERM
        let deadline = Date().addingTimeInterval(10)
        while daemon.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!daemon.isRunning)
        #expect(daemon.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: sock))
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("shutdown=A=hold,B=release"), "\(log)")
        #expect(heldOutput > 1000)
    }
}

@Suite("systemd units")
struct SystemdUnitTests {
    /// Copies the units with ExecStart pointing at the built binary (verify checks it).
    func stagedUnits() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-units-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let service = try String(contentsOfFile: repoRoot + "/systemd/pressd.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/pressd", with: binDir + "/pressd")
        try service.write(toFile: dir + "/pressd.service", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: repoRoot + "/systemd/pressd.socket", toPath: dir + "/pressd.socket")
        return dir
    }

    func systemdAnalyze(_ args: [String]) throws -> Run { try runProcess("/usr/bin/systemd-analyze", args) }

    @Test("systemd-analyze verify is clean and the service's exposure is 2.0 or lower")
    func analyze() throws {
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "install the 'systemd' package")
        let dir = try stagedUnits()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v = try systemdAnalyze(["verify", "--man=no", dir + "/pressd.service", dir + "/pressd.socket"])
        #expect(v.status == 0 && v.stderr.isEmpty, "\(v.stderr)")
        let s = try systemdAnalyze(["security", "--offline=true", "--threshold=20", dir + "/pressd.service"])
        #expect(s.status == 0, "\(s.stdout.split(separator: "\n").last ?? "")")
        // And the check can fail: a stricter threshold than we meet is refused.
        #expect(try systemdAnalyze(["security", "--offline=true", "--threshold=10", dir + "/pressd.service"]).status != 0)
    }
}

@Suite("Journal fields")
struct JournalTests {
    @Test("metadata becomes upper-case PRESSD_ fields; priority follows the level")
    func fields() {
        let f = JournalLogHandler.fields(level: .error, message: "fault: x", metadata: ["channel": "A", "fault": "over_pressure", "t-x": "1"], identifier: "pressd")
        #expect(f.contains("MESSAGE=fault: x"))
        #expect(f.contains("PRIORITY=3"))
        #expect(f.contains("PRESSD_CHANNEL=A"))
        #expect(f.contains("PRESSD_FAULT=over_pressure"))
        #expect(f.contains("PRESSD_T_X=1"))
    }

    @Test("JOURNAL_STREAM is honoured only when it names our stderr")
    func detection() {
        #expect(!JournalLogHandler.stderrIsJournal(environment: [:]))
        #expect(!JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "1:2"]))
        var st = stat()
        fstat(2, &st)
        #expect(JournalLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"]))
    }
}

@Suite("pressctl calibrate", .serialized)
struct CalibrateProcessTests {
    @Test("tare over the socket zeroes a biased load cell and the calibration survives a restart")
    func tarePersists() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("sim_inject", SimInjectParams(channel: "A", forceBiasN: 25), as: OkResult.self)
        usleep(1_000_000)
        #expect(abs((try c.channel("A").forceN ?? 0) - 25) < 2)
        let r = try run("pressctl", ["calibrate", "tare", "-c", "A", "--socket", d.socket])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("A load cell 0: offset 2"))
        usleep(500_000)
        #expect(abs(try c.channel("A").forceN ?? 99) < 2)
        d.stop()
        let again = try DaemonProcess(dir: d.dir, timeScale: 5)
        defer { again.stop() }
        let c2 = try again.client()
        usleep(500_000)
        #expect(abs(try c2.channel("A").forceN ?? 99) < 2) // bias persisted in the plant, tare in the run log
        let show = try run("pressctl", ["calibrate", "show", "-c", "A", "--json", "--socket", again.socket])
        #expect(show.stdout.contains("\"offset_n\" : 2"))
        let bad = try run("pressctl", ["calibrate", "span", "--known", "500N", "-c", "A", "--socket", again.socket])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("put the known load on the cell"))
    }
}

/// What `pressctl --json` prints for an answer: `{"ok": ANSWER}`.
struct OkEnvelope<T: Decodable>: Decodable { var ok: T }
