import Testing
@testable import PressProtocol

@Suite("pressctl -H: rig addresses, the ssh command line, errors a person can act on")
struct RemoteRigTests {
    @Test("host, user@host, host:port, user@host:port and [v6]:port parse", arguments: [
        ("rig1", nil, "rig1", nil), ("alice@rig1", "alice", "rig1", nil), ("rig1:2222", nil, "rig1", 2222),
        ("alice@rig1.lab:2222", "alice", "rig1.lab", 2222), ("bob@[::1]:22", "bob", "::1", 22), ("[fe80::1]", nil, "fe80::1", nil),
    ] as [(String, String?, String, Int?)])
    func parse(text: String, user: String?, host: String, port: Int?) throws {
        let r = try RigAddress(parsing: text)
        #expect(r == RigAddress(user: user, host: host, port: port))
        #expect(r.description == text)
    }

    @Test("malformed rigs are refused with the reason", arguments: ["@rig", "rig:", "rig:99999", "rig:ssh", "-oProxyCommand=x", "u@", "[::1"])
    func refuse(text: String) {
        #expect(throws: RigAddressError.self) { try RigAddress(parsing: text) }
    }

    @Test("a comma-separated list names a fleet")
    func list() throws {
        #expect(try RigAddress.list("rig1,alice@rig2:2200, rig3") == [RigAddress(host: "rig1"), RigAddress(user: "alice", host: "rig2", port: 2200), RigAddress(host: "rig3")])
        #expect(throws: RigAddressError.self) { try RigAddress.list(",") }
    }

    @Test("ssh gets -x -T, the port with -p, the destination after --, and a remote command quoted for the shell")
    func arguments() {
        let rig = try! RigAddress(parsing: "tech@rig2:2222")
        let a = RemoteRig.arguments(for: rig, socket: "/run/my rig/p.sock", ssh: ["ssh", "-F", "/tmp/cfg"], environment: [:])
        #expect(a == ["ssh", "-F", "/tmp/cfg", "-x", "-T", "-o", "ConnectTimeout=10", "-p", "2222", "--", "tech@rig2", "pressctl bridge --socket '/run/my rig/p.sock'"])
        let fleet = RemoteRig.arguments(for: RigAddress(host: "rig3"), socket: nil, ssh: ["ssh"], batch: true, connectTimeout: 4,
                                        environment: ["PRESSCTL_REMOTE": "/opt/press d/pressctl"])
        #expect(fleet == ["ssh", "-x", "-T", "-o", "ConnectTimeout=4", "-o", "BatchMode=yes", "--", "rig3", "'/opt/press d/pressctl' bridge"])
        #expect(RemoteRig.sshCommand(nil, environment: ["PRESSCTL_SSH": "ssh  -F /x/cfg"]) == ["ssh", "-F", "/x/cfg"])
        #expect(RemoteRig.sshCommand("myssh -v", environment: ["PRESSCTL_SSH": "ssh"]) == ["myssh", "-v"])
        #expect(RemoteRig.sshCommand(nil, environment: [:]) == ["ssh"])
    }

    @Test("ssh's failure, a missing pressctl and the bridge's report each become their own error, naming the rig")
    func classify() {
        let rig = try! RigAddress(parsing: "tech@rig2")
        let closed = ClientError.io("connection closed by pressd")
        let refused = RemoteRig.classify(closed, rig: rig, exitStatus: 255, stderr: "tech@rig2: Permission denied (publickey).\n")
        #expect(refused == .unreachable(host: "tech@rig2", reason: "tech@rig2: Permission denied (publickey)."))
        #expect("\(refused)" == "cannot reach rig tech@rig2 over ssh: tech@rig2: Permission denied (publickey).")
        // ssh ends its own messages with "\r\n": one line all the same.
        let refusedPort = RemoteRig.classify(closed, rig: rig, exitStatus: 255, stderr: "ssh: connect to host rig2 port 22: Connection refused\r\n")
        #expect("\(refusedPort)" == "cannot reach rig tech@rig2 over ssh: ssh: connect to host rig2 port 22: Connection refused")
        let missing = RemoteRig.classify(closed, rig: rig, exitStatus: 127, stderr: "Could not chdir to home directory /home/tech: No such file or directory\nbash: line 1: pressctl: command not found\n")
        #expect(missing.connectionCode == "not_installed")
        #expect("\(missing)".hasPrefix("on rig tech@rig2: pressctl is not installed there"))
        #expect("\(missing)".hasSuffix("(the rig's shell said: bash: line 1: pressctl: command not found)"), "\(missing)")
        let bridge = RemoteRig.classify(.onRig(host: "", code: "permission_denied", message: "permission denied on /run/pressd/pressd.sock: …"),
                                        rig: rig, exitStatus: 3, stderr: "pressctl bridge: permission denied …")
        #expect(bridge == .onRig(host: "tech@rig2", code: "permission_denied", message: "permission denied on /run/pressd/pressd.sock: …"))
        let hung = RemoteRig.classify(.io("timed out waiting for pressd"), rig: rig, exitStatus: nil, stderr: "")
        #expect(hung.connectionCode == "unreachable")
    }
}
