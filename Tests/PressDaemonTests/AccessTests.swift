import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

@Suite("Access control", .serialized)
struct AccessTests {
    @Test("policy: root and the daemon's user are admins; entries by uid, user, group and '*'")
    func policy() throws {
        var p = AccessPolicy()
        p.daemonUID = 990
        p.observers = AccessPolicy.Entry(anyone: true)
        p.operators = try AccessPolicy.entry(["1000", "@1500"]).get()
        p.admins = try AccessPolicy.entry(["root"]).get()
        #expect(p.role(uid: 0, gids: []) == .admin)
        #expect(p.role(uid: 990, gids: []) == .admin)
        #expect(p.role(uid: 1000, gids: [1000]) == .operator)
        #expect(p.role(uid: 2000, gids: [2000, 1500]) == .operator)
        #expect(p.role(uid: 2001, gids: [2001]) == .observer)
        p.observers = AccessPolicy.Entry()
        #expect(p.role(uid: 2001, gids: [2001]) == nil)
        #expect(throws: AccessError.self) { try AccessPolicy.entry(["no-such-user-pressd"]).get() }
        #expect(throws: AccessError.self) { try AccessPolicy.entry(["@no-such-group-pressd"]).get() }
    }

    @Test("an unknown user in [access] is a configuration error with line and key")
    func configError() throws {
        let t = try editedConfig("[simulator]", "[access]\noperators = [\"no-such-user-pressd\"]\n\n[simulator]")
        do { _ = try DaemonConfig.parse(t, file: "a.toml"); Issue.record("accepted") }
        catch {
            #expect(error.key == "access.operators")
            #expect(error.line == line(of: "operators = ", in: t))
            #expect(error.message.contains("no-such-user-pressd"))
        }
    }

    /// Runs pressctl as uid/gid 65534 (nobody) with no supplementary groups.
    func asNobody(_ args: [String], socket: String) throws -> Run {
        try runProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binDir + "/pressctl"] + args + ["--socket", socket])
    }

    @Test("over the socket: an observer may read but not write; an operator may write but not reload; refusals are audited")
    func socketRoles() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            Issue.record("needs root and setpriv (util-linux) to act as another user")
            return
        }
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\""),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = [\"@65534\"]\nadmins = []\n\n[simulator]")])
        defer { d.cleanup() }
        _ = try d.client()
        chmod(d.dir, 0o755)
        let st = try asNobody(["status", "--json"], socket: d.socket)
        #expect(st.status == 0, "\(st.stderr)")
        // nobody's primary group 65534 is an operator: set works, reload does not.
        let set = try asNobody(["set", "3MPa", "-c", "A"], socket: d.socket)
        #expect(set.status == 0, "\(set.stderr)")
        let reload = try asNobody(["reload"], socket: d.socket)
        #expect(reload.status == 1)
        #expect(reload.stderr.contains("permission_denied") && reload.stderr.contains("admin role") && reload.stderr.contains("uid 65534"))
        let sim = try asNobody(["sim", "-c", "A", "--force-bias", "5"], socket: d.socket)
        #expect(sim.status == 1 && sim.stderr.contains("permission_denied"))
        let tune = try asNobody(["tune", "-c", "A"], socket: d.socket)
        #expect(tune.status == 1 && tune.stderr.contains("permission_denied"), "\(tune.stderr)")
        d.stop()
        let log = try PressLogProbe.events(dir: d.dir)
        #expect(log.contains { $0.kind == "request" && $0.uid == 65534 && $0.detail.hasPrefix("REFUSED") && $0.detail.contains("reload") })
        #expect(log.contains { $0.kind == "request" && $0.uid == 65534 && $0.detail.contains("\"set\"") })
    }

    @Test("over the socket: without an operator entry, a write is refused and nothing moves")
    func observerOnly() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            Issue.record("needs root and setpriv (util-linux) to act as another user")
            return
        }
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\""),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = []\n\n[simulator]")])
        defer { d.cleanup() }
        let c = try d.client()
        chmod(d.dir, 0o755)
        let set = try asNobody(["set", "3MPa", "-c", "A"], socket: d.socket)
        #expect(set.status == 1)
        #expect(set.stderr.contains("set needs the operator role; uid 65534 is an observer"))
        #expect(try c.channel("A").mode == "released")
        #expect(try asNobody(["status"], socket: d.socket).status == 0)
    }
}

import PressLog
enum PressLogProbe {
    static func events(dir: String) throws -> [RunLogEvent] {
        try RunLog(path: dir + "/state/runlog.sqlite").events(since: 0, until: .infinity)
    }
}
