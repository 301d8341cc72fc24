import Foundation
#if canImport(Glibc)
import Glibc
#endif

// `pressctl -H [user@]host[:port]`: a rig on another machine, reached the way
// `systemctl -H` and `docker -H ssh://` reach theirs. pressctl runs
//
//     ssh -xT [-p PORT] [user@]host pressctl bridge [--socket PATH]
//
// with the ssh child's standard input and output on one end of a socketpair, and
// speaks the ordinary protocol over the other end. On the rig, `pressctl bridge`
// connects to pressd's Unix socket as the logged-in user and copies bytes both ways
// (`SocketBridge`). No new listener, SSH's own authentication, and pressd authorises
// the remote user by SO_PEERCRED exactly as if they had typed the command on the rig.

/// A rig named on the command line: `host`, `user@host`, `host:port`, `user@host:port`,
/// or an IPv6 address in brackets (`[::1]:2222`).
public struct RigAddress: Equatable, Sendable, CustomStringConvertible {
    public var user: String?
    public var host: String
    public var port: Int?

    public init(user: String? = nil, host: String, port: Int? = nil) { self.user = user; self.host = host; self.port = port }

    /// Parses one rig. Throws a sentence for the usage line.
    public init(parsing text: String) throws {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if let at = rest.lastIndex(of: "@") {
            let u = rest[..<at]
            guard !u.isEmpty else { throw RigAddressError("'\(text)': nothing before '@' (write user@host)") }
            user = String(u)
            rest = rest[rest.index(after: at)...]
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw RigAddressError("'\(text)': '[' without ']'") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") { port = try RigAddress.port(rest.dropFirst(), text) }
            else if !rest.isEmpty { throw RigAddressError("'\(text)': unexpected '\(rest)' after ']'") }
        } else if let colon = rest.firstIndex(of: ":") {
            host = String(rest[..<colon])
            port = try RigAddress.port(rest[rest.index(after: colon)...], text)
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw RigAddressError("'\(text)': no host name") }
        // ssh would take a leading '-' as an option.
        guard !host.hasPrefix("-"), !(user ?? "").hasPrefix("-") else { throw RigAddressError("'\(text)': a host or user may not start with '-'") }
    }

    private static func port(_ s: Substring, _ text: String) throws -> Int {
        guard let p = Int(s), (1...65535).contains(p) else { throw RigAddressError("'\(text)': port '\(s)' is not a number from 1 to 65535") }
        return p
    }

    /// A comma-separated list of rigs (`-H rig1,rig2,alice@rig3:2222`).
    public static func list(_ text: String) throws -> [RigAddress] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: true).map { String($0) }
        guard !parts.isEmpty else { throw RigAddressError("-H needs a host: [user@]host[:port]") }
        return try parts.map { try RigAddress(parsing: $0) }
    }

    /// As written: `user@host:port`.
    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return (user.map { $0 + "@" } ?? "") + h + (port.map { ":\($0)" } ?? "")
    }

    /// ssh's destination argument, `user@host` (the port goes with `-p`).
    public var destination: String { (user.map { $0 + "@" } ?? "") + host }
}

public struct RigAddressError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// The line `pressctl bridge` writes instead of pressd's hello when it cannot reach
/// the socket on its machine: `{"bridge_error": {"code": "permission_denied", "message": "…"}}`.
public struct BridgeFailure: Codable, Sendable {
    public struct Body: Codable, Sendable {
        public var code: String
        public var message: String
    }
    public var bridgeError: Body
    public init(code: String, message: String) { bridgeError = Body(code: code, message: message) }
}

extension ClientError {
    /// The JSON error code of a connection problem (`not_running`, `permission_denied`, …).
    public var connectionCode: String {
        switch self {
        case .notRunning, .pathTooLong, .io: return "not_running"
        case .permissionDenied: return "permission_denied"
        case .untrustedDirectory: return "untrusted_directory"
        case .protocolViolation: return "protocol_error"
        case .remote(let e): return e.code.rawValue
        case .unreachable: return "unreachable"
        case .onRig(_, let code, _): return code
        }
    }
}

/// The rig side: `pressctl bridge` copies between its standard input/output and
/// pressd's socket until either side closes.
public enum SocketBridge {
    /// Connects to `socketPath` and copies `input` → socket and socket → `output`.
    /// When the input ends, the socket's sending side is shut down (pressd then closes
    /// the connection); when pressd closes, the bridge ends. If the socket cannot be
    /// reached, writes one `BridgeFailure` line on `output` and returns the error.
    /// - Returns: nil after a clean end, else the connection error.
    @discardableResult
    public static func run(socketPath: String, input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO) -> ClientError? {
        // A reader that went away is an error to see here, not a signal that kills.
        signal(SIGPIPE, SIG_IGN)
        let sock: Int32
        do { sock = try ControlClient.connectSocket(socketPath) } catch {
            report(error, to: output)
            return error
        }
        defer { close(sock) }
        var inputOpen = true
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: sock, events: Int16(POLLIN), revents: 0)]
            if inputOpen { fds.append(pollfd(fd: input, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 { if errno == EINTR { continue }; return .io("poll: \(String(cString: strerror(errno)))") }
            // pressd → output. POLLHUP with data still to read is read first.
            if fds[0].revents != 0 {
                let got = read(sock, &buffer, buffer.count)
                if got < 0 && errno == EINTR { continue }
                if got <= 0 { return nil }
                if !writeAll(output, buffer, got) { return nil }
            }
            // input → pressd.
            if inputOpen, fds[1].revents != 0 {
                let got = read(input, &buffer, buffer.count)
                if got < 0 && errno == EINTR { continue }
                if got <= 0 {
                    inputOpen = false
                    shutdown(sock, Int32(SHUT_WR))
                } else if !writeAll(sock, buffer, got) { return nil }
            }
        }
    }

    /// The failure line for the other end of the bridge.
    static func report(_ error: ClientError, to output: Int32) {
        let line = BridgeFailure(code: error.connectionCode, message: "\(error)")
        guard let data = try? ControlProtocol.encoder().encode(line) else { return }
        let bytes = Array(data) + [UInt8(ascii: "\n")]
        _ = writeAll(output, bytes, bytes.count)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ count: Int) -> Bool {
        var off = 0
        while off < count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, count - off) }
            if n < 0 { if errno == EINTR { continue }; return false }
            off += n
        }
        return true
    }
}

/// The client side of `pressctl -H`: starts ssh and hands back a `ControlClient`
/// speaking through it.
public enum RemoteRig {
    /// The ssh command and its own options: `$PRESSCTL_SSH` (or `--ssh-command`) split
    /// on spaces, else `ssh`. Tests point it at a client config with `ssh -F FILE`.
    public static func sshCommand(_ override: String?, environment env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let text = override ?? env["PRESSCTL_SSH"] ?? ""
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        return words.isEmpty ? ["ssh"] : words
    }

    /// The command run on the rig: `$PRESSCTL_REMOTE` (default `pressctl`), then
    /// `bridge [--socket PATH]`. ssh passes it to the remote user's shell as one
    /// string, so each word is quoted for a POSIX shell.
    public static func remoteCommand(socket: String?, environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let pressctl = env["PRESSCTL_REMOTE"].flatMap { $0.isEmpty ? nil : $0 } ?? "pressctl"
        var words = [pressctl, "bridge"]
        if let socket { words += ["--socket", socket] }
        return words.map(shellQuoted).joined(separator: " ")
    }

    /// The whole ssh argument vector. `batch` (a fleet) never asks for a password and
    /// gives up connecting after `connectTimeout` seconds.
    public static func arguments(for rig: RigAddress, socket: String?, ssh: [String], batch: Bool = false, connectTimeout: Int = 10,
                                 environment env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var a = ssh + ["-x", "-T", "-o", "ConnectTimeout=\(connectTimeout)"]
        if batch { a += ["-o", "BatchMode=yes"] }
        if let p = rig.port { a += ["-p", "\(p)"] }
        return a + ["--", rig.destination, remoteCommand(socket: socket, environment: env)]
    }

    static func shellQuoted(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Starts ssh to `rig` and reads pressd's hello through it.
    /// - Parameter timeout: how long to wait for the hello (ssh's login included) and
    ///   then for each answer.
    /// - Throws: `.unreachable` when ssh could not connect or log in, `.onRig` for a
    ///   problem found on the rig (pressctl missing, pressd not running, permission
    ///   denied on its socket), each with what ssh or the rig said.
    public static func connect(_ rig: RigAddress, socket: String?, ssh: [String], batch: Bool = false, timeout: Double = 60,
                               connectTimeout: Int = 10) throws(ClientError) -> ControlClient {
        let child = try SSHChild(arguments: arguments(for: rig, socket: socket, ssh: ssh, batch: batch, connectTimeout: connectTimeout))
        do {
            let client = try ControlClient(connected: child.takeLocalEnd(), path: "\(rig):\(socket ?? "(default socket)")", timeout: timeout)
            client.transport = child
            return client
        } catch {
            let waited = child.finish(within: 2)
            throw classify(error, rig: rig, exitStatus: waited, stderr: child.stderrText)
        }
    }

    /// Turns what went wrong while waiting for the hello into the error a person needs.
    /// `exitStatus` is ssh's exit status (nil: still running, killed; or killed by a signal).
    public static func classify(_ error: ClientError, rig: RigAddress, exitStatus: Int32?, stderr: String) -> ClientError {
        let said = stderr.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty && !$0.hasPrefix("Warning: Permanently added") && !$0.hasPrefix("Could not chdir to home directory") }
            .joined(separator: "; ")
        if case .onRig(_, let code, let message) = error { return .onRig(host: "\(rig)", code: code, message: message) }
        if case .remote = error { return error }
        // A shell that cannot find the command exits 127 ("command not found").
        if exitStatus == 127 || said.contains("command not found") || said.hasSuffix("not found") {
            let name = ProcessInfo.processInfo.environment["PRESSCTL_REMOTE"] ?? "pressctl"
            return .onRig(host: "\(rig)", code: "not_installed",
                          message: "\(name) is not installed there (or not on the PATH of an ssh session): install pressd's package on the rig, or set PRESSCTL_REMOTE to its path (the rig's shell said: \(said))")
        }
        if exitStatus == 255 || exitStatus == nil || !said.isEmpty {
            if exitStatus == nil, case .io(let m) = error, m.contains("timed out") {
                return .unreachable(host: "\(rig)", reason: said.isEmpty ? "no answer (ssh still trying); given up" : said)
            }
            return .unreachable(host: "\(rig)", reason: said.isEmpty ? "ssh ended without a word (\(error))" : said)
        }
        return .unreachable(host: "\(rig)", reason: "ssh exited with status \(exitStatus ?? -1) before pressd answered (\(error))")
    }
}

/// One ssh process: its standard input and output are one end of a socketpair, its
/// standard error another, read into memory (shown only when something fails). The
/// child is ended when this object goes away and when pressctl exits.
final class SSHChild: @unchecked Sendable {
    let pid: pid_t
    private var local: Int32
    private let lock = NSLock()
    private var errBytes = [UInt8]()
    private var reaped: Int32?
    private let errDone = DispatchSemaphore(value: 0)

    init(arguments: [String]) throws(ClientError) {
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw .io("socketpair: \(String(cString: strerror(errno)))")
        }
        // Standard error on a socketpair too: created close-on-exec atomically, so that a
        // fleet's concurrent spawns never inherit each other's descriptors.
        var ep: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ep) == 0 else {
            close(sv[0]); close(sv[1])
            throw .io("pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies; every other descriptor of ours has it.
        posix_spawn_file_actions_adddup2(&actions, sv[1], 0)
        posix_spawn_file_actions_adddup2(&actions, sv[1], 1)
        posix_spawn_file_actions_adddup2(&actions, ep[1], 2)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var p: pid_t = 0
        let rc = posix_spawnp(&p, arguments[0], &actions, nil, argv, environ)
        close(sv[1]); close(ep[1])
        guard rc == 0 else {
            close(sv[0]); close(ep[0])
            throw .unreachable(host: arguments.last ?? "", reason: "cannot run \(arguments[0]): \(String(cString: strerror(rc))) (is openssh-client installed? set PRESSCTL_SSH to another ssh)")
        }
        pid = p
        local = sv[0]
        let errFD = ep[0]
        SSHChild.register(p)
        Thread.detachNewThread { [self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(errFD, &chunk, chunk.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                self.lock.lock(); self.errBytes.append(contentsOf: chunk[..<n]); self.lock.unlock()
            }
            close(errFD)
            self.errDone.signal()
        }
    }

    /// The socket end pressctl talks through (owned by the caller from now on).
    func takeLocalEnd() -> Int32 { defer { local = -1 }; return local }

    /// What ssh wrote on its standard error so far.
    var stderrText: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: errBytes, as: UTF8.self)
    }

    /// Waits up to `seconds` for ssh to exit, else ends it.
    /// - Returns: its exit status, or nil when it had to be killed or died of a signal.
    func finish(within seconds: Double) -> Int32? {
        if local >= 0 { close(local); local = -1 }
        let end = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 { return reaped }
            if Date() >= end {
                kill(pid, SIGTERM)
                waitpid(pid, &status, 0)
                _ = errDone.wait(timeout: .now() + 1)
                SSHChild.unregister(pid)
                return nil
            }
            usleep(20_000)
        }
        SSHChild.unregister(pid)
        _ = errDone.wait(timeout: .now() + 1)
        // WIFEXITED / WEXITSTATUS
        guard status & 0x7f == 0 else { return nil }
        reaped = (status >> 8) & 0xff
        return reaped
    }

    deinit {
        if local >= 0 { close(local) }
        if SSHChild.unregister(pid) {
            kill(pid, SIGTERM)
            var st: Int32 = 0
            waitpid(pid, &st, 0)
        }
    }

    // Live ssh children, ended at exit (pressctl leaves through exit() on errors, where
    // no deinit runs) and on SIGINT/SIGTERM/SIGHUP.
    nonisolated(unsafe) private static var live = Set<pid_t>()
    private static let liveLock = NSLock()
    nonisolated(unsafe) private static var installed = false

    private static func register(_ pid: pid_t) {
        liveLock.lock(); defer { liveLock.unlock() }
        live.insert(pid)
        guard !installed else { return }
        installed = true
        atexit { SSHChild.endAll() }
        // A parent may have started pressctl with these blocked (a process spawned from
        // a Dispatch worker thread inherits its mask): unblocked, so that they end ssh too.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&unblock, sig) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { s in
                SSHChild.endAll()
                signal(s, SIG_DFL)
                raise(s)
            }
        }
    }

    @discardableResult
    private static func unregister(_ pid: pid_t) -> Bool {
        liveLock.lock(); defer { liveLock.unlock() }
        return live.remove(pid) != nil
    }

    /// Sends SIGTERM to every live ssh child. (From a signal handler: kill() is
    /// async-signal-safe; the set is only read.)
    private static func endAll() {
        for p in live { kill(p, SIGTERM) }
    }
}
