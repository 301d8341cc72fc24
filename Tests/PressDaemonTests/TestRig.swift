import Foundation
import Logging
import NIOPosix
import PressProtocol
@testable import PressDaemon

/// An in-process pressd: the real control loop and the real control socket on a
/// temporary path, running the default simulated rig, optionally faster than real time.
final class TestRig: @unchecked Sendable {
    let dir: String
    let socketPath: String
    let config: DaemonConfig
    let loop: ControlLoop
    let server: ControlServer
    let group: MultiThreadedEventLoopGroup

    init(timeScale: Double = 1, configText: String? = nil) async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socketPath = dir + "/s.sock"
        var cfg = try DaemonConfig.parse(configText ?? defaultConfigText(), file: "test.toml")
        cfg.timeScale = timeScale
        config = cfg
        loop = ControlLoop(core: RigBuilder.simulated(cfg), rate: cfg.loopRate, timeScale: timeScale, clock: .simulated)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var ctx = ServerContext(version: "test", backend: cfg.backend, channels: cfg.channels, startNanos: monotonicNanos())
        ctx.limits.stallTimeout = cfg.clientStallTimeout
        server = ControlServer(path: socketPath, mode: 0o660, loop: loop, context: ctx, group: group, logger: logger)
        loop.start()
        try await server.start()
    }

    func client() throws -> ControlClient { try ControlClient(path: socketPath) }

    func stop() async {
        await server.stop()
        loop.stop()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Wall seconds for `simSeconds` of plant time.
    func wall(_ simSeconds: Double) -> Double { simSeconds / config.timeScale }
}

/// Sleeps the calling thread (tests use blocking clients).
func sleep(seconds: Double) { usleep(useconds_t(seconds * 1e6)) }

/// Polls `body` every 100 ms until it returns true or `seconds` of wall time pass; its
/// last answer.
func waitFor(_ seconds: Double, _ body: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end { if try body() { return true }; usleep(100_000) }
    return try body()
}

extension ControlClient {
    func status() throws -> StatusResult { try call("status", NoParams(), as: StatusResult.self) }
    func channel(_ name: String) throws -> ChannelStatus { try status().channels.first { $0.name == name }! }

    /// Sends one raw line and returns the decoded reply object.
    func rawCall(_ line: String) throws -> [String: Any] {
        try send(raw: Array((line + "\n").utf8))
        let data = try readLine()
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

extension Dictionary where Key == String, Value == Any {
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (self["error"] as? [String: Any])?["message"] as? String }
}

/// Runs `body` against a fresh rig and always stops it, also when the body throws.
func withRig(timeScale: Double = 1, configText: String? = nil, _ body: (TestRig) async throws -> Void) async throws {
    let rig = try await TestRig(timeScale: timeScale, configText: configText)
    do { try await body(rig) } catch {
        await rig.stop()
        throw error
    }
    await rig.stop()
}
