import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// Starts a process with pipes on its standard input, output and error.
final class PipedProcess {
    let process = Process()
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    init(_ path: String, _ args: [String], env: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        process.standardInput = stdin; process.standardOutput = stdout; process.standardError = stderr
        try process.run()
    }
    func send(_ line: String) { stdin.fileHandleForWriting.write(Data((line + "\n").utf8)) }
    /// Reads one line from standard output (blocking).
    func line() -> String {
        var bytes = [UInt8]()
        while true {
            let d = stdout.fileHandleForReading.readData(ofLength: 1)
            if d.isEmpty || d[0] == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(d[0])
        }
    }
    func wait(_ seconds: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { usleep(20_000) }
        return !process.isRunning
    }
}

@Suite("pressctl bridge, without ssh", .serialized)
struct BridgeTests {
    @Test("pressctl bridge copies requests to pressd and answers back over pipes, and ends when its input ends")
    func overPipes() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        _ = try d.client()
        let b = try PipedProcess(binDir + "/pressctl", ["bridge", "--socket", d.socket])
        let hello = b.line()
        #expect(hello.contains("\"hello\""), "\(hello)")
        b.send(#"{"id": 1, "method": "status"}"#)
        let reply = try ControlProtocol.decoder().decode(Reply<StatusResult>.self, from: Data(b.line().utf8))
        #expect(reply.id == .int(1))
        #expect(reply.result?.channels.map(\.name) == ["A", "B"])
        b.send(#"{"id": 2, "method": "set", "params": {"channel": "A", "value": 3, "unit": "MPa"}}"#)
        let set = try ControlProtocol.decoder().decode(Reply<SetResult>.self, from: Data(b.line().utf8))
        #expect(set.result?.setpointMpa == 3)
        // The daemon sees the bridge as its peer: the set is pressd's as if typed locally.
        #expect(try d.client().channel("A").setpointMpa == 3)
        try b.stdin.fileHandleForWriting.close()
        let ended = b.wait()
        #expect(ended, "the bridge did not end when its input closed")
        if ended { #expect(b.process.terminationStatus == 0) } else { b.process.terminate() }
    }

    @Test("with no daemon, pressctl bridge answers one bridge_error line instead of a hello and exits 3")
    func noDaemon() throws {
        let b = try PipedProcess(binDir + "/pressctl", ["bridge", "--socket", "/tmp/pressd-nobody-here.sock"])
        let line = b.line()
        let f = try ControlProtocol.decoder().decode(BridgeFailure.self, from: Data(line.utf8))
        #expect(f.bridgeError.code == "not_running")
        #expect(f.bridgeError.message.contains("/tmp/pressd-nobody-here.sock"))
        #expect(b.wait())
        #expect(b.process.terminationStatus == 3)
        let err = String(decoding: b.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(err.contains("pressd is not running"))
    }

    @Test("-H through a stand-in for ssh (runs the remote command locally): status, set and the usage forms")
    func fakeSSH() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        _ = try d.client()
        // Drops ssh's options and destination and runs the remote command as ssh would, through a shell.
        let fake = d.dir + "/fake-ssh"
        try "#!/bin/sh\nwhile [ \"$1\" != \"--\" ]; do shift; done\nshift 2\nexec /bin/sh -c \"$1\"\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let env = ["PRESSCTL_SSH": fake, "PRESSCTL_REMOTE": binDir + "/pressctl"]
        // -H before the subcommand, like --socket.
        let set = try run("pressctl", ["-H", "tech@rig9:2222", "--socket", d.socket, "set", "4MPa", "-c", "B"], env: env)
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout == "B: setpoint 4.000 MPa, step\n" || set.stdout.hasPrefix("B: setpoint 4.000 MPa"), "\(set.stdout)")
        let st = try run("pressctl", ["status", "--json", "-H", "rig9", "--socket", d.socket], env: env)
        let status = try ControlProtocol.decoder().decode(OkEnvelope<StatusResult>.self, from: Data(st.stdout.utf8)).ok
        #expect(status.channels.first { $0.name == "B" }?.setpointMpa == 4)
        let several = try run("pressctl", ["set", "4MPa", "-c", "B", "-H", "rig1,rig2", "--socket", d.socket], env: env)
        #expect(several.status != 0 && several.stderr.contains("'status' only"), "\(several.stderr)")
        let bad = try run("pressctl", ["status", "-H", "rig1:notaport"], env: env)
        #expect(bad.status == 64 && bad.stderr.contains("port 'notaport'"), "\(bad.stderr)")
    }
}

// MARK: - A real sshd on the loopback

/// An OpenSSH server started for one test: its own host key, a client key it
/// accepts, a config file for the client, on a free port of 127.0.0.1.
final class LoopbackSSHD {
    let dir: String
    let port: Int
    private(set) var pid: pid_t = 0
    /// `ssh -F <config>`, for PRESSCTL_SSH.
    var sshCommand: String { "/usr/bin/ssh -F \(dir)/ssh_config" }
    /// A client that offers a key the server does not know.
    var wrongKeySSHCommand: String { "/usr/bin/ssh -F \(dir)/ssh_config_wrong" }

    static let sshd = "/usr/sbin/sshd"

    /// Why the test cannot run here, or nil. In CI (or as root) a missing sshd is a
    /// failure, not a skip: scripts/deps installs openssh-server.
    static var skipReason: String? {
        if FileManager.default.isExecutableFile(atPath: sshd) { return nil }
        if getuid() == 0 || ProcessInfo.processInfo.environment["CI"] != nil { return nil }
        return "skipped: \(sshd) is not installed (apt-get install openssh-server, or run scripts/deps as root)"
    }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-ssh-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        for key in ["host_key", "client_key", "wrong_key"] {
            let r = try runProcess("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(dir)/\(key)"])
            guard r.status == 0 else { throw SSHDError(message: "ssh-keygen: \(r.stderr)") }
        }
        try FileManager.default.copyItem(atPath: "\(dir)/client_key.pub", toPath: "\(dir)/authorized_keys")
        chmod("\(dir)/authorized_keys", 0o644)
        port = freePort()
        try """
        ListenAddress 127.0.0.1
        Port \(port)
        HostKey \(dir)/host_key
        AuthorizedKeysFile \(dir)/authorized_keys
        StrictModes no
        PidFile \(dir)/sshd.pid
        UsePAM no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PubkeyAuthentication yes
        PermitRootLogin prohibit-password
        LogLevel VERBOSE

        """.write(toFile: "\(dir)/sshd_config", atomically: true, encoding: .utf8)
        for (name, key) in [("ssh_config", "client_key"), ("ssh_config_wrong", "wrong_key")] {
            try """
            Host *
              IdentityFile \(dir)/\(key)
              IdentitiesOnly yes
              UserKnownHostsFile \(dir)/known_hosts
              StrictHostKeyChecking accept-new
              BatchMode yes
              LogLevel ERROR

            """.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        }
        // sshd refuses to start without its privilege separation directory (made by
        // the service unit on an installed system).
        if getuid() == 0 { mkdir("/run/sshd", 0o755) }
        pid = try LoopbackSSHD.spawn([LoopbackSSHD.sshd, "-D", "-e", "-f", "\(dir)/sshd_config"], log: "\(dir)/sshd.log")
        let end = Date().addingTimeInterval(10)
        while !tcpAccepts(port) {
            var st: Int32 = 0
            guard waitpid(pid, &st, WNOHANG) == 0, Date() < end else {
                stop()
                throw SSHDError(message: "sshd did not start: \(log)")
            }
            usleep(50_000)
        }
    }

    /// sshd's log so far (-e: its messages on standard error, into a file).
    var log: String { (try? String(contentsOfFile: "\(dir)/sshd.log", encoding: .utf8)) ?? "" }

    /// Started with posix_spawn, not Foundation's Process: sshd closes every inherited
    /// descriptor when it re-executes itself, which Process takes for the child's exit
    /// (it then blocks in waitpid and no other Process of the test is reaped).
    static func spawn(_ argv: [String], log: String) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, nil, cargs, environ)
        guard rc == 0 else { throw SSHDError(message: "cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        pid = 0
    }

    func cleanup() { stop(); try? FileManager.default.removeItem(atPath: dir) }
}

/// A TCP port on 127.0.0.1 that takes connections (the kernel completes them) and
/// never answers: a rig whose sshd hangs.
final class SilentListener {
    let fd: Int32
    let port: Int
    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 8)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: a.sin_port))
    }
    func close() { Glibc.close(fd) }
}

struct SSHDError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// A user made for the test (root only), outside every group pressd trusts; removed afterwards.
struct TestUser {
    let name: String
    let uid: Int
    static func make() throws -> TestUser? {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd") else { return nil }
        let name = "pressd-ssh-\(UUID().uuidString.prefix(4).lowercased())"
        // '*' (no password, not locked): sshd refuses accounts locked with '!'.
        let r = try runProcess("/usr/sbin/useradd", ["-M", "-d", "/nonexistent", "-s", "/bin/sh", "-p", "*", name])
        guard r.status == 0, let pw = getpwnam(name) else { throw SSHDError(message: "useradd: \(r.stderr)") }
        return TestUser(name: name, uid: Int(pw.pointee.pw_uid))
    }
    func remove() { _ = try? runProcess("/usr/sbin/userdel", [name]) }
}

@Suite("pressctl -H against a real sshd on the loopback", .serialized)
struct SSHTests {
    static let me = String(cString: getpwuid(getuid())!.pointee.pw_name)

    /// pressctl with PRESSCTL_SSH pointing at the test's client config and the built
    /// pressctl as the rig's pressctl.
    func pressctl(_ args: [String], _ sshd: LoopbackSSHD, ssh: String? = nil, remote: String? = nil) throws -> Run {
        try run("pressctl", args, env: ["PRESSCTL_SSH": ssh ?? sshd.sshCommand, "PRESSCTL_REMOTE": remote ?? binDir + "/pressctl", "PRESSD_SOCKET": ""])
    }

    /// PIDs of the processes whose command line (arguments joined by spaces) starts with
    /// `prefix`, or contains `text`.
    static func processes(startingWith prefix: String) -> [Int32] { processes { $0.hasPrefix(prefix) } }
    static func processes(containing text: String) -> [Int32] { processes { $0.contains(text) } }
    static func processes(_ match: (String) -> Bool) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
        return pids.filter { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return match(String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self))
        }
    }

    /// A daemon whose socket any local user may open ([access]: everyone observes,
    /// only root writes).
    func openDaemon() throws -> DaemonProcess {
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\""),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = []\n\n[simulator]")])
        chmod(d.dir, 0o755)
        return d
    }

    @Test("status over ssh is the rig's status; set over ssh is audited with the ssh user's uid; watch streams; a bad key, a missing pressctl and a dead daemon are named",
          .disabled(if: LoopbackSSHD.skipReason != nil, "/usr/sbin/sshd is not installed (apt-get install openssh-server, or scripts/deps as root); required when root or CI is set"))
    func statusSetWatch() throws {
        let sshd = try LoopbackSSHD()
        defer { sshd.cleanup() }
        let d = try openDaemon()
        defer { d.cleanup() }
        let c = try d.client()
        let rig = "\(SSHTests.me)@127.0.0.1:\(sshd.port)"

        let set = try pressctl(["-H", rig, "--socket", d.socket, "set", "4MPa", "-c", "A"], sshd)
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.hasPrefix("A: setpoint 4.000 MPa"), "\(set.stdout)")
        #expect(try c.channel("A").setpointMpa == 4)

        let remote = try pressctl(["status", "--json", "-H", rig, "--socket", d.socket], sshd)
        #expect(remote.status == 0, "\(remote.stderr)")
        let local = try run("pressctl", ["status", "--json", "--socket", d.socket])
        let r = try ControlProtocol.decoder().decode(OkEnvelope<StatusResult>.self, from: Data(remote.stdout.utf8)).ok
        let l = try ControlProtocol.decoder().decode(OkEnvelope<StatusResult>.self, from: Data(local.stdout.utf8)).ok
        #expect(r.version == l.version && r.backend == l.backend)
        #expect(r.channels.map(\.name) == l.channels.map(\.name))
        #expect(r.channels.map(\.mode) == l.channels.map(\.mode))
        #expect(r.channels.map(\.setpointMpa) == l.channels.map(\.setpointMpa))
        // The same daemon (one uptime), not another one that happens to look alike.
        #expect(abs((l.uptimeS - r.uptimeS)) < 10)
        let table = try pressctl(["-H", rig, "--socket", d.socket, "status"], sshd)
        #expect(table.status == 0 && table.stdout.contains("SETPOINT MPa") && table.stdout.contains("regulating"), "\(table.stdout)\(table.stderr)")

        let watch = try pressctl(["watch", "--count", "3", "--rate", "10", "-H", rig, "--socket", d.socket], sshd)
        #expect(watch.status == 0, "\(watch.stderr)")
        #expect(watch.stdout.split(separator: "\n").count == 3, "\(watch.stdout)")

        // Interrupted while streaming: pressctl ends its ssh, and the bridge on the rig ends too.
        let bridge = "\(binDir)/pressctl bridge --socket \(d.socket)"
        let live = try PipedProcess(binDir + "/pressctl", ["watch", "--rate", "5", "-H", rig, "--socket", d.socket],
                                    env: ["PRESSCTL_SSH": sshd.sshCommand, "PRESSCTL_REMOTE": binDir + "/pressctl"])
        #expect(live.line().contains("regulating"))
        #expect(!SSHTests.processes(startingWith: bridge).isEmpty, "no bridge on the rig while watching")
        live.process.terminate() // SIGTERM
        #expect(live.wait())
        let end = Date().addingTimeInterval(5)
        while Date() < end, !(SSHTests.processes(startingWith: bridge) + SSHTests.processes(containing: sshd.sshCommand)).isEmpty { usleep(50_000) }
        #expect(SSHTests.processes(startingWith: bridge).isEmpty, "the rig's bridge outlived pressctl")
        #expect(SSHTests.processes(containing: sshd.sshCommand).isEmpty, "the ssh child outlived pressctl")

        let wrong = try pressctl(["status", "-H", rig, "--socket", d.socket], sshd, ssh: sshd.wrongKeySSHCommand)
        #expect(wrong.status == 3)
        #expect(wrong.stderr.hasPrefix("pressctl: cannot reach rig \(rig) over ssh: ") && wrong.stderr.contains("Permission denied (publickey)"), "\(wrong.stderr)")

        let missing = try pressctl(["status", "-H", rig, "--socket", d.socket], sshd, remote: "/nonexistent/pressctl")
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("on rig \(rig): /nonexistent/pressctl is not installed there"), "\(missing.stderr)")

        let noDaemon = try pressctl(["status", "--json", "-H", rig, "--socket", d.dir + "/none.sock"], sshd)
        #expect(noDaemon.status == 3)
        #expect(noDaemon.stderr.contains("on rig \(rig): pressd is not running: cannot connect to \(d.dir)/none.sock"), "\(noDaemon.stderr)")
        #expect(noDaemon.stdout.contains("\"code\":\"not_running\""), "\(noDaemon.stdout)")

        d.stop()
        let audit = try PressLogProbe.events(dir: d.dir).filter { $0.kind == "request" && $0.detail.contains("\"set\"") }
        #expect(audit.count == 1)
        #expect(audit.first?.uid == Int(getuid()), "audited as uid \(audit.first?.uid.map(String.init) ?? "none"), ssh logged in as \(SSHTests.me)")
    }

    @Test("as an unprivileged user over ssh: status works, a set is refused and audited with that user's uid; a socket the user may not open gives the local hint",
          .disabled(if: LoopbackSSHD.skipReason != nil, "/usr/sbin/sshd is not installed (apt-get install openssh-server)"),
          .disabled(if: getuid() != 0, "needs root to create a user for the test (CI runs as root)"))
    func unprivileged() throws {
        let user = try #require(try TestUser.make(), "useradd (passwd package) is missing")
        defer { user.remove() }
        let sshd = try LoopbackSSHD()
        defer { sshd.cleanup() }
        let d = try openDaemon()
        defer { d.cleanup() }
        let c = try d.client()
        let rig = "\(user.name)@127.0.0.1:\(sshd.port)"

        let st = try pressctl(["status", "-H", rig, "--socket", d.socket], sshd)
        #expect(st.status == 0, "\(st.stderr)")
        let set = try pressctl(["set", "3MPa", "-c", "A", "-H", rig, "--socket", d.socket], sshd)
        #expect(set.status == 1)
        #expect(set.stderr.contains("permission_denied") && set.stderr.contains("uid \(user.uid)"), "\(set.stderr)")
        #expect(try c.channel("A").setpointMpa != 3)

        // A socket only its group may open: the hint names the user on the rig.
        chmod(d.socket, 0o660)
        let denied = try pressctl(["status", "-H", rig, "--socket", d.socket], sshd)
        #expect(denied.status == 3)
        #expect(denied.stderr.contains("on rig \(rig): permission denied on \(d.socket): pressd is running"), "\(denied.stderr)")

        d.stop()
        let log = try PressLogProbe.events(dir: d.dir)
        #expect(log.contains { $0.kind == "request" && $0.uid == user.uid && $0.detail.hasPrefix("REFUSED (permission)") && $0.detail.contains("\"set\"") })
    }

    @Test("fleet: -H live,dead status shows the live rig's rows and marks the dead one; exit 0 unless every rig fails; silent rigs are given up on together, within the per-rig timeout",
          .disabled(if: LoopbackSSHD.skipReason != nil, "/usr/sbin/sshd is not installed (apt-get install openssh-server)"))
    func fleet() throws {
        let sshd = try LoopbackSSHD()
        defer { sshd.cleanup() }
        let d = try openDaemon()
        defer { d.cleanup() }
        _ = try d.client()
        let live = "\(SSHTests.me)@127.0.0.1:\(sshd.port)"
        let dead = "\(SSHTests.me)@127.0.0.1:\(freePort())"

        let t = try pressctl(["-H", "\(live),\(dead)", "--socket", d.socket, "status"], sshd)
        #expect(t.status == 0, "\(t.stderr)")
        let lines = t.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("RIG") == true, "\(t.stdout)")
        #expect(lines.contains { $0.hasPrefix(live) && $0.contains(" A ") }, "\(t.stdout)")
        #expect(lines.contains { $0.hasPrefix(live) && $0.contains(" B ") }, "\(t.stdout)")
        #expect(lines.contains { $0.hasPrefix(dead) && $0.contains("UNREACHABLE") && $0.hasSuffix("Connection refused") }, "\(t.stdout)")
        #expect(lines.count == 5 && !t.stdout.contains("\n\n"), "\(t.stdout)") // header, A, B, the dead rig, the count
        #expect(lines.last == "1 of 2 rigs unreachable")
        let one = try pressctl(["status", "-H", dead], sshd)
        #expect(one.status == 3 && one.stderr == "pressctl: cannot reach rig \(dead) over ssh: ssh: connect to host 127.0.0.1 port \(dead.split(separator: ":").last!): Connection refused\n", "\(one.stderr)")

        let j = try pressctl(["status", "--json", "-H", "\(live),\(dead)", "--socket", d.socket], sshd)
        let env = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: [String: Any]]
        let arr = try #require(env?["ok"]?["rigs"] as? [[String: Any]], "\(j.stdout)")
        #expect(arr.count == 2)
        #expect(arr[0]["rig"] as? String == live && arr[0]["status"] != nil && arr[0]["error"] == nil)
        #expect(arr[1]["rig"] as? String == dead && (arr[1]["error"] as? [String: Any])?["code"] as? String == "unreachable")

        let allDead = try pressctl(["status", "-H", "\(dead),127.0.0.1:\(freePort())"], sshd)
        #expect(allDead.status == 3)
        #expect(allDead.stdout.contains("2 of 2 rigs unreachable"))

        // Three rigs that accept the connection and never say a word: asked at once, each
        // given up after the per-rig timeout (3 s here: ssh's ConnectTimeout 2 s), so the whole takes about 2 s, not 6.
        let silent = (0..<3).map { _ in SilentListener() }
        defer { silent.forEach { $0.close() } }
        let rigs = [live] + silent.map { "127.0.0.1:\($0.port)" }
        let t0 = Date()
        let slow = try run("pressctl", ["status", "-H", rigs.joined(separator: ","), "--socket", d.socket],
                           env: ["PRESSCTL_SSH": sshd.sshCommand, "PRESSCTL_REMOTE": binDir + "/pressctl", "PRESSCTL_FLEET_TIMEOUT": "3"])
        let took = Date().timeIntervalSince(t0)
        #expect(slow.status == 0, "\(slow.stderr)")
        #expect(slow.stdout.contains("3 of 4 rigs unreachable") && slow.stdout.split(separator: "\n").contains { $0.hasPrefix(live) && $0.contains(" A ") }, "\(slow.stdout)")
        #expect(took < 4.5, "took \(took) s: the rigs were not asked concurrently, or the timeout was not kept")
    }
}
