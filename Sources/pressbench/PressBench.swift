import ArgumentParser
import Foundation
import Logging
import NIOPosix
import PressCore
import PressDaemon
import PressProtocol
import PressSim

/// pressbench: measurements recorded in docs/performance.md.
@main
struct PressBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pressbench",
        abstract: "Benchmarks for pressd (run with -c release).",
        subcommands: [ControlBench.self, SocketBench.self, SimBench.self, FleetBench.self, SoakBench.self, FloodBench.self, FloodPeer.self, FloodOperator.self])
}

/// Percentile of sorted values.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[max(0, min(sorted.count - 1, rank))]
}

/// Upper bucket edge below which `p` % of the histogram's ticks fall.
func histogramPercentile(_ h: [UInt64], edges: [Double], _ p: Double) -> String {
    let total = h.reduce(0, +)
    guard total > 0 else { return "n/a" }
    var acc: UInt64 = 0
    for (i, c) in h.enumerated() {
        acc += c
        if Double(acc) >= p / 100 * Double(total) { return i < edges.count ? "≤ \(Int(edges[i])) µs" : "> \(Int(edges.last!)) µs" }
    }
    return "n/a"
}

struct SocketBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket",
        abstract: "Status round-trip latency and control-loop jitter, idle and with N subscribers streaming.")

    @Option(help: "Configuration (the simulated rig).") var config = "config/pressd.toml"
    @Option(help: "Subscribers in the loaded phase.") var subscribers = 200
    @Option(help: "Events per second per subscriber.") var rate = 10.0
    @Option(help: "Seconds per phase.") var duration = 20.0
    @Option(help: "Status requests per phase (back to back from one client).") var requests = 2000
    @Flag(help: "Print JSON instead of a table.") var json = false

    struct Phase: Codable {
        var name: String
        var subscribers: Int
        var statusRttP50Us: Double
        var statusRttP99Us: Double
        var statusRttMaxUs: Double
        var ticks: UInt64
        var expectedTicks: Double
        var overruns: UInt64
        var jitterP50: String
        var jitterP99: String
        var jitterP999: String
        var jitterMaxUs: Double
        var eventsPerSubscriberMin: Int?
        var eventsPerSubscriberMean: Double?
    }

    func run() throws {
        var cfg = try DaemonConfig.load(path: config)
        cfg.timeScale = 1
        cfg.runlog.enabled = false
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressbench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sock = dir + "/b.sock"
        var logger = Logger(label: "pressbench")
        logger.logLevel = .critical
        let daemon = try Daemon(config: cfg, configPath: config, socketPath: sock, logger: logger)
        let runTask = Thread { let s = DispatchSemaphore(value: 0); Task { try? await daemon.run(); s.signal() }; s.wait() }
        runTask.start()
        var client: ControlClient?
        for _ in 0..<100 where client == nil { client = try? ControlClient(path: sock); if client == nil { usleep(50_000) } }
        guard let c = client else { throw ValidationError("daemon did not start") }
        for ch in cfg.channels { _ = try c.call("set", SetParams(channel: ch.name, value: 5, unit: "MPa"), as: SetResult.self) }
        sleep(3)

        var phases: [Phase] = []
        phases.append(try measure(c, name: "idle", subscribers: 0, sock: sock))
        phases.append(try measure(c, name: "loaded", subscribers: subscribers, sock: sock))
        kill(getpid(), SIGTERM) // graceful shutdown of the in-process daemon
        if json {
            let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(phases), as: UTF8.self))
            return
        }
        print("pressbench socket: \(cfg.loopRate) Hz loop, \(cfg.channels.count) simulated channels regulating at 5 MPa, \(duration) s per phase, \(requests) status requests per phase")
        print("phase    subs  status RTT p50/p99/max (µs)   ticks (expected)   overruns  jitter p50 / p99 / p99.9 / max          events/sub min/mean")
        for p in phases {
            let rtt = String(format: "%6.0f / %6.0f / %7.0f", p.statusRttP50Us, p.statusRttP99Us, p.statusRttMaxUs)
            let ev = p.eventsPerSubscriberMin.map { "\($0) / " + String(format: "%.1f", p.eventsPerSubscriberMean ?? 0) } ?? "—"
            print("\(p.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(p.subscribers).padding(toLength: 5, withPad: " ", startingAt: 0)) \(rtt)      \(p.ticks) (\(Int(p.expectedTicks)))       \(p.overruns)         \(p.jitterP50) / \(p.jitterP99) / \(p.jitterP999) / \(Int(p.jitterMaxUs)) µs   \(ev)")
        }
    }

    func measure(_ c: ControlClient, name: String, subscribers n: Int, sock: String) throws -> Phase {
        var subs: [ControlClient] = []
        for _ in 0..<n {
            let s = try ControlClient(path: sock)
            _ = try s.call("subscribe", SubscribeParams(rateHz: rate), as: SubscribeResult.self)
            subs.append(s)
        }
        let counts = Counts(n)
        let stop = StopFlag()
        let done = DispatchSemaphore(value: 0)
        for (i, s) in subs.enumerated() {
            let box = Box(s)
            let t = Thread {
                while !stop.value { if (try? box.value.nextEvent()) != nil { counts.add(i) } else { break } }
                done.signal()
            }
            t.stackSize = 256 * 1024
            t.start()
        }
        let before = try c.status().loop
        let start = Date()
        var rtts: [Double] = []
        let spacing = duration / Double(requests)
        for k in 0..<requests {
            let t = DispatchTime.now().uptimeNanoseconds
            _ = try c.status()
            rtts.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1000)
            let next = start.addingTimeInterval(Double(k + 1) * spacing)
            let wait = next.timeIntervalSinceNow
            if wait > 0 { usleep(useconds_t(wait * 1e6)) }
        }
        let after = try c.status().loop
        let elapsed = Date().timeIntervalSince(start)
        stop.value = true
        for s in subs { s.setTimeout(0.5) }
        for _ in subs { done.wait() }
        let h = zip(after.jitterHistogram ?? [], before.jitterHistogram ?? []).map { $0 - $1 }
        let edges = after.jitterBucketUs ?? []
        rtts.sort()
        return Phase(name: name, subscribers: n,
                     statusRttP50Us: percentile(rtts, 50), statusRttP99Us: percentile(rtts, 99), statusRttMaxUs: rtts.last ?? .nan,
                     ticks: after.ticks - before.ticks, expectedTicks: elapsed * after.rateHz, overruns: after.overruns - before.overruns,
                     jitterP50: histogramPercentile(h, edges: edges, 50), jitterP99: histogramPercentile(h, edges: edges, 99),
                     jitterP999: histogramPercentile(h, edges: edges, 99.9), jitterMaxUs: after.maxJitterUs,
                     eventsPerSubscriberMin: n > 0 ? counts.values.min() : nil,
                     eventsPerSubscriberMean: n > 0 ? Double(counts.values.reduce(0, +)) / Double(n) : nil)
    }
}

final class Counts: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Int]
    init(_ n: Int) { values = Array(repeating: 0, count: n) }
    func add(_ i: Int) { lock.lock(); values[i] += 1; lock.unlock() }
}

final class StopFlag: @unchecked Sendable { var value = false }
final class Box<T>: @unchecked Sendable { let value: T; init(_ v: T) { value = v } }

extension ControlClient {
    func status() throws -> StatusResult { try call("status", NoParams(), as: StatusResult.self) }
}

struct SimBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "How fast the simulated rig runs closed loop on a virtual clock (what the tests rely on).")
    @Option(help: "Plant seconds to simulate per channel.") var seconds = 600.0
    @Option(help: "Strategy of both channels for the per-tick cost (pid, adaptive, learned, mpc); they then follow a 0.1 Hz sine program (a program gives mpc its preview). Without it, the plant-speed run above.")
    var strategy: String?

    func run() throws {
        if let strategy {
            guard let st = ControlStrategy(rawValue: strategy) else { throw ValidationError("unknown strategy '\(strategy)'") }
            return try tickCost(st)
        }
        for (name, make, params) in [("A spring", { SimPresets.springChannel() }, SimPresets.springController()),
                                     ("B pneumatic", { SimPresets.pneumaticChannel() }, SimPresets.pneumaticController())] {
            var loop = ClosedLoop(controller: ChannelController(parameters: params), backend: make())
            try loop.controller.setTarget(5)
            let t0 = DispatchTime.now().uptimeNanoseconds
            loop.run(for: seconds)
            let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let p = loop.controller.state.pressure ?? .nan
            print("\(name): \(Int(seconds)) s of plant time (100 Hz control, 1 ms physics) in \(String(format: "%.3f", wall)) s wall = \(Int(seconds / wall))× real time; final \(String(format: "%.3f", p)) MPa")
        }
    }

    /// The controller's own cost per tick (`ChannelController.step`: checks, safety, the
    /// setpoint's sources, the law), both channels on `strategy` at 100 Hz, each tuned
    /// by a relay autotune first and then following a sine program.
    func tickCost(_ strategy: ControlStrategy) throws {
        var costs: [Double] = []
        for (name, family, area, mean, amplitude) in [("A spring", ControlBenchmark.Family.spring, 1.0, 5.0, 1.0),
                                                      ("B pneumatic", .pneumatic, 2.0, 2.0, 0.5)] {
            let backend = family == .spring ? SimPresets.springChannel() : SimPresets.pneumaticChannel()
            var params = family == .spring ? SimPresets.springController(area: area) : SimPresets.pneumaticController(area: area)
            params.strategy = strategy
            var controller = ChannelController(parameters: params)
            if let tune = ControlBenchmark.nominalTune(family) { controller.restoreLearning(tune: tune, memory: nil) }
            try controller.setTarget(mean)
            let period = 0.01
            var now = 0.0
            let n = Int((seconds / period).rounded())
            var mine: [Double] = []
            mine.reserveCapacity(n)
            for i in 0..<n {
                if i == 3000 { try controller.startProgram(PressureProgram(name: "sine", steps: [.sine(mean: mean, amplitude: amplitude, period: 10, duration: seconds)])) }
                now += period
                let readings = backend.read(now: now)
                let t0 = DispatchTime.now().uptimeNanoseconds
                let out = controller.step(now: now, readings: readings)
                mine.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e3)
                backend.apply(output: out, now: now)
            }
            let tail = Array(mine.dropFirst(3000)).sorted()
            costs += tail
            let mean = tail.reduce(0, +) / Double(max(1, tail.count))
            print(String(format: "%@ on %@: step %.1f µs mean, %.1f µs p99, %.1f µs max over %d ticks of the program (active: %@)", name, strategy.rawValue,
                         mean, tail[Int(Double(tail.count - 1) * 0.99)], tail.last ?? 0, tail.count, controller.activeControl.rawValue))
        }
        costs.sort()
        print(String(format: "both channels: %.1f µs p99 per channel-tick, %.1f µs max, against a 10 000 µs period", costs[Int(Double(costs.count - 1) * 0.99)], costs.last ?? 0))
    }
}
