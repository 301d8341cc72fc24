import Foundation
import Logging
import NIOCore
import NIOPosix
import PressCore
import PressDrivers
import PressLog
import PressProtocol
import PressSim
#if canImport(Glibc)
import Glibc
#endif

/// What the server needs to know about the daemon.
public struct ServerContext: Sendable {
    public var version: String
    /// Loop seconds per wall-clock second (above 1 on a fast simulated rig): ages given
    /// in wall-clock time are this many times longer on the loop's clock.
    public var timeScale: Double = 1
    public var backend: BackendKind
    /// The channels' configuration in force now (limits, autotune settings): read at
    /// each request, so a reload is seen by the next one.
    public var currentChannels: @Sendable () -> [ChannelConfig]
    public var channels: [ChannelConfig] { currentChannels() }
    public var startNanos: UInt64
    /// How long a command may wait for the loop before `timeout`, s.
    public var commandTimeout: Double = 2
    public var maxSubscriptionsPerConnection = 8
    /// Per-peer bounds: requests in flight, buffers, the stall timeout (docs/protocol.md, "Limits").
    public var limits = PeerLimits()
    /// Most connections open at once (`daemon.max_connections`), and per uid.
    public var maxConnections = 256
    public var maxConnectionsPerUser = 32
    /// The run log, for exports and run metadata: read at each request (nil when
    /// disabled, or not open yet because it could not be opened at start).
    public var currentRunLog: @Sendable () -> RunLog? = { nil }
    public var runLog: RunLog? {
        get { currentRunLog() }
        set { currentRunLog = { newValue } }
    }
    /// Receives every state-changing request, with the peer's uid and pid.
    public var audit: @Sendable (RunLogEvent) -> Void = { _ in }
    /// Who may do what.
    public var access = AccessPolicy()
    /// Queues a reload of the configuration file (the `reload` method, like SIGHUP) and
    /// calls back, off the event loop, with its result.
    public var reload: @Sendable (@escaping @Sendable (Result<String, ConfigError>) -> Void) -> Void = { done in
        done(.failure(ConfigError(file: "-", line: nil, key: nil, message: "reload not available")))
    }
    /// Group to give the socket file, when pressd creates it.
    public var socketGroup: String?
    /// Hands a write to the run-log writer (calibrations, run metadata).
    public var store: @Sendable (StoreRequest) -> Void = { _ in }
    /// The channels' run metadata as last recorded, written or not.
    let runRecords = RunRecords()
    /// The budget of audit records for refused requests, shared by every connection.
    let auditThrottle = AuditThrottle()
    /// Whether the run log and the state file are being written.
    public var storage: @Sendable () -> [StorageInfo] = { [] }
    /// Health of the device connections (hardware backend).
    public var deviceHealth: @Sendable () -> [ModbusHealth] = { [] }

    public init(version: String, backend: BackendKind, channels: [ChannelConfig], startNanos: UInt64,
                runLog: RunLog? = nil, audit: @escaping @Sendable (RunLogEvent) -> Void = { _ in }) {
        self.version = version; self.backend = backend; self.currentChannels = { channels }; self.startNanos = startNanos
        self.runLog = runLog; self.audit = audit
    }
}

/// The control socket: newline-delimited JSON over a Unix stream socket.
/// See `docs/protocol.md`.
///
/// A ``PeerAcceptor`` thread accepts connections and reads each peer's credentials;
/// every connection then lives on the NIO event loop.
public final class ControlServer: @unchecked Sendable {
    public let path: String
    public let mode: Int
    let loop: ControlLoop
    let context: ServerContext
    let logger: Logger
    private let group: EventLoopGroup
    private var acceptor: PeerAcceptor?
    /// Writes the audit throttle's summaries every 5 s.
    private var auditSummaries: RepeatedTask?
    /// Subscription events encoded once per snapshot, shared by all connections.
    private let fanout = SampleFanout()
    /// Every connection lives on this one event loop, served fairly by `scheduler`.
    private let connectionLoop: EventLoop
    private let scheduler: PeerScheduler
    private var listenFD: Int32 = -1
    /// True when we created the socket file (not when systemd passed it to us).
    private var ownsPath = false
    /// Descriptors kept free for devices, the run log, reconnects and the metrics endpoint.
    static let reservedDescriptors = 64

    public init(path: String, mode: Int, loop: ControlLoop, context: ServerContext, group: EventLoopGroup, logger: Logger) {
        self.path = path; self.mode = mode; self.loop = loop; self.context = context
        self.group = group; self.logger = logger
        connectionLoop = group.next()
        scheduler = PeerScheduler(eventLoop: connectionLoop, limits: context.limits)
    }

    /// Errors binding the socket, each naming the path.
    public enum BindError: Error, CustomStringConvertible {
        case alreadyRunning(String)
        case directory(String, String)
        case bind(String, String)
        public var description: String {
            switch self {
            case .alreadyRunning(let p): return "another pressd is already listening on \(p)"
            case .directory(let p, let e): return "cannot use socket directory \(p): \(e)"
            case .bind(let p, let e): return "cannot bind control socket \(p): \(e)"
            }
        }
    }

    /// Binds the socket, or adopts `inheritedFD` when given (socket activation), and
    /// starts accepting.
    public func start(inheritedFD: Int32? = nil) async throws {
        if let fd = inheritedFD {
            listenFD = fd
            logger.info("control socket adopted from systemd", metadata: ["fd": "\(fd)"])
        } else {
            listenFD = try bindSocket()
            ownsPath = true
        }
        let cap = PeerAcceptor.effectiveCap(configured: context.maxConnections, reserve: Self.reservedDescriptors)
        if cap < context.maxConnections {
            logger.warning("connection cap lowered to keep descriptors for devices and the run log", metadata: [
                "configured": "\(context.maxConnections)", "cap": "\(cap)", "reserved": "\(Self.reservedDescriptors)"])
        }
        let access = context.access
        let acceptor = PeerAcceptor(listenFD: listenFD, maxConnections: cap, maxPerUser: context.maxConnectionsPerUser,
                                    reserved: min(16, cap / 4),
                                    privileged: { p in access.isPrivileged(p) },
                                    logger: logger) { [weak self] fd, peer in
            self?.adopt(fd, peer: peer)
        }
        self.acceptor = acceptor
        acceptor.start()
        let (throttle, logger, sink) = (context.auditThrottle, self.logger, context.audit)
        auditSummaries = group.next().scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
            throttle.flush(logger: logger, sink: sink)
        }
    }

    /// Hands an accepted connection to the event loop.
    private func adopt(_ fd: Int32, peer: PeerCredentials) {
        guard let acceptor else { close(fd); return }
        let (loop, context, logger, fanout, scheduler) = (self.loop, self.context, self.logger, self.fanout, self.scheduler)
        let limits = context.limits
        ClientBootstrap(group: connectionLoop)
            .channelOption(.writeBufferWaterMark, value: .init(low: limits.outputLowWater, high: limits.outputHighWater))
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ConnectionHandler(loop: loop, context: context, logger: logger, peer: peer,
                                                                                fanout: fanout, scheduler: scheduler))
                }
            }
            .withConnectedSocket(fd)
            .whenComplete { result in
                switch result {
                case .success(let ch): ch.closeFuture.whenComplete { _ in
                    acceptor.connectionClosed(uid: peer.uid)
                    scheduler.connectionClosed()
                }
                case .failure(let e):
                    // NIO closed the descriptor.
                    acceptor.connectionClosed(uid: peer.uid)
                    logger.warning("control socket: cannot adopt a connection", metadata: ["error": "\(e)", "uid": "\(peer.uid)"])
                }
            }
    }

    /// Creates the socket file: the directory must be ours (or root's) and writable by
    /// nobody else, and a live daemon already there is never displaced.
    private func bindSocket() throws -> Int32 {
        guard path.hasPrefix("/") else { throw BindError.bind(path, "not an absolute path") }
        let dir = LocalPath.directory(of: path)
        if !FileManager.default.fileExists(atPath: dir) {
            do throws(LocalPathError) { try LocalPath.makeDirectories(dir, mode: 0o750) }
            catch { throw BindError.directory(dir, "\(error)") }
        } else if geteuid() != 0, let why = SocketPath.untrustedDirectoryReason(of: path) {
            throw BindError.directory(dir, why)
        }
        if FileManager.default.fileExists(atPath: path) {
            if (try? ControlClient(path: path, timeout: 1)) != nil { throw BindError.alreadyRunning(path) }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BindError.bind(path, String(cString: strerror(errno))) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw BindError.bind(path, "path too long (\(bytes.count) bytes; a Unix socket path has at most \(MemoryLayout.size(ofValue: addr.sun_path) - 1))")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: bytes); raw[bytes.count] = 0 }
        // Bind with a tight umask so the file is never briefly open to everyone.
        let old = umask(0o177)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard rc == 0, listen(fd, 256) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw BindError.bind(path, e)
        }
        chmod(path, mode_t(mode))
        if let g = context.socketGroup, let gr = getgrnam(g), chown(path, UInt32.max, gr.pointee.gr_gid) != 0 {
            logger.warning("cannot give the control socket to group \(g)", metadata: ["error": "\(String(cString: strerror(errno)))"])
        }
        logger.info("control socket listening", metadata: ["path": "\(path)", "mode": "\(String(mode, radix: 8))"])
        return fd
    }

    /// Stops accepting and removes the socket file if we created it (a socket passed by
    /// systemd stays open and in place, so that activation keeps working).
    public func stop() async {
        acceptor?.stop()
        acceptor = nil
        auditSummaries?.cancel()
        context.auditThrottle.flush(final: true, logger: logger, sink: context.audit)
        if ownsPath {
            close(listenFD)
            unlink(path)
        }
        listenFD = -1
    }
}
