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

/// Serving one request of a connection: decode, authorise and audit, dispatch to its
/// handler (SocketCommands.swift), and the ways a handler answers: at once, from the loop
/// (``submit(_:id:method:context:answer:)``), from a worker thread (``offload(_:_:context:_:)``), or as a
/// subscription's stream.
extension ConnectionHandler {
    /// Decode → authorise and audit → dispatch. Each step's rules live in one place:
    /// ``RequestDecoder`` and ``MethodTable``, ``RequestGate``, SocketCommands.swift.
    func handle(_ bytes: Data, flight: FlightTicket, context: ChannelHandlerContext) {
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
    func dispatch(_ command: Command, id: RequestRef, context: ChannelHandlerContext) {
        switch command {
        case .hello: reply(id, helloResult(), context: context)
        case .status(let p): status(p, id: id, context: context)
        case .set(let p): setpoint(p, id: id, context: context)
        case .hold(let p): holdOrRelease(p, hold: true, id: id, context: context)
        case .release(let p): holdOrRelease(p, hold: false, id: id, context: context)
        case .gap(let p): holdGap(p, id: id, context: context)
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
