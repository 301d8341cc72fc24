import Foundation
import Testing
import PressProtocol
import PressDrivers
@testable import PressDaemon

/// The field findings of a real installation (issue 11), each reproduced as it was met:
/// supplementary groups after the connecting process is gone, a trap in /tmp, the
/// descriptor limit, and a second daemon on the same rig.
@Suite("Installed-system security and one daemon per rig", .serialized)
struct InstallSecurityTests {
    static var canActAsOthers: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") }

    /// Runs `path` and kills it if it has not exited after `timeout` seconds.
    func run(_ path: String, _ args: [String], env: [String: String] = [:], timeout: Double = 15) throws -> (run: Run, timedOut: Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }.filter { !$0.value.isEmpty }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let end = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > end { timedOut = true; kill(p.processIdentifier, SIGKILL) }
            usleep(20_000)
        }
        p.waitUntilExit()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        return (Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self)), timedOut)
    }

    // MARK: finding 5 — groups from the kernel, once, at connect

    @Test("a client in the operator group by a supplementary group keeps its role after the process that connected has exited")
    func supplementaryGroupAfterFork() throws {
        guard Self.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to act as another user"); return }
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\""),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = [\"@4242\"]\n\n[simulator]")])
        defer { d.cleanup() }
        let c = try d.client()
        chmod(d.dir, 0o755)
        // nobody (primary group 65534, an observer) with supplementary group 4242 (an
        // operator) connects, forks and exits; the child, same credentials, sends `set`.
        let script = """
        import os, socket, sys, time, json
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rwb')
        f.readline()
        if os.fork() > 0:
            os._exit(0)
        time.sleep(0.5)
        f.write(b'{"id":1,"method":"set","params":{"channel":"A","value":3,"unit":"MPa"}}\\n'); f.flush()
        print(f.readline().decode().strip(), flush=True)
        """
        let r = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--groups=4242", "/usr/bin/python3", "-c", script, d.socket])
        // The parent exits at once; wait for the child's line.
        var reply = r.run.stdout
        for _ in 0..<50 where reply.isEmpty { usleep(100_000); reply = r.run.stdout }
        #expect(!reply.contains("permission_denied"), "refused: \(reply)")
        let end = Date().addingTimeInterval(5)
        while Date() < end, try c.channel("A").mode != "regulating" { usleep(100_000) }
        #expect(try c.channel("A").mode == "regulating")
    }

    @Test("credentials come from SO_PEERCRED and SO_PEERGROUPS of the connection itself")
    func peerCredentialsOfSocketPair() throws {
        var sv: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0)
        defer { close(sv[0]); close(sv[1]) }
        let c = try PeerCredentials.read(fd: sv[0])
        #expect(c.pid == getpid() && c.uid == geteuid() && c.gid == getegid())
        var n = getgroups(0, nil)
        var mine = [gid_t](repeating: 0, count: Int(max(n, 1)))
        n = getgroups(n, &mine)
        #expect(c.groups == Set(mine.prefix(Int(max(n, 0)))).union([getegid()]))
    }

    // MARK: finding 4 and 6 — finding the socket, and traps

    @Test("pressctl uses the system daemon's socket when /run/pressd exists, else the per-user one")
    func clientPathResolution() {
        #expect(SocketPath.resolveClient(environment: [:], systemDirectoryExists: true) == SocketPath.systemPath)
        #expect(SocketPath.resolveClient(environment: ["PRESSD_SOCKET": "/x/y.sock"], systemDirectoryExists: true) == "/x/y.sock")
        if geteuid() != 0 {
            #expect(SocketPath.resolveClient(environment: ["XDG_RUNTIME_DIR": "/run/user/7"], systemDirectoryExists: false) == "/run/user/7/pressd/pressd.sock")
        }
    }

    @Test("a per-user socket directory made by another user is refused, and its socket never receives a command")
    func trapInTmp() throws {
        guard Self.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to act as another user"); return }
        #expect(!FileManager.default.fileExists(atPath: SocketPath.systemDirectory),
                "this test needs a machine without an installed pressd (/run/pressd exists)")
        let trap = "/tmp/pressd-65534"
        try? FileManager.default.removeItem(atPath: trap)
        try FileManager.default.createDirectory(atPath: trap, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: trap) }
        // The "attacker" is uid 1 (daemon): a fake pressd that answers hello and then
        // records whatever it is sent.
        chown(trap, 1, 1)
        chmod(trap, 0o755)
        let record = trap + "/received"
        let fake = """
        import socket, os, sys
        s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1] + '/pressd.sock'); os.chmod(sys.argv[1] + '/pressd.sock', 0o777); s.listen(4)
        s.settimeout(3)
        try:
            c, _ = s.accept()
            c.sendall(b'{"hello":{"server":"pressd","version":"0.2.0","protocol":1,"methods":["set"],"channels":["A"],"backend":"simulator","max_message_bytes":65536}}\\n')
            data = c.recv(65536)
            open(sys.argv[1] + '/received', 'wb').write(data)
            c.sendall(b'{"id":1,"result":{"ok":true}}\\n')
        except socket.timeout:
            pass
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=1", "--regid=1", "--clear-groups", "/usr/bin/python3", "-c", fake, trap]
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: trap + "/pressd.sock") { usleep(20_000) }
        let r = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binDir + "/pressctl", "set", "3MPa", "-c", "A"],
                        env: ["PRESSD_SOCKET": "", "XDG_RUNTIME_DIR": "", "HOME": "/nonexistent"])
        #expect(r.run.status == 3, "\(r.run.stderr)")
        #expect(r.run.stderr.contains("belongs to") && r.run.stderr.contains(trap), "\(r.run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: record), "the fake socket received a command")
        // The same check, without processes.
        #expect(SocketPath.untrustedDirectoryReason(of: trap + "/pressd.sock") != nil || geteuid() == 1)
    }

    @Test("'permission denied' on the socket names the socket's real group and how to join it, or says to set socket_group when it is root's")
    func permissionDeniedMessage() throws {
        guard Self.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to act as another user"); return }
        // No socket_group: the socket is root's group; joining root is no advice.
        do {
            let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0600\"")])
            defer { d.cleanup() }
            _ = try d.client()
            chmod(d.dir, 0o755)
            let r = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binDir + "/pressctl", "status", "--socket", d.socket])
            #expect(r.run.status == 3)
            #expect(r.run.stderr.contains("permission denied") && r.run.stderr.contains("socket_group"), "\(r.run.stderr)")
            #expect(!r.run.stderr.contains("usermod -aG root"), "\(r.run.stderr)")
            #expect(!r.run.stderr.contains("not running"), "\(r.run.stderr)")
        }
        // socket_group = "nogroup" (as an installed system's "pressctl"): the message names it.
        do {
            let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0660\"\nsocket_group = \"nogroup\"")])
            defer { d.cleanup() }
            _ = try d.client()
            chmod(d.dir, 0o755)
            let r = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=1", "--clear-groups", binDir + "/pressctl", "status", "--socket", d.socket])
            #expect(r.run.status == 3)
            #expect(r.run.stderr.contains("usermod -aG nogroup"), "\(r.run.stderr)")
        }
    }

    // MARK: finding 6 — descriptors

    @Test("connections over daemon.max_connections get a 'busy' error; a freed slot is usable again")
    func connectionCap() throws {
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0660\"\nmax_connections = 4")])
        defer { d.cleanup() }
        var held: [ControlClient] = [try d.client()]
        for _ in 0..<3 { held.append(try ControlClient(path: d.socket)) }
        do {
            _ = try ControlClient(path: d.socket)
            Issue.record("a fifth connection was accepted")
        } catch {
            guard case .remote(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.code == .busy && e.message.contains("max_connections"))
        }
        #expect(try held[0].status().channels.count == 2, "held connections keep working")
        held.removeLast()
        var again: ControlClient?
        for _ in 0..<50 where again == nil { again = try? ControlClient(path: d.socket); if again == nil { usleep(20_000) } }
        #expect(again != nil)
    }

    @Test("at a low descriptor limit, a flood of connections is capped: no spin, the daemon keeps regulating and answers afterwards")
    func descriptorFlood() throws {
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0660\"\nmax_connections = 4096")],
                                  launcher: ["/usr/bin/prlimit", "--nofile=128:128", "--"])
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 3, unit: "MPa"), as: SetResult.self)
        var flood: [Int32] = []
        defer { for fd in flood { close(fd) } }
        for _ in 0..<200 {
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in let b = Array(d.socket.utf8); raw.copyBytes(from: b); raw[b.count] = 0 }
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            if rc == 0 { flood.append(s) } else { close(s) }
        }
        let pid = d.process.processIdentifier
        let cpu0 = cpuSeconds(pid)
        sleep(seconds: 2)
        let cpu1 = cpuSeconds(pid)
        #expect(cpu1 - cpu0 < 1.0, "pressd used \(cpu1 - cpu0) s of CPU in 2 s while the connections were held")
        #expect(try c.channel("A").mode == "regulating", "the held connection still answers")
        for fd in flood { close(fd) }
        flood.removeAll()
        var fresh: ControlClient?
        for _ in 0..<100 where fresh == nil { fresh = try? ControlClient(path: d.socket); if fresh == nil { usleep(50_000) } }
        #expect(fresh != nil, "a new connection is accepted once the flood is gone")
        #expect(d.process.isRunning)
    }

    @Test("an observer flooding the socket cannot lock an operator out: slots kept for operators, and a per-user limit")
    func floodByObserver() throws {
        guard Self.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to act as another user"); return }
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\"\nmax_connections = 8\nmax_connections_per_user = 5"),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = [\"@4242\"]\n\n[simulator]")])
        defer { d.cleanup() }
        _ = try d.client()
        chmod(d.dir, 0o755)
        // nobody (an observer) opens 10 connections and holds them; prints what each got.
        let flood = """
        import socket, sys, time
        got = []
        for i in range(10):
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(3)
            got.append((s, s.recv(200).decode()))
        print(sum(1 for _, l in got if l.startswith('{"hello"')), flush=True)
        time.sleep(6)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", flood, d.socket]
        let out = Pipe(); p.standardOutput = out
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.trimmingCharacters(in: .whitespacesAndNewlines) == "5", "the observer got \(line) connections (limit per user 5)")
        // Another observer takes one more (6 of 8), then the last 2 are for operators.
        let second = try run("/usr/bin/setpriv", ["--reuid=65533", "--regid=65533", "--clear-groups", binDir + "/pressctl", "status", "--socket", d.socket])
        #expect(second.run.status == 0, "\(second.run.stderr)")
        let op = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--groups=4242", binDir + "/pressctl", "release", "-c", "A", "--socket", d.socket])
        #expect(op.run.status == 0, "an operator was locked out: \(op.run.stderr)")
    }

    @Test("a peer that may not write cannot flood the audit log with refused requests")
    func refusedAuditFlood() throws {
        guard Self.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to act as another user"); return }
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\""),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = []\n\n[simulator]")])
        defer { d.cleanup() }
        _ = try d.client()
        chmod(d.dir, 0o755)
        let flood = """
        import socket, sys
        s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rwb'); f.readline()
        line = b'{"id":1,"method":"set","params":{"channel":"' + b'A' * 60000 + b'","value":5,"unit":"MPa"}}\\n'
        for i in range(300):
            f.write(line); f.flush(); f.readline()
        print("done", flush=True)
        """
        let r = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", flood, d.socket], timeout: 60)
        #expect(r.run.stdout.contains("done"), "\(r.run.stderr)")
        d.stop()
        let events = try PressLogProbe.events(dir: d.dir)
        let refused = events.filter { $0.detail.hasPrefix("REFUSED") }
        #expect(refused.count == 10, "\(refused.count) refused requests written")
        #expect(refused.allSatisfy { $0.detail.utf8.count < 512 })
        // The rest in one summary with the count (AuditFloodTests: many connections).
        #expect(events.contains { $0.uid == 65534 && $0.detail.hasPrefix("SUMMARY uid 65534: 290 refused requests") }, "\(events.filter { $0.detail.hasPrefix("SUMMARY") }.map(\.detail))")
    }

    @Test("a metrics port held by another program does not stop regulation; a metrics address off loopback is a configuration error")
    func metricsPortTaken() throws {
        // Hold a port on loopback.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET); addr.sin_addr.s_addr = inet_addr("127.0.0.1"); addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(s, 1)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0660\"\nmetrics = \"127.0.0.1:\(port)\"")])
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 3, unit: "MPa"), as: SetResult.self)
        sleep(seconds: 1)
        #expect(try c.channel("A").mode == "regulating")
        #expect(d.process.isRunning)
        d.stop()
        #expect(d.log.contains("daemon.metrics"), "\(d.log.suffix(500))")
        let text = try editedConfig("socket_mode = \"0660\"", "socket_mode = \"0660\"\nmetrics = \"0.0.0.0:9817\"")
        do { _ = try DaemonConfig.parse(text, file: "m.toml"); Issue.record("0.0.0.0 accepted") }
        catch { #expect(error.key == "daemon.metrics" && error.message.contains("loopback")) }
    }

    func cpuSeconds(_ pid: Int32) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return 0 }
        let f = s[s.index(after: close)...].split(separator: " ")
        // Fields after the command: state is [0]; utime and stime are fields 14 and 15 of stat(5).
        return (Double(f[11]) ?? 0) / 100 + (Double(f[12]) ?? 0) / 100
    }

    // MARK: finding 7 — one daemon per rig

    @Test("a second pressd on the same state directory refuses at once, names the holder's PID and writes nothing")
    func secondInstanceSameStateDir() throws {
        let d = try DaemonProcess()
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.call("set", SetParams(channel: "A", value: 3, unit: "MPa"), as: SetResult.self)
        sleep(seconds: 1)
        let before = try PressLogProbe.events(dir: d.dir).count
        let r = try run(binDir + "/pressd", ["--config", d.configPath, "--socket", d.dir + "/other.sock", "--state-dir", d.dir + "/state"], timeout: 10)
        #expect(!r.timedOut, "the second pressd kept running")
        #expect(r.run.status == 1)
        #expect(r.run.stderr.contains("PID \(d.process.processIdentifier)"), "\(r.run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/other.sock"))
        #expect(try c.channel("A").mode == "regulating")
        d.stop()
        let after = try PressLogProbe.events(dir: d.dir)
        // Only the first daemon's own stop events were added.
        #expect(!after.dropFirst(before).contains { $0.detail.contains("started") || $0.detail.contains("restored") }, "\(after.dropFirst(before).map(\.detail))")
    }

    @Test("a second pressd on the same Modbus device but another state directory refuses before opening it")
    func secondInstanceSameDevice() throws {
        let peer = try ModbusPeer(mode: "plant")
        defer { peer.stop() }
        let d = try DaemonProcess(configEdits: [], timeScale: 1, configOverride: try hardwareConfig(transport: peer.transport))
        defer { d.cleanup() }
        _ = try d.client(timeout: 20)
        let other = d.dir + "/other-state"
        let r = try run(binDir + "/pressd", ["--config", d.configPath, "--socket", d.dir + "/other.sock", "--state-dir", other], timeout: 10)
        #expect(!r.timedOut, "the second pressd kept running on the same device")
        #expect(r.run.status == 1)
        #expect(r.run.stderr.contains("in use by PID \(d.process.processIdentifier)"), "\(r.run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: other + "/runlog.sqlite"), "no state was read or written")
    }

    @Test("device locks: one identity per device however it is spelt; a second lock names this process")
    func deviceLockKeys() throws {
        func tcp(_ host: String, _ port: Int) -> DeviceConfig {
            DeviceConfig(name: "d", transport: .tcp(host: host, port: port), gpioChip: nil, unit: 1, timeout: 0.1, retries: 0, pollRate: 10)
        }
        #expect(InstanceLocks.resourceKey(for: tcp("localhost", 1502)) == InstanceLocks.resourceKey(for: tcp("127.0.0.1", 1502))
                || InstanceLocks.resourceKey(for: tcp("localhost", 1502)) == "modbus-tcp:::1:1502")
        var chip = tcp("x", 1); chip.transport = nil; chip.gpioChip = "0"
        var chip2 = chip; chip2.gpioChip = "/dev/gpiochip0"
        #expect(InstanceLocks.resourceKey(for: chip) == InstanceLocks.resourceKey(for: chip2))
        let key = "modbus-tcp:test-\(UUID().uuidString)"
        let a = InstanceLocks()
        try a.lockDevice("d", key: key)
        #expect(throws: InstanceLockError.deviceInUse(device: "e", resource: key, holderPID: getpid(), holderUID: geteuid())) {
            try InstanceLocks().lockDevice("e", key: key)
        }
        a.release()
        try InstanceLocks().lockDevice("e", key: key)
    }
}
