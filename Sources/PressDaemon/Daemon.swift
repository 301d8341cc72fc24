import CSystemd
import Foundation
import Logging
import NIOCore
import NIOPosix
import PressCore
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

/// The daemon: the control loop, the control socket and the glue around them, wired as
/// a ServiceLifecycle group. Start order: loop → socket → event log → systemd notifier;
/// shutdown runs in reverse, so commands stop before the actuators go to their
/// shutdown state.
public final class Daemon: @unchecked Sendable {
    public static let version = "0.1.0"
    public let config: DaemonConfig
    public let loop: ControlLoop
    public let server: ControlServer
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    /// Set once the control socket is listening.
    let socketReady = Atomic<Bool>(false)

    public init(config: DaemonConfig, socketPath: String, logger: Logger) {
        self.config = config
        self.logger = logger
        let core: LoopCore
        switch config.backend {
        case .simulator: core = RigBuilder.simulated(config)
        }
        loop = ControlLoop(core: core, rate: config.loopRate, timeScale: config.timeScale)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ctx = ServerContext(version: Self.version, backend: config.backend, channels: config.channels, startNanos: monotonicNanos())
        server = ControlServer(path: socketPath, mode: config.socketMode, loop: loop, context: ctx, group: group, logger: logger)
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    public func run() async throws {
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: LoopService(daemon: self), successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: SocketService(daemon: self), failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: EventLogService(daemon: self)),
            .init(service: NotifierService(daemon: self)),
        ]
        var gc = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        gc.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: gc)
        try await group.run()
        try await self.group.shutdownGracefully()
    }
}

/// Owns the control thread. On graceful shutdown it stops the loop, which leaves every
/// actuator in its configured shutdown state.
struct LoopService: Service {
    let daemon: Daemon
    func run() async throws {
        daemon.loop.start()
        daemon.logger.info("control loop started", metadata: [
            "rate_hz": "\(daemon.config.loopRate)", "time_scale": "\(daemon.config.timeScale)",
            "channels": "\(daemon.config.channels.map(\.name).joined(separator: ","))"])
        try? await gracefulShutdown()
        daemon.loop.stop()
        logEvents(daemon)
        daemon.logger.info("control loop stopped; actuators in their shutdown state",
                           metadata: ["shutdown": "\(daemon.config.channels.map { "\($0.name)=\($0.shutdown.rawValue)" }.joined(separator: ","))"])
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

/// Drains the loop's event ring into the log, off the control thread.
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
    if dropped > 0 { daemon.logger.warning("event log overflow", metadata: ["dropped": "\(dropped)"]) }
    for e in events {
        var md: Logger.Metadata = ["channel": "\(e.channel)", "t": "\(round3(e.time))"]
        switch e.event {
        case .modeChanged(let from, let to, let reason):
            md["from"] = "\(from.rawValue)"; md["to"] = "\(to.rawValue)"; md["reason"] = "\(reason)"
            daemon.logger.notice("mode changed", metadata: md)
        case .faultRaised(let r, let action):
            md["fault"] = "\(r.code.rawValue)"; md["action"] = "\(action.rawValue)"
            daemon.logger.error("fault: \(r.message)", metadata: md)
        case .faultsAcknowledged(let cleared, let remaining):
            md["cleared"] = "\(cleared.map(\.rawValue))"; md["remaining"] = "\(remaining.map(\.rawValue))"
            daemon.logger.notice("faults acknowledged", metadata: md)
        case .setpointChanged(let target, let ramp):
            md["setpoint_mpa"] = "\(target)"; md["ramp_mpa_per_s"] = "\(ramp.map { "\($0)" } ?? "step")"
            daemon.logger.info("setpoint changed", metadata: md)
        }
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
        while !Task.isShuttingDownGracefully {
            let snap = daemon.loop.snapshots.latest()
            if !ready, daemon.socketReady.load(ordering: .acquiring), let snap, snap.channels.allSatisfy({ $0.readings.force != nil }) {
                ready = true
                SystemdNotifier.notify("READY=1\nSTATUS=\(summary(snap))")
                daemon.logger.notice("ready", metadata: ["socket": "\(daemon.server.path)"])
            }
            if ready, let snap, ContinuousClock.now - lastStatus >= .seconds(1) {
                SystemdNotifier.notify("STATUS=\(summary(snap))")
                lastStatus = .now
            }
            if let wd = watchdog {
                let ticks = daemon.loop.tickCounter.load(ordering: .acquiring)
                let age = Double(monotonicNanos() &- daemon.loop.lastTickNanos.load(ordering: .acquiring)) / 1e9
                if ticks > lastTicks && age < wd / 2 { SystemdNotifier.notify("WATCHDOG=1") }
                lastTicks = ticks
            }
            try? await Task.sleep(for: Duration.milliseconds(watchdog.map { max(10, Int($0 * 250)) } ?? 200).clamped(max: .milliseconds(200)))
        }
    }

    func summary(_ s: RigSnapshot) -> String {
        s.channels.map { c in
            let p = c.pressure.map { String(format: "%.2f", $0) } ?? "?"
            let t = c.target.map { String(format: "/%.2f", $0) } ?? ""
            return "\(c.name) \(c.mode.rawValue) \(p)\(t) MPa" + (c.faults.isEmpty ? "" : " FAULT")
        }.joined(separator: "; ")
    }
}

extension Duration {
    func clamped(max m: Duration) -> Duration { self > m ? m : self }
}
