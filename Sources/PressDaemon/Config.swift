import Foundation
import PressCore
import PressDrivers
import PressProtocol

/// Where the daemon's channels get their signals.
public enum BackendKind: String, Sendable, CaseIterable {
    case simulator
    /// Real devices from `[devices.*]` and each channel's register map.
    case hardware
}

/// The daemon's configuration, validated.
public struct DaemonConfig: Sendable {
    public var file: String
    public var socketPath: String?
    public var socketMode: Int
    public var loopRate: Double
    public var backend: BackendKind
    public var logLevel: String
    public var seed: UInt64
    public var timeScale: Double
    public var substep: Double
    public var channels: [ChannelConfig]
    /// Where the run log and the restart state live (nil: the default, see
    /// ``resolvedStateDirectory``).
    public var stateDir: String?
    public var runlog = RunLogConfig()
    /// Prometheus metrics listener, `host:port` on loopback; nil disables it.
    public var metrics: String?
    /// SCHED_FIFO priority of the control thread; 0 keeps normal scheduling.
    public var realtimePriority = 0
    /// Who may do what on the control socket.
    public var access = AccessPolicy()
    /// Group to give the socket file pressd creates (nil: leave it).
    public var socketGroup: String?
    /// Most control-socket connections open at once (`daemon.max_connections`).
    public var maxConnections = 256
    /// Most connections one (unprivileged) uid may hold (`daemon.max_connections_per_user`).
    public var maxConnectionsPerUser = 32
    /// A client whose replies stay unread this long is dropped (`daemon.client_stall_timeout_s`), s.
    public var clientStallTimeout = 30.0
    /// Modbus devices and buses (backend = "hardware").
    public var devices: [DeviceConfig] = []
    /// The MQTT publisher (`[mqtt]`); nil: off.
    public var mqtt: MQTTConfig?
    /// Accepted but worth a warning (a chemistry preset overridden), each with file,
    /// line and key.
    public var warnings: [String] = []
    /// Every key as written in the file, for a reload to find what changed.
    var keys = ConfigKeys()

    /// `daemon.state_dir`, else `$STATE_DIRECTORY` (systemd's StateDirectory=), else
    /// `/var/lib/pressd` for root, else `$XDG_STATE_HOME/pressd` or `~/.local/state/pressd`.
    public func resolvedStateDirectory(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        LocalPath.absolute(unresolvedStateDirectory(environment: env))
    }

    private func unresolvedStateDirectory(environment env: [String: String]) -> String {
        if let d = stateDir { return d }
        if let d = env["STATE_DIRECTORY"], !d.isEmpty { return d.split(separator: ":").first.map(String.init) ?? d }
        if geteuid() == 0 { return "/var/lib/pressd" }
        if let x = env["XDG_STATE_HOME"], !x.isEmpty { return x + "/pressd" }
        return (env["HOME"] ?? "/tmp") + "/.local/state/pressd"
    }

    /// Loads and validates `path`. Every error names the file, line and key.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) }
        catch { throw ConfigError(file: path, line: nil, key: nil, message: "cannot read: \(error.localizedDescription)") }
        return try parse(text, file: path)
    }

    /// Parses and validates TOML text; `file` is used in error messages.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> DaemonConfig {
        let root = try parseTOML(text, file: file)
        var cfg = DaemonConfig(file: file, socketPath: nil, socketMode: 0o660, loopRate: 100, backend: .simulator,
                               logLevel: "info", seed: 1, timeScale: 1, substep: 0.001, channels: [])
        cfg.keys = ConfigKeys(root.table, locator: root.context.locator)
        if let d = try root.subtable("daemon") { try cfg.parseDaemon(d) }
        if let s = try root.subtable("simulator") { try cfg.parseSimulator(s) }
        if let r = try root.subtable("runlog") { cfg.runlog = try RunLogConfig.parse(r) }
        cfg.access = try AccessPolicy.parse(root.subtable("access"))
        if let devs = try root.subtable("devices") {
            for name in devs.keys.sorted() {
                guard let t = try devs.subtable(name) else { continue }
                cfg.devices.append(try DeviceConfig.parse(t, name: name))
            }
        }
        guard let channels = try root.subtable("channels") else {
            throw ConfigError(file: file, line: nil, key: "channels", message: "no channels configured: add a [channels.NAME] table")
        }
        for name in channels.keys.sorted() {
            guard let t = try channels.subtable(name) else { continue }
            cfg.channels.append(try ChannelConfig.parse(t, name: name, loopRate: cfg.loopRate, devices: cfg.devices, hardware: cfg.backend == .hardware,
                                                     warnings: &cfg.warnings))
        }
        guard !cfg.channels.isEmpty else { throw channels.error(nil, "no channels configured: add a [channels.NAME] table") }
        if let m = try root.subtable("mqtt") { cfg.mqtt = try MQTTConfig.parse(m) }
        try root.rejectUnknownKeys()
        return cfg
    }

    /// Reads `[daemon]`: the socket, the loop, the backend, logging, the state directory,
    /// real-time priority, the connection caps and the metrics listener.
    private mutating func parseDaemon(_ d: TableReader) throws(ConfigError) {
        socketPath = try d.string("socket").flatMap { $0.isEmpty ? nil : $0 }
        if let p = socketPath, !p.hasPrefix("/") {
            throw d.error("socket", "'\(p)' is not an absolute path: pressd may run from any directory (under systemd, /); write the full path, e.g. \"/run/pressd/pressd.sock\"")
        }
        if let m = try d.string("socket_mode") {
            guard let v = Int(m, radix: 8), (0...0o777).contains(v) else { throw d.error("socket_mode", "must be an octal mode string like \"0660\"") }
            socketMode = v
        }
        loopRate = try d.positive("loop_rate_hz", default: 100)
        guard loopRate <= 2000 else { throw d.error("loop_rate_hz", "must be ≤ 2000 Hz") }
        backend = try d.choice("backend", default: BackendKind.simulator)
        logLevel = try d.string("log_level") ?? "info"
        stateDir = try d.string("state_dir").flatMap { $0.isEmpty ? nil : $0 }
        if let p = stateDir, !p.hasPrefix("/") {
            throw d.error("state_dir", "'\(p)' is not an absolute path: pressd may run from any directory (under systemd, /); write the full path, e.g. \"/var/lib/pressd\"")
        }
        realtimePriority = try d.int("realtime_priority") ?? 0
        if let g = try d.string("socket_group"), !g.isEmpty {
            guard getgrnam(g) != nil else { throw d.error("socket_group", "no group '\(g)' on this system") }
            socketGroup = g
        }
        guard (0...99).contains(realtimePriority) else { throw d.error("realtime_priority", "must be 0 (off) … 99") }
        if let m = try d.int("max_connections") {
            guard (1...4096).contains(m) else { throw d.error("max_connections", "must be 1 … 4096") }
            maxConnections = m
        }
        if let m = try d.int("max_connections_per_user") {
            guard (1...4096).contains(m) else { throw d.error("max_connections_per_user", "must be 1 … 4096") }
            maxConnectionsPerUser = m
        }
        clientStallTimeout = try d.positive("client_stall_timeout_s", default: 30)
        guard (1...3600).contains(clientStallTimeout) else { throw d.error("client_stall_timeout_s", "must be 1 … 3600 s") }
        if let m = try d.string("metrics"), !m.isEmpty {
            guard let colon = m.lastIndex(of: ":"), let port = Int(m[m.index(after: colon)...]), (1...65535).contains(port) else {
                throw d.error("metrics", "must be \"host:port\", e.g. \"127.0.0.1:9817\"")
            }
            let host = String(m[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            guard host == "localhost" || host == "::1" || host.hasPrefix("127.") else {
                throw d.error("metrics", "'\(host)' is not a loopback address: the endpoint has no authentication, so it listens on loopback only (127.0.0.1 or ::1); expose it through a local agent or reverse proxy")
            }
            metrics = m
        }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw d.error("log_level", "'\(logLevel)' is not a log level (trace, debug, info, notice, warning, error, critical)")
        }
        try d.rejectUnknownKeys()
    }

    /// Reads `[simulator]`: the seed, the time scale and the physics sub-step.
    private mutating func parseSimulator(_ s: TableReader) throws(ConfigError) {
        if let seed = try s.int("seed") {
            guard seed >= 0 else { throw s.error("seed", "must be ≥ 0") }
            self.seed = UInt64(seed)
        }
        timeScale = try s.positive("time_scale", default: 1)
        guard timeScale <= 1000 else { throw s.error("time_scale", "must be ≤ 1000") }
        substep = try s.positive("substep_ms", default: 1) / 1000
        try s.rejectUnknownKeys()
    }
}
