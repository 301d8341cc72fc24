import Foundation
import PressDrivers
import Logging
import PressCore
import PressLog
import Synchronization

/// A write the socket asks the run-log writer to make.
public enum StoreRequest: Sendable {
    case calibration(channel: String, cells: [LoadCellCalibration])
    /// A finished critical-stack-pressure sweep, at unix time `time`.
    case sweep(channel: String, result: SweepResult, time: Double)
    /// A channel's run metadata, merged by ``RunRecords``. `done` is called once, with
    /// nil when it is written or the error of the first failed attempt (it is then kept
    /// and written when the run log can write again).
    case metadata(channel: String, record: RunMetadata, time: Double, done: (@Sendable (Error?) -> Void)?)

    /// This request, its `done` called with `error` (if it had one) and removed.
    func reporting(_ error: Error) -> StoreRequest {
        guard case .metadata(let ch, let r, let t, let done?) = self else { return self }
        done(error)
        return .metadata(channel: ch, record: r, time: t, done: nil)
    }
}

/// The run log could not be opened (yet).
struct RunLogNotOpen: Error, CustomStringConvertible {
    var path: String
    var description: String { "the run log \(path) cannot be opened now (see status: storage)" }
}

/// How a loop event reads in the journal and in the run log.
struct FormattedEvent {
    var kind: String
    var detail: String
    var level: Logger.Level
    var metadata: Logger.Metadata
}

extension RunLogEvent {
    /// A loop event as the run log stores it (`epoch`: unix time of loop time zero).
    public init(_ e: LoopEvent, epoch: Double) {
        let f = format(e)
        self.init(time: epoch + e.time, channel: e.channel, kind: f.kind, detail: f.detail)
    }
}

func format(_ e: LoopEvent) -> FormattedEvent {
    var md: Logger.Metadata = ["channel": "\(e.channel)", "t": "\(round3(e.time))"]
    switch e.event {
    case .modeChanged(let from, let to, let reason):
        md["from"] = "\(from.rawValue)"; md["to"] = "\(to.rawValue)"
        return FormattedEvent(kind: "mode", detail: "\(from.rawValue) → \(to.rawValue): \(reason)", level: .notice, metadata: md)
    case .faultRaised(let r, let action):
        md["fault"] = "\(r.code.rawValue)"; md["action"] = "\(action.rawValue)"
        return FormattedEvent(kind: "fault", detail: "\(r.code.rawValue) (\(action.rawValue)): \(r.message)", level: .error, metadata: md)
    case .faultsAcknowledged(let cleared, let remaining):
        md["cleared"] = "\(cleared.map(\.rawValue).joined(separator: ","))"
        md["remaining"] = "\(remaining.map(\.rawValue).joined(separator: ","))"
        return FormattedEvent(kind: "ack", detail: "cleared [\(cleared.map(\.rawValue).joined(separator: ", "))], remaining [\(remaining.map(\.rawValue).joined(separator: ", "))]", level: .notice, metadata: md)
    case .setpointChanged(let target, let ramp):
        md["setpoint_mpa"] = "\(target)"
        return FormattedEvent(kind: "setpoint", detail: "\(fmt3(target)) MPa, ramp \(ramp.map { "\(fmt3($0)) MPa/s" } ?? "step")", level: .info, metadata: md)
    case .programStep(let name, let index, let step):
        md["program"] = "\(name)"; md["step"] = "\(index + 1)"
        return FormattedEvent(kind: "program", detail: "\(name): step \(index + 1) (\(step))", level: .info, metadata: md)
    case .programState(let name, let state, let detail):
        md["program"] = "\(name)"; md["state"] = "\(state)"
        return FormattedEvent(kind: "program", detail: "\(name) \(state)\(detail.isEmpty ? "" : ": " + detail)", level: .notice, metadata: md)
    case .autotune(let state, let detail):
        md["autotune"] = "\(state)"
        return FormattedEvent(kind: "autotune", detail: "\(state): \(detail)", level: state == .failed ? .warning : .notice, metadata: md)
    case .adaptation(let text):
        return FormattedEvent(kind: "adaptation", detail: text, level: .notice, metadata: md)
    case .supervisor(let text):
        return FormattedEvent(kind: "supervisor", detail: text, level: .notice, metadata: md)
    case .configuration(let text):
        return FormattedEvent(kind: "config", detail: text, level: .warning, metadata: md)
    case .sweep(let state, let detail):
        md["sweep"] = "\(state)"
        return FormattedEvent(kind: "sweep", detail: "\(state): \(detail)", level: state == .level ? .info : .notice, metadata: md)
    case .excursion(let x):
        md["cause"] = "\(x.cause)"; md["worst_error_mpa"] = "\(round3(x.worstError))"; md["duration_s"] = "\(round3(x.duration ?? 0))"
        return FormattedEvent(kind: "excursion", detail: "out of band for \(round3(x.duration ?? 0)) s (from t=\(round3(x.start)) s), worst \(round3(x.worstError)) MPa from \(round3(x.setpoint)) MPa, cause \(x.cause)", level: .warning, metadata: md)
    case .authority(let state, let detail):
        md["authority"] = "\(state)"
        return FormattedEvent(kind: "authority", detail: "\(state): \(detail)", level: state == .lost ? .warning : .notice, metadata: md)
    case .recovery(let state, let codes, let detail):
        md["recovery"] = "\(state)"; md["faults"] = "\(codes.map(\.rawValue).joined(separator: ","))"
        return FormattedEvent(kind: "recovery", detail: "\(state) [\(codes.map(\.rawValue).joined(separator: ", "))]: \(detail)", level: state == .latched ? .error : .warning, metadata: md)
    case .setpointOwner(let h):
        md["from"] = "\(h.from.rawValue)"; md["to"] = "\(h.to.rawValue)"
        return FormattedEvent(kind: "owner", detail: "setpoint: \(h.from.rawValue) → \(h.to.rawValue)", level: .info, metadata: md)
    case .sweepFinished(let r):
        md["sweep"] = "\(r.status)"
        return FormattedEvent(kind: "sweep", detail: "\(r.status): \(r.summary)", level: r.status == .aborted ? .warning : .notice, metadata: md)
    }
}

/// Writes the run log from its own thread: every flush interval it drains the loop's
/// samples and the queued events into one transaction and stores every channel's
/// restart state. Write errors are logged and the batch is retried, bounded.
///
/// A run log that could not be opened at start (a full disk) is the same as one that
/// stops writing later: `storage` says `run_log` is not writing, the alarm is raised,
/// samples and events are kept in memory (bounded), and the log is opened and written
/// as soon as it can be (tried every 5 s).
final class RunLogWriter: @unchecked Sendable {
    let path: String
    private let opened: Mutex<RunLog?>
    /// The run log, nil until it could be opened. Read by the socket's handlers.
    var log: RunLog? { opened.withLock { $0 } }
    private var lastOpenAttempt = 0.0
    let loop: ControlLoop
    let interval: Double
    let retention: Double
    /// Samples older than `fullResolution` s are downsampled to one row per
    /// `downsamplePeriod` s (0: never).
    let fullResolution: Double
    let downsamplePeriod: Double
    let logger: Logger
    private let queued = Mutex<[RunLogEvent]>([])
    private var backlog: (samples: [LogSample], events: [RunLogEvent]) = ([], [])
    private var lastPrune = 0.0
    private var lastError = 0.0
    /// Called on the writer's thread with the events just committed and their row ids
    /// (the MQTT publisher); must not block.
    var onCommitted: (([SequencedEvent]) -> Void)?
    /// Whether the run log is being written (status, metrics, alarms).
    let health: StoreHealth

    /// - Parameters:
    ///   - log: the open run log, or nil when it could not be opened (`openError`).
    ///   - fullResolutionDays: samples older than this are downsampled to one row per
    ///     `downsamplePeriod` s (0: never).
    init(path: String, log: RunLog?, openError: String? = nil, loop: ControlLoop, interval: Double, retentionDays: Double,
         fullResolutionDays: Double = 0, downsamplePeriod: Double = 60, logger: Logger) {
        self.path = path; self.opened = Mutex(log); self.loop = loop; self.interval = interval
        self.retention = retentionDays * 86400; self.logger = logger
        self.fullResolution = fullResolutionDays * 86400; self.downsamplePeriod = downsamplePeriod
        health = StoreHealth(name: "run_log", path: path)
        if log == nil { health.failed(openError ?? "not open") }
        lastOpenAttempt = Date().timeIntervalSince1970
    }

    /// The run log, opened now if it could not be before (at most every 5 s).
    private func openedLog(now: Double) throws -> RunLog? {
        if let log { return log }
        guard now - lastOpenAttempt >= 5 else { return nil }
        lastOpenAttempt = now
        let l = try RunLog(path: path)
        opened.withLock { $0 = l }
        logger.notice("run log opened", metadata: ["path": "\(path)"])
        return l
    }

    /// Queues an event for the next flush.
    func enqueue(_ e: RunLogEvent) { queued.withLock { $0.append(e) } }

    private let stores = Mutex<[StoreRequest]>([])
    /// Queues a write of something other than samples and events.
    func enqueue(_ s: StoreRequest) { stores.withLock { $0.append(s) } }

    private lazy var worker = PeriodicWorker(name: ThreadName("runlog"), interval: interval) { [unowned self] in flush() }

    func start() { worker.start() }

    /// Stops after a last flush (call after the loop has stopped).
    func stop() { worker.stop() }

    /// Retention and downsampling (hourly, on this thread): each downsampling call is one
    /// short transaction of at most 20 000 rows, so a first pass over a long backlog does
    /// not hold the database for long; at most 50 calls an hour (a million rows: weeks of
    /// a few channels) catch up with any backlog within a day.
    func maintain(_ log: RunLog, now: Double) throws {
        // The log's own clock: on a fast simulator log time runs ahead of the wall clock.
        let logNow = max(now, loop.logTimeNow())
        if retention > 0 {
            let n = try log.prune(before: logNow - retention)
            if n > 0 { logger.info("run log retention: pruned old rows", metadata: ["rows": "\(n)"]) }
        }
        guard fullResolution > 0 else { return }
        var total = 0
        for _ in 0..<50 {
            let n = try log.downsample(before: logNow - fullResolution, period: downsamplePeriod, maxRows: 20_000)
            total += n
            if n == 0 { break }
        }
        if total > 0 { logger.info("run log: downsampled old samples", metadata: ["rows": "\(total)", "period_s": "\(downsamplePeriod)"]) }
    }

    func flush() {
        let (samples, dropped) = loop.samples.drain()
        let events = queued.withLock { q -> [RunLogEvent] in defer { q.removeAll() }; return q }
        backlog.samples += samples
        backlog.events += events
        if dropped > 0 {
            backlog.events.append(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "daemon",
                                           detail: "run log fell behind: \(dropped) samples dropped"))
        }
        let now = Date().timeIntervalSince1970
        let pendingStores = stores.withLock { q -> [StoreRequest] in defer { q.removeAll() }; return q }
        do {
            guard let log = try openedLog(now: now) else {
                let notOpen = RunLogNotOpen(path: path)
                stores.withLock { $0.insert(contentsOf: pendingStores.map { $0.reporting(notOpen) }, at: 0) }
                boundBacklog()
                return
            }
            for (k, s) in pendingStores.enumerated() {
                do {
                    switch s {
                    case .calibration(let ch, let cells): try log.setCalibration(cells, channel: ch, time: now)
                    case .sweep(let ch, let r, let t): try log.addSweep(r, channel: ch, time: t)
                    case .metadata(let ch, let r, let t, let done):
                        try log.setMetadata(r, channel: ch, time: t)
                        done?(nil)
                    }
                } catch {
                    // Retried next flush, in order; whoever waits for one of them is told.
                    let rest = pendingStores[k...].map { $0.reporting(error) }
                    stores.withLock { $0.insert(contentsOf: rest, at: 0) }
                    throw error
                }
            }
            let ids = try log.append(samples: backlog.samples, events: backlog.events)
            if let onCommitted, !ids.isEmpty {
                onCommitted(zip(ids, backlog.events).map { SequencedEvent(seq: $0, event: $1) })
            }
            backlog = ([], [])
            if let snap = loop.snapshots.latest() { try log.saveState(persistedChannels(snap, now: now)) }
            if now - lastPrune > 3600 {
                lastPrune = now
                try maintain(log, now: now)
            }
            if let was = health.succeeded() {
                let msg = "run log writing again after \(round3(was)) s; the samples and events of that time were kept in memory and are now written"
                logger.notice("\(msg)", metadata: ["path": "\(path)"])
                enqueue(RunLogEvent(time: now, channel: "", kind: "daemon", detail: msg))
            }
        } catch {
            if health.failed("\(error)") {
                logger.critical("run log not writing: samples and events are kept in memory (up to 200000 samples) until it can; the state file keeps the restart state", metadata: ["error": "\(error)", "path": "\(path)"])
            }
            if now - lastError > 60 {
                lastError = now
                logger.error("run log write failed; retrying", metadata: ["error": "\(error)", "path": "\(path)", "backlog": "\(backlog.samples.count)"])
            }
            boundBacklog()
        }
    }

    /// What is kept in memory while the run log cannot write: the newest 200 000
    /// samples and 20 000 events.
    private func boundBacklog() {
        if backlog.samples.count > 200_000 { backlog.samples.removeFirst(backlog.samples.count - 200_000) }
        if backlog.events.count > 20_000 { backlog.events.removeFirst(backlog.events.count - 20_000) }
    }
}

/// The run log's settings.
public struct RunLogConfig: Sendable {
    public var enabled = true
    /// Seconds between logged samples (each carries min/max/mean of the fast loop).
    public var samplePeriod = 1.0
    /// Seconds between commits; a `kill -9` loses at most this much.
    public var flushInterval = 0.5
    /// Samples and events older than this are deleted; 0 keeps everything.
    public var retentionDays = 365.0
    /// Samples older than this are downsampled to one row per `downsamplePeriod` s per
    /// channel (envelope, means, last values); 0 never downsamples. Events are kept whole.
    public var fullResolutionDays = 14.0
    public var downsamplePeriod = 60.0
}

extension RunLogConfig {
    /// Reads `[runlog]`.
    static func parse(_ r: TableReader) throws(ConfigError) -> RunLogConfig {
        var c = RunLogConfig()
        c.enabled = try r.bool("enabled") ?? true
        c.samplePeriod = try r.positive("sample_period_s", default: 1)
        c.flushInterval = try r.positive("flush_interval_ms", default: 500) / 1000
        guard c.flushInterval <= 1 else { throw r.error("flush_interval_ms", "must be ≤ 1000 (a kill -9 may lose this much)") }
        c.retentionDays = try r.nonNegative("retention_days", default: 365)
        c.fullResolutionDays = try r.nonNegative("full_resolution_days", default: 14)
        c.downsamplePeriod = try r.positive("downsample_period_s", default: 60)
        guard c.downsamplePeriod >= 2 * c.samplePeriod, c.downsamplePeriod <= 86_400 else {
            throw r.error("downsample_period_s", "must be at least twice sample_period_s (\(fmt3(c.samplePeriod)) s) and at most 86400 s")
        }
        try r.rejectUnknownKeys()
        return c
    }
}
