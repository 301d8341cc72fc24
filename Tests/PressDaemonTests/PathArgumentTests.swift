import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// Issue 25, finding 6: `pressd --socket s` crashed (SIGILL in Foundation's path
/// handling) and `--socket pressd.sock` stopped with "cannot use socket directory : …",
/// naming no directory. Relative paths on the command line are resolved against the
/// working directory; relative paths in the configuration are refused naming the key;
/// every path error names the path.
@Suite("Socket and state paths given relative or wrong", .serialized)
struct PathArgumentTests {
    /// Runs pressd in `cwd` with `args` until its socket answers (or it exits), then
    /// stops it: (exit status or nil when it had to be stopped, terminated by a signal, stderr).
    func runPressd(cwd: String, _ args: [String], socket: String?, timeout: Double = 15) throws -> (status: Int32, signaled: Bool, stderr: String, answered: Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binDir + "/pressd")
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.environment = ProcessInfo.processInfo.environment.filter { $0.key != "PRESSD_SOCKET" }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var answered = false
        let end = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < end {
            if let s = socket, let c = try? ControlClient(path: s), (try? c.status()) != nil { answered = true; break }
            usleep(50_000)
        }
        if p.isRunning { p.terminate() }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, p.terminationReason == .uncaughtSignal, stderr, answered)
    }

    func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-path-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try defaultConfigText().write(toFile: dir + "/p.toml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test("--socket s and --socket pressd.sock (relative, no directory): resolved against the working directory, no crash; --state-dir too")
    func relativeOnCommandLine() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["s", "pressd.sock"] {
            let r = try runPressd(cwd: dir, ["--config", "p.toml", "--socket", name, "--state-dir", "st-\(name)"], socket: dir + "/" + name)
            #expect(!r.signaled, "pressd --socket \(name) crashed: \(r.stderr.suffix(600))")
            #expect(r.answered, "pressd --socket \(name) did not listen on \(dir)/\(name): \(r.stderr.suffix(600))")
            #expect(r.stderr.contains("path=\(dir)/\(name)"), "the socket is logged by its absolute path: \(r.stderr.suffix(600))")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/st-\(name)/runlog.sqlite"))
            #expect(r.stderr.contains("\(dir)/st-\(name)/runlog.sqlite"), "the run log is logged by its absolute path: \(r.stderr.suffix(600))")
        }
    }

    @Test("a socket directory that cannot be made, and a socket path too long: the error names the path, exit 1, no crash")
    func unusablePaths() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x".write(toFile: dir + "/afile", atomically: true, encoding: .utf8)
        let r = try runPressd(cwd: dir, ["--config", "p.toml", "--socket", "afile/sub/p.sock", "--state-dir", "st"], socket: nil)
        #expect(!r.signaled && r.status == 1, "status \(r.status): \(r.stderr.suffix(600))")
        #expect(r.stderr.contains("\(dir)/afile/sub"), "the directory is not named: \(r.stderr.suffix(600))")
        let long = String(repeating: "d", count: 120) + ".sock"
        let l = try runPressd(cwd: dir, ["--config", "p.toml", "--socket", long, "--state-dir", "st"], socket: nil)
        #expect(!l.signaled && l.status == 1, "status \(l.status): \(l.stderr.suffix(600))")
        #expect(l.stderr.contains("\(dir)/\(long)") && l.stderr.contains("too long"), "\(l.stderr.suffix(600))")
        let s = try runPressd(cwd: dir, ["--config", "p.toml", "--socket", "s.sock", "--state-dir", "afile/state"], socket: nil)
        #expect(!s.signaled && s.status == 1, "status \(s.status): \(s.stderr.suffix(600))")
        #expect(s.stderr.contains("\(dir)/afile/state"), "the state directory is not named: \(s.stderr.suffix(600))")
    }

    @Test("relative daemon.socket and daemon.state_dir in the configuration are refused naming the key")
    func relativeInConfig() throws {
        for (key, line) in [("daemon.socket", "socket = \"pressd.sock\"\n"), ("daemon.state_dir", "state_dir = \"state\"\n")] {
            let text = try editedConfig("socket_mode = \"0660\"\n", "socket_mode = \"0660\"\n" + line)
            do {
                _ = try DaemonConfig.parse(text, file: "rel.toml")
                Issue.record("\(key) relative was accepted")
            } catch {
                #expect(error.key == key && error.message.contains("absolute"), "\(error)")
            }
        }
    }

    @Test("paths are made absolute against the working directory")
    func absolutePaths() {
        #expect(LocalPath.absolute("s", cwd: "/w") == "/w/s")
        #expect(LocalPath.absolute("./a/../b.sock", cwd: "/w/x") == "/w/x/b.sock")
        #expect(LocalPath.absolute("/run/pressd/pressd.sock", cwd: "/w") == "/run/pressd/pressd.sock")
        #expect(LocalPath.absolute("../s", cwd: "/") == "/s")
        #expect(LocalPath.directory(of: "/s") == "/")
        #expect(LocalPath.directory(of: "/a/b/s.sock") == "/a/b")
    }
}
