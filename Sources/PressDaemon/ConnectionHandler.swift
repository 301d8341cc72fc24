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
    var nextSubscription = 1
    let encoder = ControlProtocol.encoder()
    let decoderImpl = RequestDecoder()

    /// The peer's credentials, read once when the connection was accepted.
    let peer: PeerCredentials?
    let fanout: SampleFanout
    /// Authorisation and the audit trail for this connection's requests.
    var gate: RequestGate

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
}
