import CSystemd
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import PressCore
import PressDrivers
import PressLog
import PressProtocol
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Talks to systemd's notification socket. A no-op when not run by systemd.
public enum SystemdNotifier {
    /// Sends `state` (e.g. `READY=1\nSTATUS=…`) with sd_notify(3).
    @discardableResult
    public static func notify(_ state: String) -> Bool { sd_notify(0, state) > 0 }

    /// The watchdog interval systemd asked for, from sd_watchdog_enabled(3).
    public static func watchdogInterval() -> Double? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return Double(usec) / 1e6
    }

    /// The first socket passed by systemd socket activation, from sd_listen_fds(3).
    public static func listenFD() -> Int32? {
        let n = sd_listen_fds(1)
        return n >= 1 ? SD_LISTEN_FDS_START : nil
    }
}

/// The daemon: the control loop, the run log, the control socket and the glue around
/// them, wired as a ServiceLifecycle group. Start order (``run()``): MQTT → run-log and
/// state writers → devices → loop → socket → event log → metrics → spectra → reload →
/// systemd notifier (MQTT, devices, metrics and spectra when configured); shutdown runs
/// in reverse, so commands stop first, then the actuators go to their shutdown state and
/// the devices write it, then the last samples and the restart state are written and
/// published.
public final class Daemon: @unchecked Sendable {
    public static let version = ControlProtocol.release
    public let configPath: String
    /// The configuration in force; replaced whole by a reload.
    public let live: LiveConfig
    /// The configuration in force now (a snapshot: read it again after a reload).
    public var config: DaemonConfig { live.current }
    /// Serialises reloads (SIGHUP and the socket's `reload`) on one queue of its own.
    let reloader: ConfigReloader
    public let loop: ControlLoop
    public let server: ControlServer
    let runLog: RunLog?
    let writer: RunLogWriter?
    /// Keeps the state file current (nil when the run log is disabled or the file unusable).
    let stateWriter: StateFileWriter?
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let startNanos = monotonicNanos()
    /// Set once the control socket is listening.
    let socketReady = Atomic<Bool>(false)
    let metricsServer: MetricsServer?
    /// The MQTT publisher (`[mqtt]`), nil when off.
    let mqtt: MQTTPublisher?
    /// The impedance analysers' spectrum directories, when any channel has one.
    var spectra: SpectrumIntake?
    /// Modbus device threads (backend = "hardware").
    let pollers: [ModbusPoller]
    /// GPIO device threads (backend = "hardware").
    let gpioPollers: [GPIODevicePoller]
    private let reloadBox: WeakDaemon
    /// One pressd per rig: the state directory and every device, locked before use.
    let locks = InstanceLocks()
    /// Faults that came back latched from the restart state, for the run log: a kill -9
    /// moments after a trip can lose the trip's own event, never its record here.
    private(set) var restoredFaults: [(channel: String, fault: FaultRecord)] = []

    /// Builds the daemon: takes the instance locks (state directory, devices), opens the
    /// devices and the run log, restores every channel's persisted state. A second
    /// instance fails here with ``InstanceLockError`` before touching anything.
    public init(config: DaemonConfig, configPath: String, socketPath: String, logger: Logger) throws {
        if config.runlog.enabled { try locks.lockStateDirectory(config.resolvedStateDirectory()) }
        if config.backend == .hardware { try locks.lockDevices(config.devices) }
        self.live = LiveConfig(config)
        self.configPath = configPath
        self.logger = logger
        var core: LoopCore
        var pollers: [ModbusPoller] = []
        var gpio: [GPIODevicePoller] = []
        let clockBox = LoopClockBox()
        switch config.backend {
        case .simulator: core = RigBuilder.simulated(config)
        case .hardware:
            (core, pollers, gpio) = try RigBuilder.hardware(config, clock: { clockBox.loop?.now ?? 0 })
            for p in pollers {
                let l = logger
                let limiter = ErrorRateLimiter()
                p.onError = { msg in if limiter.shouldLog() { l.warning("device error: \(msg)", metadata: ["device": "\(p.name)"]) } }
            }
        }
        self.pollers = pollers
        self.gpioPollers = gpio
        core.logPeriod = config.runlog.samplePeriod
        var journal: StateJournal?
        var journalError: StateJournalError?
        var runLogError: String?
        if config.runlog.enabled {
            let dir = config.resolvedStateDirectory()
            // The state file first: it is small and allocated once, so it works on a
            // full disk; the run log may not even open then, and the daemon still runs.
            do { journal = try StateJournal(path: dir + "/pressd.state") }
            catch {
                journalError = error
                logger.critical("state file not writing: it cannot be made now; tried again every second (status: storage, alarms)", metadata: ["error": "\(error)"])
            }
            let path = dir + "/runlog.sqlite"
            var fromLog: [String: PersistedChannel] = [:]
            var lastLogTime: Double?
            do {
                let log = try RunLog(path: path)
                fromLog = try log.loadState()
                core.setCalibrations(try log.calibrations())
                lastLogTime = try log.lastTime()
                runLog = log
            } catch {
                logger.critical("run log not writing: it cannot be opened now; samples and events are kept in memory and it is tried again every 5 s (status: storage, alarms)", metadata: ["error": "\(error)", "path": "\(path)"])
                runLogError = "\(error)"
                runLog = nil
            }
            let choice = RestoreChoice.choose(runLog: fromLog, file: journal?.read(), fileIsNew: journal?.isNew ?? false, runLogLastTime: lastLogTime)
            var saved = choice.states
            if let since = choice.staleSince {
                let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: since))
                for (k, var v) in saved where v.mode != .released {
                    v.faults.append(FaultRecord(code: .restoredStateStale,
                                                message: "the restored setpoint and faults were last saved at \(when) and may be older than what pressd did before it stopped (the state file had stopped being written); check the channel, then acknowledge",
                                                raisedAt: 0, active: true))
                    saved[k] = v
                }
                logger.critical("restored state may be stale", metadata: ["saved_at": "\(when)"])
            }
            core.restore(saved)
            restoredFaults = saved.values.sorted { $0.channel < $1.channel }.flatMap { v in v.faults.map { (v.channel, $0) } }
            if !saved.isEmpty {
                logger.notice("restored channel state", metadata: ["channels": "\(saved.values.map { "\($0.channel)=\($0.mode.rawValue)" }.sorted().joined(separator: ","))", "runlog": "\(path)"])
            }
        } else {
            runLog = nil
        }
        let loop = ControlLoop(core: core, rate: config.loopRate, timeScale: config.timeScale,
                               clock: config.backend == .simulator ? .simulated : .realTime,
                               realtimePriority: Int32(config.realtimePriority))
        if let t = try runLog?.lastTime() { loop.epochFloor = t }
        clockBox.loop = loop
        self.loop = loop
        let writer = config.runlog.enabled
            ? RunLogWriter(path: config.resolvedStateDirectory() + "/runlog.sqlite", log: runLog, openError: runLogError, loop: loop,
                           interval: config.runlog.flushInterval, retentionDays: config.runlog.retentionDays,
                           fullResolutionDays: config.runlog.fullResolutionDays, downsamplePeriod: config.runlog.downsamplePeriod, logger: logger)
            : nil
        self.writer = writer
        // MQTT: statuses and samples from the loop's snapshots, events once the run log
        // has committed them (so a broker outage loses nothing the run log keeps).
        mqtt = config.mqtt.map { MQTTPublisher(config: $0, loop: loop, channels: config.channels.map(\.name), version: Self.version, logger: logger) }
        if let mqtt { writer?.onCommitted = { mqtt.offer($0) } }
        let stateWriter = config.runlog.enabled
            ? StateFileWriter(path: config.resolvedStateDirectory() + "/pressd.state", journal: journal, openError: journalError, loop: loop, logger: logger)
            : nil
        stateWriter?.onChange = { msg in writer?.enqueue(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "daemon", detail: msg)) }
        self.stateWriter = stateWriter
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let audit: @Sendable (RunLogEvent) -> Void = { e in writer?.enqueue(e) }
        let startNanos = self.startNanos
        var ctx = ServerContext(version: Self.version, backend: config.backend, channels: config.channels, startNanos: startNanos,
                                audit: audit)
        ctx.currentRunLog = { writer?.log }
        ctx.access = config.access
        ctx.timeScale = config.timeScale
        ctx.store = { s in writer?.enqueue(s) }
        let devicePollers = pollers
        ctx.deviceHealth = { devicePollers.map { $0.snapshotHealth() } }
        let stores = [writer?.health, stateWriter?.health].compactMap { $0 }
        ctx.storage = { stores.map { $0.info(startNanos: startNanos) } }
        ctx.socketGroup = config.socketGroup
        ctx.maxConnections = config.maxConnections
        ctx.maxConnectionsPerUser = config.maxConnectionsPerUser
        ctx.limits.stallTimeout = config.clientStallTimeout
        let box = WeakDaemon()
        let reloader = ConfigReloader { box.daemon?.applyReload() ?? .failure(ConfigError(file: configPath, line: nil, key: nil, message: "daemon gone")) }
        self.reloader = reloader
        ctx.reload = { done in reloader.reload(done) }
        let live = self.live
        ctx.currentChannels = { live.current.channels }
        self.reloadBox = box
        server = ControlServer(path: socketPath, mode: config.socketMode, loop: loop, context: ctx, group: group, logger: logger)
        metricsServer = config.metrics.map { address in
            MetricsServer(address: address, group: group) {
                guard let snap = loop.snapshots.latest() else { return "" }
                return MetricsRenderer.render(snap, configs: live.current.channels, version: Self.version,
                                              uptime: Double(monotonicNanos() &- startNanos) / 1e9,
                                              storage: stores.map { $0.info(startNanos: startNanos) })
            }
        }
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    public func run() async throws {
        reloadBox.daemon = self
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // First to start, last to stop: it publishes the run log's last events.
        if mqtt != nil { services.append(.init(service: MQTTService(daemon: self))) }
        if writer != nil || stateWriter != nil { services.append(.init(service: WriterService(daemon: self))) }
        if !pollers.isEmpty || !gpioPollers.isEmpty {
            services.append(.init(service: DeviceService(daemon: self), failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        services += [
            .init(service: LoopService(daemon: self), successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: SocketService(daemon: self), failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: EventLogService(daemon: self)),
        ]
        if metricsServer != nil { services.append(.init(service: MetricsService(daemon: self))) }
        let writer = self.writer
        spectra = SpectrumIntake(live: live, loop: loop, logger: logger) { e in writer?.enqueue(e) }
        if spectra != nil { services.append(.init(service: SpectrumService(daemon: self))) }
        services += [.init(service: ReloadService(daemon: self)), .init(service: NotifierService(daemon: self))]
        var gc = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        gc.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: gc)
        try await group.run()
        try await self.group.shutdownGracefully()
        locks.release()
    }

    /// Reloads the configuration file and waits for the result (SIGHUP, tests). Reloads
    /// run one at a time on the reload queue, whoever asks.
    @discardableResult
    public func reload() -> Result<String, ConfigError> { reloader.reloadAndWait() }

    /// Reads, validates and applies the configuration file; runs on the reload queue
    /// only. On an error the running configuration stays. The keys of
    /// ``ReloadableKeys`` change (the loop's bumplessly, before this returns); any other
    /// key that changed is refused, naming it (``ReloadPlan``). The result is logged here
    /// (journal and run log), whether SIGHUP or the socket asked, and returned as one line.
    func applyReload() -> Result<String, ConfigError> {
        let result = readAndApply()
        switch result {
        case .success(let msg):
            logger.notice("\(msg)")
            writer?.enqueue(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "daemon", detail: msg))
        case .failure(let e):
            logger.error("configuration reload refused: \(e)")
            writer?.enqueue(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "daemon", detail: "reload refused: \(e)"))
        }
        return result
    }

    private func readAndApply() -> Result<String, ConfigError> {
        let new: DaemonConfig
        do { new = try DaemonConfig.load(path: configPath) } catch { return .failure(error) }
        let loop = self.loop
        let reload = ConfigReload(live: live) { command in
            guard let reply = loop.applyAndWait(command) else { return false }
            if case .rejected = reply { return false }
            return true
        }
        let plan: ReloadPlan
        switch reload.apply(new) {
        case .failure(let e): return .failure(e)
        case .success(let p): plan = p
        }
        for w in new.warnings {
            logger.warning("configuration: \(w)")
            writer?.enqueue(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "config", detail: "warning: \(w)"))
        }
        for c in new.channels {
            writer?.enqueue(RunLogEvent(time: Date().timeIntervalSince1970, channel: c.name, kind: "config",
                                        detail: StatusMapping.descriptorDetail(c, backend: new.backend, loop: loop)))
        }
        let changed = plan.changed.map(\.key)
        return .success("configuration reloaded from \(configPath)"
                        + (changed.isEmpty ? "; nothing changed" : "; changed \(changed.prefix(12).joined(separator: ", "))\(changed.count > 12 ? " and \(changed.count - 12) more" : "")")
                        + (new.warnings.isEmpty ? "" : "; warnings: " + new.warnings.joined(separator: "; ")))
    }
}

/// Watches the impedance analysers' spectrum directories. A directory that is missing
/// or unreadable is reported and tried again every minute: regulation does not wait
/// for an analyser.
struct SpectrumService: Service {
    let daemon: Daemon
    func run() async throws {
        guard let intake = daemon.spectra else { return }
        while !Task.isShuttingDownGracefully {
            do throws(DirectoryWatchError) {
                try intake.start()
                break
            } catch {
                daemon.logger.error("impedance spectra not watched: inotify unavailable (trying again in 60 s): \(error)")
                daemon.writer?.enqueue(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "impedance", detail: "spectra not watched: \(error)"))
                for _ in 0..<60 where !Task.isShuttingDownGracefully { try? await Task.sleep(for: .seconds(1)) }
            }
        }
        try? await gracefulShutdown()
        intake.stop()
    }
}

/// Starts the device threads before the loop and stops them after it, so the loop's
/// shutdown outputs are still written to the hardware.
struct DeviceService: Service {
    let daemon: Daemon
    func run() async throws {
        for p in daemon.pollers { p.start() }
        for g in daemon.gpioPollers {
            do throws(GPIOError) { try g.start() } catch {
                daemon.logger.critical("GPIO device \(g.name): \(error)")
                throw error
            }
        }
        daemon.logger.info("devices started", metadata: ["devices": "\(daemon.pollers.map { "\($0.name)=\($0.transport.description) (\($0.readsPerCycle) reads/cycle)" }.joined(separator: ", "))"])
        // READY waits for the first good samples (NotifierService).
        try? await gracefulShutdown()
        for p in daemon.pollers { p.stop() }
        for g in daemon.gpioPollers { g.stop() }
        daemon.logger.info("devices closed")
    }
}

/// Lets device threads read the loop's clock once the loop exists.
final class LoopClockBox: @unchecked Sendable { var loop: ControlLoop? }

/// Logs the first device error, then at most one a minute.
final class ErrorRateLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var last = -Double.infinity
    func shouldLog() -> Bool {
        lock.lock(); defer { lock.unlock() }
        let now = Date().timeIntervalSince1970
        if now - last >= 60 { last = now; return true }
        return false
    }
}

/// Runs the MQTT publisher's thread; stops it after the run-log writer has written the
/// last events, so they are published too, then marks the rig offline.
struct MQTTService: Service {
    let daemon: Daemon
    func run() async throws {
        guard let m = daemon.mqtt else { return }
        m.start()
        daemon.logger.info("MQTT publishing", metadata: ["broker": "\(m.config.host):\(m.config.port)", "topic": "\(m.config.rigTopic)"])
        try? await gracefulShutdown()
        m.stop()
    }
}

struct WriterService: Service {
    let daemon: Daemon
    func run() async throws {
        daemon.writer?.start()
        daemon.stateWriter?.start()
        try? await gracefulShutdown()
        daemon.stateWriter?.stop()
        daemon.writer?.stop()
        daemon.logger.info("run log closed", metadata: ["path": "\(daemon.writer?.path ?? "-")"])
    }
}

/// Owns the control thread. On graceful shutdown it stops the loop, which leaves every
/// actuator in its configured shutdown state.
struct LoopService: Service {
    let daemon: Daemon
    func run() async throws {
        daemon.loop.start()
        daemon.writer?.enqueue(RunLogEvent(time: daemon.loop.epoch, channel: "", kind: "daemon", detail: "pressd \(Daemon.version) started"))
        for (ch, f) in daemon.restoredFaults {
            daemon.writer?.enqueue(RunLogEvent(time: daemon.loop.epoch, channel: ch, kind: "fault",
                                               detail: "\(f.code.rawValue) (latched before the restart, restored): \(f.message)"))
        }
        for w in daemon.config.warnings {
            daemon.logger.warning("configuration: \(w)")
            daemon.writer?.enqueue(RunLogEvent(time: daemon.loop.epoch, channel: "", kind: "config", detail: "warning: \(w)"))
        }
        for c in daemon.config.channels {
            daemon.writer?.enqueue(RunLogEvent(time: daemon.loop.epoch, channel: c.name, kind: "config",
                                               detail: StatusMapping.descriptorDetail(c, backend: daemon.config.backend, loop: daemon.loop)))
        }
        try? await Task.sleep(for: .milliseconds(50))
        if let e = daemon.loop.realtimeError { daemon.logger.warning("real-time scheduling not available; running with normal priority", metadata: ["error": "\(e)"]) }
        daemon.logger.info("control loop started", metadata: [
            "rate_hz": "\(daemon.config.loopRate)", "time_scale": "\(daemon.config.timeScale)",
            "channels": "\(daemon.config.channels.map(\.name).joined(separator: ","))"])
        try? await gracefulShutdown()
        daemon.loop.stop()
        logEvents(daemon)
        // What the loop did, not what the configuration says now.
        let summary = daemon.loop.shutdownActions.map { "\($0.channel)=\($0.action.rawValue)" }.joined(separator: ",")
        let end = daemon.loop.snapshots.latest().map { daemon.loop.epoch + $0.time } ?? Date().timeIntervalSince1970
        daemon.writer?.enqueue(RunLogEvent(time: end, channel: "", kind: "daemon", detail: "pressd stopped; shutdown actions \(summary)"))
        daemon.logger.info("control loop stopped; actuators in their shutdown state", metadata: ["shutdown": "\(summary)"])
    }
}

struct SocketService: Service {
    let daemon: Daemon
    func run() async throws {
        try await daemon.server.start(inheritedFD: SystemdNotifier.listenFD())
        daemon.socketReady.store(true, ordering: .releasing)
        try? await gracefulShutdown()
        SystemdNotifier.notify("STOPPING=1")
        await daemon.server.stop()
    }
}

struct MetricsService: Service {
    let daemon: Daemon
    func run() async throws {
        guard let m = daemon.metricsServer else { return }
        // Metrics are for people watching; the cells must not go unregulated because
        // another program holds the port after a reboot. Say so, and run without them.
        do { try await m.start() } catch {
            daemon.logger.error("metrics endpoint not started: cannot listen on \(m.host):\(m.port) (daemon.metrics): \(error); regulating without it", metadata: ["address": "\(m.host):\(m.port)"])
            try? await gracefulShutdown()
            return
        }
        daemon.logger.info("metrics listening", metadata: ["address": "\(m.host):\(m.boundPort ?? m.port)"])
        try? await gracefulShutdown()
        await m.stop()
    }
}

/// Reloads the configuration on SIGHUP.
struct ReloadService: Service {
    let daemon: Daemon
    func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let d = daemon
        source.setEventHandler {
            SystemdNotifier.notify("RELOADING=1")
            d.reload() // logs its own result
            SystemdNotifier.notify("READY=1")
        }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }
}

/// Drains the loop's event ring into the journal and the run log, off the control thread.
struct EventLogService: Service {
    let daemon: Daemon
    func run() async throws {
        while !Task.isShuttingDownGracefully {
            logEvents(daemon)
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

func logEvents(_ daemon: Daemon) {
    let (events, dropped) = daemon.loop.events.drain()
    if dropped > 0 { daemon.logger.warning("event ring overflow", metadata: ["dropped": "\(dropped)"]) }
    let epoch = daemon.loop.epoch
    for e in events {
        let f = format(e)
        daemon.logger.log(level: f.level, "\(f.kind): \(f.detail)", metadata: f.metadata)
        daemon.writer?.enqueue(RunLogEvent(e, epoch: epoch))
        if case .sweepFinished(let r) = e.event { daemon.writer?.enqueue(.sweep(channel: e.channel, result: r, time: epoch + e.time)) }
    }
}

/// READY=1 once the socket is up and every channel has a force sample; STATUS= every
/// second; WATCHDOG=1 only while the loop is provably ticking on time.
struct NotifierService: Service {
    let daemon: Daemon
    func run() async throws {
        var ready = false
        let watchdog = SystemdNotifier.watchdogInterval()
        var lastTicks: UInt64 = 0
        var lastStatus = ContinuousClock.now - .seconds(10)
        let period = watchdog.map { min(0.2, $0 / 4) } ?? 0.2
        while !Task.isShuttingDownGracefully {
            let snap = daemon.loop.snapshots.latest()
            if !ready, daemon.socketReady.load(ordering: .acquiring), let snap, snap.channels.allSatisfy({ $0.readings.force != nil }) {
                ready = true
                SystemdNotifier.notify("READY=1\nSTATUS=\(statusLine(snap))")
                daemon.logger.notice("ready", metadata: ["socket": "\(daemon.server.path)"])
            }
            if ready, let snap, ContinuousClock.now - lastStatus >= .seconds(1) {
                SystemdNotifier.notify("STATUS=\(statusLine(snap))")
                lastStatus = .now
            }
            if let wd = watchdog {
                // Evidence, not a timer: the tick counter moved and the last tick is recent.
                let ticks = daemon.loop.tickCounter.load(ordering: .acquiring)
                let age = Double(monotonicNanos() &- daemon.loop.lastTickNanos.load(ordering: .acquiring)) / 1e9
                if ticks > lastTicks && age < max(wd / 4, 5 / daemon.loop.rate) { SystemdNotifier.notify("WATCHDOG=1") }
                lastTicks = ticks
            }
            try? await Task.sleep(for: .milliseconds(Int(period * 1000)))
        }
    }
}

/// One line for systemd's STATUS=: every channel's mode and pressure.
func statusLine(_ s: RigSnapshot) -> String {
    s.channels.map { c in
        let p = c.pressure.map { String(format: "%.2f", $0) } ?? "?"
        let t = c.target.map { String(format: "/%.2f", $0) } ?? ""
        return "\(c.name) \(c.mode.rawValue) \(p)\(t) MPa" + (c.faults.isEmpty ? "" : " FAULT " + c.faults.map(\.code.rawValue).joined(separator: ","))
    }.joined(separator: "; ")
}

/// Lets the socket's `reload` reach the daemon without a retain cycle.
final class WeakDaemon: @unchecked Sendable {
    weak var daemon: Daemon?
}
