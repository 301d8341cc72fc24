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

/// One framed input: a complete line, or the notice that a line was too long (its
/// bytes were discarded up to the next newline).
enum Frame {
    case line(ByteBuffer)
    case tooLong(Int)
}

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

/// Answers one connection. Everything here runs on the connection's event loop.
///
/// Bytes read are kept in the connection's own input buffer (at most
/// ``PeerLimits/inputBytes`` before it stops being read); its complete lines are served
/// one at a time by the server's ``PeerScheduler``, and only while the connection's
/// unsent output is under the high-water mark, its requests in flight under
/// ``PeerLimits/inFlightPerConnection`` and its uid's under
/// ``PeerLimits/inFlightPerUser``. A connection whose unsent output stays above the mark
/// for ``PeerLimits/stallTimeout`` is dropped: one `overloaded` error line, a journal
/// record with the uid and pid, then closed.
final class ConnectionHandler: ChannelInboundHandler, ScheduledPeer, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let loop: ControlLoop
    let ctx: ServerContext
    let logger: Logger
    var subscriptions: [Int: RepeatedTask] = [:]
    private var nextSubscription = 1
    let encoder = ControlProtocol.encoder()
    private let decoderImpl = RequestDecoder()

    /// The peer's credentials, read once when the connection was accepted.
    let peer: PeerCredentials?
    private let fanout: SampleFanout
    /// Authorisation and the audit trail for this connection's requests.
    private var gate: RequestGate

    private let scheduler: PeerScheduler
    private var limits: PeerLimits { scheduler.limits }
    let uid: UInt32
    /// Operators, admins and root: served first, no per-uid limit.
    let privileged: Bool
    var queued = false
    private var handlerContext: ChannelHandlerContext?
    /// Bytes read and not yet framed, and the next frame taken from them.
    private var input: ByteBuffer?
    private var framer = LineFramer(maxLength: ControlProtocol.maxMessageBytes)
    private var pendingFrame: Frame?
    /// Whether the channel is being read (autoRead).
    private var reading = true
    private var inFlightHere = 0
    private var flights: [Int: FlightTicket] = [:]
    private var nextFlight = 0
    /// Fires ``overloaded()`` when the unsent output stays above the mark too long.
    private var stall: Scheduled<Void>?
    /// Dropped: nothing more is read, served or sent but the `overloaded` line.
    private(set) var dropping = false

    init(loop: ControlLoop, context: ServerContext, logger: Logger, peer: PeerCredentials?, fanout: SampleFanout, scheduler: PeerScheduler) {
        self.loop = loop; self.ctx = context; self.logger = logger; self.peer = peer; self.fanout = fanout; self.scheduler = scheduler
        gate = RequestGate(peer: peer, access: context.access, logger: logger, sink: context.audit, throttle: context.auditThrottle)
        uid = peer?.uid ?? UInt32.max
        privileged = peer.map(context.access.isPrivileged) ?? false
    }

    func handlerAdded(context: ChannelHandlerContext) { handlerContext = context }
    func handlerRemoved(context: ChannelHandlerContext) { handlerContext = nil }

    func channelActive(context: ChannelHandlerContext) {
        let hello = HelloMessage(hello: helloResult())
        send(hello, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for (_, t) in subscriptions { t.cancel() }
        subscriptions.removeAll()
        stall?.cancel()
        dropping = true
        input = nil
        pendingFrame = nil
        // Requests still waiting for the loop or a worker no longer count against the uid.
        for (_, f) in flights { f.settle() }
        context.fireChannelInactive()
    }

    /// A client that does not read its replies stops being read from and served (its
    /// requests cannot pile up replies), and is dropped if that lasts.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        updateReading(context)
        if context.channel.isWritable {
            stall?.cancel()
            stall = nil
            scheduler.ready(self)
        } else if stall == nil, !dropping {
            let ctxBox = NIOLoopBound(context, eventLoop: context.eventLoop)
            stall = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(limits.stallTimeout * 1e9))) { [self] in
                stall = nil
                overloaded(ctxBox.value)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func helloResult() -> HelloResult {
        HelloResult(server: "pressd", version: ctx.version, protocol: ControlProtocol.version, methods: ControlProtocol.methods,
                    channels: ctx.channels.map(\.name), backend: ctx.backend.rawValue, maxMessageBytes: ControlProtocol.maxMessageBytes)
    }

    func send<T: Encodable>(_ value: T, context: ChannelHandlerContext) {
        guard !dropping, var data = try? encoder.encode(value) else { return }
        data.append(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: data)), promise: nil)
    }

    func reply<R: Codable & Sendable>(_ id: RequestRef, _ result: R, context: ChannelHandlerContext) {
        send(Reply(id: id.id, result: result), context: context)
        settle(id, nil)
    }

    func fail(_ id: RequestRef, _ code: ErrorCode, _ message: String, context: ChannelHandlerContext) {
        send(Reply<OkResult>(id: id.id, error: ErrorBody(code, message)), context: context)
        settle(id, ErrorBody(code, message))
    }

    /// Writes an audited request's record with its outcome, once, and ends its flight.
    private func settle(_ ref: RequestRef, _ error: ErrorBody?) {
        ref.flight?.settle()
        guard let t = ref.audit, t.settle() else { return }
        gate.record(t.spec, channel: t.channel, request: t.bytes, outcome: error)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !dropping else { return }
        var bytes = unwrapInboundIn(data)
        if input == nil { input = bytes } else { input!.writeBuffer(&bytes) }
        updateReading(context)
        scheduler.ready(self)
    }

    /// Whether a complete request is here and the connection may be served now.
    var servable: Bool {
        guard !dropping, let c = handlerContext, c.channel.isActive, c.channel.isWritable,
              inFlightHere < limits.inFlightPerConnection, scheduler.mayStart(self) else { return false }
        if pendingFrame == nil, input != nil { pendingFrame = framer.next(&input!) }
        return pendingFrame != nil
    }

    /// Serves the next request (called by the scheduler).
    func serveOne() {
        guard let context = handlerContext, let frame = pendingFrame else { return }
        pendingFrame = nil
        switch frame {
        case .tooLong(let n):
            fail(.anonymous, .invalidRequest, "message of \(n) bytes exceeds the limit of \(ControlProtocol.maxMessageBytes) bytes", context: context)
        case .line(let buffer):
            let bytes = Data(buffer.readableBytesView)
            if !bytes.allSatisfy({ $0 == 32 || $0 == 9 }) { // a blank line is ignored
                handle(bytes, flight: startFlight(), context: context)
            }
        }
        updateReading(context)
    }

    /// Counts a request in flight, here and against the uid, until its reply is written.
    private func startFlight() -> FlightTicket {
        let n = nextFlight
        nextFlight += 1
        inFlightHere += 1
        scheduler.started(uid: uid)
        let ticket = FlightTicket { [self] in
            flights[n] = nil
            inFlightHere -= 1
            scheduler.finished(uid: uid)
            scheduler.ready(self)
        }
        flights[n] = ticket
        return ticket
    }

    /// Reads while the connection is writable and its input buffer under the limit.
    private func updateReading(_ context: ChannelHandlerContext) {
        if let r = input?.readerIndex, r > 64 * 1024 { input!.discardReadBytes() }
        let want = !dropping && context.channel.isWritable && (input?.readableBytes ?? 0) < limits.inputBytes
        guard want != reading else { return }
        reading = want
        context.channel.setOption(ChannelOptions.autoRead, value: want).whenComplete { _ in }
    }

    /// Drops a connection whose peer has not read its replies for the stall timeout:
    /// one `overloaded` error line after what it was already sent, a journal record with
    /// the uid and pid, and the connection closed once the peer has read that line (or
    /// after ``PeerLimits/dropGrace``). Its buffers go with it.
    private func overloaded(_ context: ChannelHandlerContext) {
        guard !dropping, context.channel.isActive, !context.channel.isWritable else { return }
        let unsent = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? -1
        dropping = true
        input = nil
        pendingFrame = nil
        for (_, t) in subscriptions { t.cancel() }
        subscriptions.removeAll()
        updateReading(context)
        logger.warning("control socket: dropped a client that does not read its replies", metadata: [
            "uid": "\(peer.map { String($0.uid) } ?? "?")", "pid": "\(peer.map { String($0.pid) } ?? "?")",
            "stall_timeout_s": "\(limits.stallTimeout)", "unsent_bytes": "\(unsent)"])
        let body = ErrorBody(.overloaded, "pressd dropped this connection: its replies went unread for \(limits.stallTimeout) s with more than \(limits.outputHighWater / 1024) KiB waiting (daemon.client_stall_timeout_s); read replies as they come")
        guard var data = try? encoder.encode(Reply<OkResult>(id: nil, error: body)) else { return context.close(promise: nil) }
        data.append(UInt8(ascii: "\n"))
        let closeOnce = Once()
        let ctxBox = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: data))).whenComplete { _ in
            if closeOnce.fire() { ctxBox.value.close(promise: nil) }
        }
        context.eventLoop.scheduleTask(in: .nanoseconds(Int64(limits.dropGrace * 1e9))) {
            if closeOnce.fire() { ctxBox.value.close(promise: nil) }
        }
    }

    /// Decode → authorise and audit → dispatch. Each step's rules live in one place:
    /// ``RequestDecoder`` and ``MethodTable``, ``RequestGate``, SocketCommands.swift.
    private func handle(_ bytes: Data, flight: FlightTicket, context: ChannelHandlerContext) {
        let (id, method, result) = decoderImpl.decode(bytes)
        let spec = method.flatMap { MethodTable.byName[$0] }
        let ref = RequestRef(id: id, flight: flight)
        switch result {
        case .failure(let e):
            // A state-changing request refused at decoding is in the audit trail too.
            if let spec, spec.audited { gate.record(spec, channel: nil, request: bytes, outcome: e) }
            fail(ref, e.code, e.message, context: context)
        case .success(let command):
            guard let spec else { return fail(ref, .internalError, "method without a row in the method table", context: context) }
            if let refusal = gate.admit(spec, command, request: bytes) { return fail(ref, .permissionDenied, refusal, context: context) }
            // Audited requests are recorded with their outcome, when the reply goes out.
            let ticket = spec.audited ? AuditTicket(spec: spec, channel: command.channel, bytes: bytes) : nil
            dispatch(command, id: RequestRef(id: id, audit: ticket, flight: flight), context: context)
        }
    }

    /// One line per method: the handlers are in SocketCommands.swift.
    private func dispatch(_ command: Command, id: RequestRef, context: ChannelHandlerContext) {
        switch command {
        case .hello: reply(id, helloResult(), context: context)
        case .status(let p): status(p, id: id, context: context)
        case .set(let p): setpoint(p, id: id, context: context)
        case .hold(let p): holdOrRelease(p, hold: true, id: id, context: context)
        case .release(let p): holdOrRelease(p, hold: false, id: id, context: context)
        case .ack(let p): acknowledge(p, id: id, context: context)
        case .subscribe(let p): subscribe(p, id: id, context: context)
        case .unsubscribe(let p): unsubscribe(p, id: id, context: context)
        case .programStart(let p): programStart(p, id: id, context: context)
        case .programPause(let p): programControl(p, .pause, id: id, context: context)
        case .programResume(let p): programControl(p, .resume, id: id, context: context)
        case .programStop(let p): programControl(p, .stop, id: id, context: context)
        case .programStatus(let p): programStatus(p, id: id, context: context)
        case .logExport(let p): logExport(p, id: id, context: context)
        case .logEvents(let p): logEvents(p, id: id, context: context)
        case .pushSignals(let p): pushSignals(p, id: id, context: context)
        case .sweeps(let p): sweeps(p, id: id, context: context)
        case .runSet(let p): runSet(p, id: id, context: context)
        case .runGet(let p): runGet(p, id: id, context: context)
        case .reload: reload(id: id, context: context)
        case .calibrate(let p): calibrate(p, id: id, context: context)
        case .tune(let p): tune(p, id: id, context: context)
        case .sweep(let p): sweep(p, id: id, context: context)
        case .supervisor(let p): supervisor(p, id: id, context: context)
        case .simInject(let p): simInject(p, id: id, context: context)
        }
    }

    func channelIndex(_ name: String) -> Int? { ctx.channels.firstIndex { $0.name == name } }

    /// Runs `work` (SQLite) on a worker thread, never on the event loop, and replies
    /// with its result back on the event loop.
    func offload<R: Codable & Sendable>(_ id: RequestRef, _ method: String, context: ChannelHandlerContext,
                                                _ work: @escaping @Sendable () throws -> R) {
        let eventLoop = context.eventLoop
        let ctxBox = NIOLoopBound(context, eventLoop: eventLoop)
        DispatchQueue.global().async {
            let result = Result { try work() }
            eventLoop.execute {
                switch result {
                case .success(let v): self.reply(id, v, context: ctxBox.value)
                case .failure(let e): self.fail(id, .internalError, "\(method): \(e)", context: ctxBox.value)
                }
            }
        }
    }

    /// Streams the samples of [since, until) as CSV chunks, one batch at a time, each
    /// sent only after the previous one was written (the client's reading paces it).
    func exportLog(_ log: RunLog, _ p: LogExportParams, id: RequestRef, context: ChannelHandlerContext) {
        let eventLoop = context.eventLoop
        let ctxBox = NIOLoopBound(context, eventLoop: eventLoop)
        let batch = 2000
        @Sendable func step(from since: Double, sent: Int, header: Bool) {
            DispatchQueue.global().async {
                let rows: [LogSample]
                do { rows = try log.samples(since: since, until: p.until, channel: p.channel, limit: batch) }
                catch {
                    eventLoop.execute { self.fail(id, .internalError, "log_export: \(error)", context: ctxBox.value) }
                    return
                }
                // Rows sharing the last timestamp may straddle batches: stop before it
                // unless the batch is short, and start the next batch there.
                let cut = rows.count == batch ? rows.last.flatMap { last in rows.first?.time != last.time ? last.time : nil } : nil
                let chunk = cut.map { t in rows.filter { $0.time < t } } ?? rows
                let next = cut ?? p.until
                let csv = (header ? RunLog.csvHeader + "\n" : "") + chunk.map { RunLog.csvLine($0) + "\n" }.joined()
                eventLoop.execute {
                    let context = ctxBox.value
                    guard context.channel.isActive, !self.dropping else { return }
                    guard var data = try? self.encoder.encode(LogChunkEvent(id: id.id, csv: csv)) else { return }
                    data.append(UInt8(ascii: "\n"))
                    let done = context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(bytes: data)))
                    let total = sent + chunk.count
                    done.whenSuccess {
                        if next < p.until { step(from: next, sent: total, header: false) }
                        else { self.reply(id, LogExportResult(rows: total), context: ctxBox.value) }
                    }
                }
            }
        }
        step(from: p.since, sent: 0, header: true)
    }

    func unknownChannel(_ id: RequestRef, _ name: String, context: ChannelHandlerContext) {
        fail(id, .unknownChannel, "no channel '\(name)' (channels: \(ctx.channels.map(\.name).joined(separator: ", ")))", context: context)
    }

    /// Hands a command to the loop and replies when it answers, or with `timeout`.
    /// `map` turns the loop's answer into a result; nil means "use the generic mapping".
    /// Submits a command whose answer is just "done": `{"channel", "state"}`.
    func submitAction(_ command: LoopCommand, channel: String, state: String, id: RequestRef, method: String,
                              context: ChannelHandlerContext) {
        submit(command, id: id, method: method, context: context) { r in
            if case .ok = r { return .success(ActionResult(channel: channel, state: state)) }
            return nil
        }
    }

    func submit<R: Codable & Sendable>(_ command: LoopCommand, id: RequestRef, method: String, context: ChannelHandlerContext,
                                    map: @escaping @Sendable (LoopReply) -> Result<R, ErrorBody>?) {
        let eventLoop = context.eventLoop
        let once = Once()
        let ctxBox = NIOLoopBound(context, eventLoop: eventLoop)
        let timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(ctx.commandTimeout * 1000))) { [self] in
            guard once.fire() else { return }
            fail(id, .timeout, "\(method): the control loop did not answer within \(ctx.commandTimeout) s", context: ctxBox.value)
        }
        let pending = PendingCommand(command) { [self] answer in
            eventLoop.execute {
                guard once.fire() else { return }
                timeout.cancel()
                let context = ctxBox.value
                switch map(answer) ?? Self.genericError(answer, method: method) {
                case .success(let r): self.reply(id, r, context: context)
                case .failure(let e): self.fail(id, e.code, e.message, context: context)
                }
            }
        }
        guard loop.inbox.offer(pending) else {
            timeout.cancel()
            _ = once.fire()
            return fail(id, .busy, "\(method): the control loop's inbox is full (\(loop.inbox.capacity) commands); retry", context: context)
        }
        if method != "sim_inject" && method != "push_signals" {
            logger.info("command accepted", metadata: ["method": "\(method)", "id": "\(id.id?.description ?? "-")"])
        }
    }

    static func genericError<R>(_ answer: LoopReply, method: String) -> Result<R, ErrorBody> {
        switch answer {
        case .rejected(.outOfRange(let v, let lo, let hi)):
            return .failure(ErrorBody(.outOfRange, "\(method): \(fmt3(v)) MPa is outside \(lo)…\(hi) MPa"))
        case .rejected(.faultLatched(let codes)):
            return .failure(ErrorBody(.faultLatched, "\(method): refused while faults are latched (\(codes.map(\.rawValue).joined(separator: ", "))); clear the cause and acknowledge with 'ack'"))
        case .rejected(.invalidRamp(let r)):
            return .failure(ErrorBody(.invalidParams, "\(method): ramp \(r) MPa/s is outside \(RampRate.minimum)…\(RampRate.maximum) MPa/s (a slower ramp would never arrive; a faster one is a step: leave --ramp out)"))
        case .unavailable(let m):
            return .failure(ErrorBody(.unavailable, "\(method): \(m)"))
        case .rejected(.noProgram(let m)):
            return .failure(ErrorBody(.noProgram, "\(method): \(m)"))
        case .rejected(.invalidProgram(let step, let m)):
            return .failure(ErrorBody(.invalidProgram, "\(method): step \(step + 1): \(m)"))
        case .rejected(.unsafe(let m)):
            return .failure(ErrorBody(.refused, "\(method): \(m)"))
        default:
            return .failure(ErrorBody(.internalError, "\(method): unexpected answer from the control loop"))
        }
    }

    func subscribe(_ p: SubscribeParams, id: RequestRef, context: ChannelHandlerContext) {
        guard ControlProtocol.subscriptionRateRange.contains(p.rateHz) else {
            let r = ControlProtocol.subscriptionRateRange
            return fail(id, .invalidParams, "subscribe: rate_hz \(p.rateHz) outside \(r.lowerBound)…\(r.upperBound)", context: context)
        }
        if let names = p.channels, let bad = names.first(where: { channelIndex($0) == nil }) {
            return unknownChannel(id, bad, context: context)
        }
        guard subscriptions.count < ctx.maxSubscriptionsPerConnection else {
            return fail(id, .invalidParams, "subscribe: at most \(ctx.maxSubscriptionsPerConnection) subscriptions per connection", context: context)
        }
        let sub = nextSubscription
        nextSubscription += 1
        reply(id, SubscribeResult(subscription: sub, rateHz: p.rateHz), context: context)
        let only = p.channels.map(Set.init)
        let period = TimeAmount.nanoseconds(Int64(1e9 / p.rateHz))
        let ctxBox = NIOLoopBound(context, eventLoop: context.eventLoop)
        let state = SubscriptionState()
        // Drop policy: the event is built from the latest snapshot when it is due; if
        // the client's socket buffer is above the high-water mark the event is not
        // written and counted in `dropped` of the next one that is.
        subscriptions[sub] = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: period) { [self] _ in
            let context = ctxBox.value
            guard !dropping, let snap = loop.snapshots.latest(), snap.time != state.lastTime else { return }
            guard context.channel.isWritable else { state.dropped += 1; return }
            state.lastTime = snap.time
            let channels = fanout.channelsJSON(snap, configs: ctx.channels, only: only)
            context.writeAndFlush(wrapOutboundOut(SampleFanout.eventLine(channelsJSON: channels, subscription: sub, dropped: state.dropped,
                                                                         allocator: context.channel.allocator)), promise: nil)
            state.dropped = 0
        }
    }
}

/// A subscription's counters. Touched only on its connection's event loop.
final class SubscriptionState: @unchecked Sendable {
    var dropped = 0
    var lastTime = -1.0
}

/// Fires at most once. Only used on one event loop.
final class Once: @unchecked Sendable {
    private var done = false
    func fire() -> Bool { if done { return false }; done = true; return true }
}

/// A program runner as the wire shows it.
func programInfo(_ r: ProgramRunner) -> ProgramInfo {
    ProgramInfo(name: r.program.name, state: r.state.rawValue, step: r.index + 1, steps: r.program.steps.count,
                stepType: r.currentStep?.name, stepElapsedS: r.elapsed, setpointMpa: r.setpoint,
                startedFromMpa: r.origin?.pressure, startedFrom: r.origin?.source.rawValue, startedInMode: r.origin?.mode.rawValue)
}
