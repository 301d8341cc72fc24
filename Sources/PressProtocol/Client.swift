import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the client side of the control socket.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    /// Nothing listens at the path (daemon not running, or wrong path).
    case notRunning(path: String, reason: String)
    /// The socket exists but this user may not open it (not in its group).
    case permissionDenied(path: String)
    /// The socket's directory could be another user's trap (see `SocketPath`).
    case untrustedDirectory(path: String, reason: String)
    case pathTooLong(String)
    case io(String)
    case protocolViolation(String)
    /// The daemon answered with a structured error.
    case remote(ErrorBody)
    /// `pressctl -H`: ssh could not connect to or log in on the rig; `reason` is
    /// what ssh said (its standard error).
    case unreachable(host: String, reason: String)
    /// `pressctl -H`: a problem on the rig itself, found by its `pressctl bridge`
    /// (pressd not running, permission denied, …) or by its shell (pressctl missing).
    /// `code` is one of the JSON error codes (`not_running`, `permission_denied`, …).
    case onRig(host: String, code: String, message: String)

    public var description: String {
        switch self {
        case .notRunning(let p, let r): return "pressd is not running: cannot connect to \(p) (\(r))"
        case .permissionDenied(let p):
            let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "$USER"
            // The group the socket really has (daemon.socket_group), not an assumed one.
            var st = stat()
            let gid: gid_t? = stat(p, &st) == 0 ? st.st_gid : nil
            let group = gid.flatMap { getgrgid($0) }.map { String(cString: $0.pointee.gr_name) } ?? "pressctl"
            if gid == 0 {
                return "permission denied on \(p): pressd is running, but its socket belongs to group root; set daemon.socket_group (e.g. \"pressctl\") in pressd's configuration so that technicians can be given access"
            }
            return "permission denied on \(p): pressd is running, but only members of its socket's group (\(group)) may use it; ask an administrator to run 'sudo usermod -aG \(group) \(user)', then log out and in again (or run 'newgrp \(group)')"
        case .untrustedDirectory(let p, let r): return "refusing to use \(p): \(r)"
        case .pathTooLong(let p): return "socket path too long: \(p)"
        case .io(let m): return "control socket: \(m)"
        case .protocolViolation(let m): return "protocol error: \(m)"
        case .remote(let e): return "\(e.code.rawValue): \(e.message)"
        case .unreachable(let h, let r): return "cannot reach rig \(h) over ssh: \(r)"
        case .onRig(let h, _, let m): return "on rig \(h): \(m)"
        }
    }
}

/// A blocking client for the control socket: connect, read the hello, call methods,
/// read pushed events. One instance per thread.
public final class ControlClient {
    public let path: String
    public private(set) var hello: HelloResult?
    private let fd: Int32
    private var buffer = [UInt8]()
    private var nextID = 1

    /// Connects to `path` and reads the server's hello line.
    public convenience init(path: String, timeout: Double = 5) throws(ClientError) {
        try self.init(connected: ControlClient.connectSocket(path), path: path, timeout: timeout)
    }

    /// Takes over `fd`, a connected stream socket that leads to pressd by some other
    /// way (the SSH transport's socketpair, see `RemoteRig`), and reads the hello
    /// line. `path` names the far end in errors. The descriptor is closed on error
    /// and when the client goes away.
    public init(connected fd: Int32, path: String, timeout: Double = 5) throws(ClientError) {
        self.path = path
        self.fd = fd
        setTimeout(timeout)
        let line = try readLine()
        guard let h = try? ControlProtocol.decoder().decode(HelloMessage.self, from: line) else {
            // A daemon at its connection limit answers one error line instead of a hello.
            if let r = try? ControlProtocol.decoder().decode(Reply<OkResult>.self, from: line), let e = r.error { throw .remote(e) }
            // A `pressctl bridge` that could not reach the socket on its machine.
            if let b = try? ControlProtocol.decoder().decode(BridgeFailure.self, from: line) {
                throw .onRig(host: "", code: b.bridgeError.code, message: b.bridgeError.message)
            }
            throw .protocolViolation("first line is not a hello: \(String(decoding: line, as: UTF8.self))")
        }
        hello = h.hello
    }

    /// Opens a stream connection to the Unix socket at `path`.
    /// - Returns: the connected descriptor (close-on-exec).
    public static func connectSocket(_ path: String) throws(ClientError) -> Int32 {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw .io("socket(): \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(s); throw .pathTooLong(path) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(s)
            if e == EACCES || e == EPERM { throw .permissionDenied(path: path) }
            throw .notRunning(path: path, reason: String(cString: strerror(e)))
        }
        return s
    }

    /// Whatever must live as long as the connection (the ssh child of `RemoteRig`).
    public var transport: AnyObject?

    deinit { close(fd) }

    /// Sets the receive timeout, seconds (0 = wait forever).
    public func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends raw bytes (tests use this to send malformed lines).
    public func send(raw: [UInt8]) throws(ClientError) {
        var off = 0
        while off < raw.count {
            // MSG_NOSIGNAL: a closed connection is an error here, never a SIGPIPE.
            let n = raw[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("write: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Reads one line (without the newline).
    public func readLine() throws(ClientError) -> Data {
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { throw .io("connection closed by pressd") }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .io("timed out waiting for pressd") }
                throw .io("read: \(String(cString: strerror(errno)))")
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Calls `method` and returns its decoded result, or throws the remote error.
    public func call<P: Encodable, R: Codable>(_ method: String, _ params: P, as: R.Type = R.self) throws(ClientError) -> R {
        let id = nextID
        nextID += 1
        let data: Data
        do { data = try ControlProtocol.encoder().encode(Request(id: .int(id), method: method, params: params)) }
        catch { throw .protocolViolation("cannot encode request: \(error)") }
        try send(raw: Array(data) + [UInt8(ascii: "\n")])
        while true {
            let line = try readLine()
            // Skip pushed events that may interleave with replies.
            if let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any], obj["event"] != nil { continue }
            let reply: Reply<R>
            do { reply = try ControlProtocol.decoder().decode(Reply<R>.self, from: line) }
            catch { throw .protocolViolation("cannot decode reply to \(method): \(error)") }
            // An error without an id answers a request pressd could not read at all (one
            // over 64 KiB): it is this request's, there is no other in flight.
            if reply.id == nil, let e = reply.error { throw .remote(e) }
            guard reply.id == .int(id) else { continue }
            if let e = reply.error { throw .remote(e) }
            guard let r = reply.result else { throw .protocolViolation("reply has neither result nor error") }
            return r
        }
    }

    /// Reads the next pushed sample event. Throws the server's error when it drops the
    /// connection (`overloaded`: the events were not read for too long).
    public func nextEvent() throws(ClientError) -> SampleEvent {
        while true {
            let line = try readLine()
            if let e = try? ControlProtocol.decoder().decode(SampleEvent.self, from: line) { return e }
            if let r = try? ControlProtocol.decoder().decode(Reply<OkResult>.self, from: line), r.id == nil, let e = r.error { throw .remote(e) }
        }
    }
}
