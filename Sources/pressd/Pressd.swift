import ArgumentParser
import Foundation
import Logging
import PressDaemon
import PressProtocol

/// pressd: holds solid-state battery cells at a set stack pressure, closed loop.
@main
struct Pressd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pressd",
        abstract: "Stack-pressure control daemon for solid-state battery test cells.",
        discussion: "Runs the control loop for every configured channel and serves the control socket that pressctl talks to. See docs/configuration.md and docs/protocol.md.",
        version: Daemon.version)

    @Option(name: .shortAndLong, help: "Configuration file (TOML).")
    var config: String = "/etc/pressd/pressd.toml"

    @Option(name: .long, help: "Control socket path (overrides the config's daemon.socket and $PRESSD_SOCKET).")
    var socket: String?

    @Option(name: .long, help: "Simulated seconds per wall-clock second (simulator only; overrides simulator.time_scale).")
    var timeScale: Double?

    @Option(name: .long, help: "Directory for the run log and restart state (overrides daemon.state_dir).")
    var stateDir: String?

    @Flag(name: .long, help: "Validate the configuration, print a summary and exit.")
    var checkConfig = false

    mutating func run() async throws {
        var cfg: DaemonConfig
        config = LocalPath.absolute(config)
        do { cfg = try DaemonConfig.load(path: config) }
        catch {
            FileHandle.standardError.write(Data("pressd: configuration error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if let ts = timeScale {
            guard ts > 0, ts <= 1000 else { throw ValidationError("--time-scale must be in (0, 1000]") }
            cfg.timeScale = ts
        }
        if checkConfig {
            // The warnings a start would log (a preset overridden, an old preset name, an
            // actuator that cannot reach max_mpa): a check that hid them would say less.
            for w in cfg.warnings { print("warning: \(w)") }
            print("\(config): OK, \(cfg.channels.count) channel(s): " + cfg.channels.map { "\($0.name) (\($0.actuator.rawValue), \($0.control.cellArea) cm², trip \($0.control.limits.trip) MPa)" }.joined(separator: ", "))
            return
        }
        // Relative paths on the command line (and in $PRESSD_SOCKET) are the working
        // directory's; the configuration's must be absolute (it is checked there).
        if let stateDir { cfg.stateDir = LocalPath.absolute(stateDir) }
        let level = Logger.Level(rawValue: cfg.logLevel) ?? .info
        // Under systemd, structured journal fields; otherwise plain lines on stderr.
        let journal = JournalLogHandler.stderrIsJournal()
        LoggingSystem.bootstrap { label in
            if journal {
                var h = JournalLogHandler(label: label)
                h.logLevel = level
                return h
            }
            // Escaped: text from peers (request ids, file names) stays on its one line.
            var h = SafeTextLogHandler(StreamLogHandler.standardError(label: label))
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "pressd")
        let path = LocalPath.absolute(socket ?? cfg.socketPath ?? SocketPath.resolveDefault())
        let daemon: Daemon
        do { daemon = try Daemon(config: cfg, configPath: config, socketPath: path, logger: logger) }
        catch {
            logger.critical("cannot start: \(error)", metadata: ["state_dir": "\(cfg.resolvedStateDirectory())"])
            throw ExitCode(1)
        }
        logger.notice("pressd \(Daemon.version) starting", metadata: ["config": "\(config)", "backend": "\(cfg.backend.rawValue)"])
        #if DEBUG
        if cfg.timeScale > 1 {
            // A debug build is several times slower: at ×10 on a loaded machine its ticks
            // overrun by the hundred, and status alone would not say why.
            logger.warning("time scale ×\(cfg.timeScale) on a debug build: the control loop may overrun its ticks (status: overruns) on a loaded machine; run a release build (PRESSD_BUILD=release scripts/start, or swift build -c release)")
        }
        #endif
        do { try await daemon.run() }
        catch {
            logger.critical("pressd stopped: \(error)")
            throw ExitCode(1)
        }
    }
}


