import ArgumentParser
import Foundation
import PressCore
import PressDaemon
import PressLog
import PressSim

/// `pressbench soak`: weeks of unattended plant time on the configured simulated rig
/// (issue 22), nobody touching it but a randomised schedule of what a lab's month holds.
///
/// The daemon's own loop core (``LoopCore``, the channels of ``RigBuilder``) runs on a
/// virtual clock, as the daemon's loop thread runs it on the wall clock; samples and
/// events go into a real run log with the configured retention and downsampling. The
/// schedule (seeded, the same for every strategy compared):
/// - cycling, a regime per channel per day: realistic (±0.5–1.5 mA/cm², 2–10 h
///   period) or, one day in three, fast charge (±3–5 mA/cm², 0.5–1.5 h);
/// - thermal swings: a daily ±1.5 K cycle of the lab, and every few days an HVAC
///   fault that moves the ambient 3–6 K for 1–8 h;
/// - creep (the cell model's own, all the time);
/// - supply dips on pneumatic channels, 4 a day, 5 s–20 min long, to 0.25–0.6 MPa
///   (above what the setpoint needs), and once a week a deep one to 0.1 MPa for
///   20–120 s, which no controller can ride through (excluded from the band, with the
///   3 minutes after it);
/// - sensor noise episodes: the load cell's noise ×2–4 for 1–12 h, every few days;
/// - late ticks: a real-time loop on a busy host, ~170 a day, 10–100 ms late;
/// - an operator's setpoint move every 2–5 days (±10–20 %, back after 6–24 h).
///
/// Scored: every logged 1 s sample's envelope (the fast loop's min…max) against ±5 %
/// of its setpoint, except in the first 2 minutes after a setpoint change and in the
/// excluded windows. A **burst** is a run of scored samples outside the band.
struct SoakBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Weeks of unattended plant time on the simulated rig: time in band, bursts, excursions, adaptation, memory and run-log growth.")

    @Option(help: "Configuration (the simulated rig).") var config = "config/pressd.toml"
    @Option(help: "Plant days.") var days = 30.0
    @Option(help: "Strategies to run, comma-separated (pid, adaptive, learned).") var strategies = "pid,adaptive,learned"
    @Option(help: "Setpoints, CH=MPa (default: A=5, B=2, the default rig's).") var set: [String] = []
    @Option(help: "Seed of the schedule and the simulator.") var seed: UInt64 = 1
    @Option(help: "Runs at a time (one per strategy).") var jobs = 2
    @Flag(help: "Exit 1 unless every strategy keeps every scored sample within ±5 %, with no burst, no fault and flat memory.") var check = false
    @Flag(help: "Print JSON instead of tables.") var json = false
    @Flag(help: "Print each run's adaptation, fault and excursion events.") var trace = false

    func run() throws {
        var base = try DaemonConfig.load(path: config)
        base.seed = seed
        let wanted = try strategies.split(separator: ",").map { s -> ControlStrategy in
            guard let st = ControlStrategy(rawValue: String(s)) else { throw ValidationError("unknown strategy '\(s)'") }
            return st
        }
        var setpoints: [String: Double] = ["A": 5, "B": 2]
        for s in set {
            let kv = s.split(separator: "=")
            guard kv.count == 2, let v = Double(kv[1]) else { throw ValidationError("--set wants CH=MPa, not '\(s)'") }
            setpoints[String(kv[0])] = v
        }
        for c in base.channels where setpoints[c.name] == nil {
            throw ValidationError("no setpoint for channel \(c.name): --set \(c.name)=MPa")
        }
        let started = Date()
        let rss0 = residentBytes()
        var all: [SoakResult]
        if wanted.count == 1 {
            var cfg = base
            for i in cfg.channels.indices { cfg.channels[i].control.strategy = wanted[0] }
            var r = SoakRun(config: cfg, strategy: wanted[0], setpoints: setpoints, days: days, seed: seed, trace: trace).run()
            (r.rssStartMB, r.rssEndMB) = (Double(rss0) / 1e6, Double(residentBytes()) / 1e6)
            all = [r]
        } else {
            // One process per strategy: each run's memory is its own (runs sharing a process
            // share its allocator, whose per-thread arenas grew with two runs' run-log
            // maintenance and hid what one run holds).
            let results = Mutex<[SoakResult]>([])
            let failures = Mutex<[String]>([])
            let gate = DispatchSemaphore(value: max(1, jobs))
            let group = DispatchGroup()
            let sets = setpoints.sorted { $0.key < $1.key }.flatMap { ["--set", "\($0.key)=\($0.value)"] }
            for st in wanted {
                gate.wait()
                group.enter()
                let args = ["soak", "--config", config, "--days", "\(days)", "--strategies", st.rawValue, "--seed", "\(seed)", "--json"] + sets + (trace ? ["--trace"] : [])
                Thread.detachNewThread {
                    defer { gate.signal(); group.leave() }
                    let child = Process()
                    child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
                    child.arguments = args
                    let out = Pipe()
                    child.standardOutput = out
                    do {
                        try child.run()
                        let data = out.fileHandleForReading.readDataToEndOfFile()
                        child.waitUntilExit()
                        // The JSON report is the last thing printed (after any --trace lines).
                        let text = String(decoding: data, as: UTF8.self)
                        let start = text.hasPrefix("{") ? text.startIndex : text.range(of: "\n{\n").map { text.index(after: $0.lowerBound) }
                        guard let start, let r = try? JSONDecoder().decode(SoakReport.self, from: Data(text[start...].utf8)) else {
                            failures.withLock { $0.append("\(st.rawValue): the run's process gave no report (exit \(child.terminationStatus))") }
                            return
                        }
                        if trace { print(text[..<start], terminator: "") }
                        results.withLock { $0.append(contentsOf: r.runs) }
                    } catch {
                        failures.withLock { $0.append("\(st.rawValue): \(error)") }
                    }
                }
            }
            group.wait()
            for f in failures.withLock({ $0 }) { FileHandle.standardError.write(Data("soak: \(f)\n".utf8)) }
            all = results.withLock { $0 }.sorted { wanted.firstIndex(of: $0.strategy)! < wanted.firstIndex(of: $1.strategy)! }
            if all.count < wanted.count { throw ExitCode(1) }
        }
        let report = SoakReport(days: days, seed: seed, wallSeconds: Date().timeIntervalSince(started),
                                rssStartMB: all.compactMap(\.rssStartMB).min() ?? Double(rss0) / 1e6,
                                rssEndMB: all.compactMap(\.rssEndMB).max() ?? Double(residentBytes()) / 1e6, runs: all)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print(report.markdown)
        }
        if check {
            let problems = report.problems
            for p in problems { FileHandle.standardError.write(Data("soak: \(p)\n".utf8)) }
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }
}

/// Resident set size of this process, bytes (/proc/self/statm).
func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let f = s.split(separator: " ")
    return f.count > 1 ? (Int(f[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

import Synchronization

/// One channel's score over a soak.
struct SoakChannelResult: Codable {
    var channel: String
    var fixture: String
    var scoredSamples = 0
    var inBand = 0
    /// Runs of scored samples outside ±5 %: how many, and the first few.
    var bursts = 0
    var burstExamples: [String] = []
    /// Largest |envelope − setpoint| / setpoint over scored samples, %.
    var worstPercent = 0.0
    /// Excursion events recorded, and all excursions counted (brief ones included).
    var excursionEvents = 0
    var excursionsCounted = 0
    var worstExcursion = ""
    var worstExcursionPercent = 0.0
    /// The first faults raised (at most 10) and how many in all.
    var faults: [String] = []
    var faultCount = 0
    var oscillationsDamped = 0
    var gainsValidated = 0
    var fallbacks = 0
    var finalScale: Double?
    var deepDips = 0
    var excludedSeconds = 0.0
    var inBandPercent: Double { scoredSamples > 0 ? Double(inBand) / Double(scoredSamples) * 100 : 0 }
}

struct SoakResult: Codable {
    var strategy: ControlStrategy
    var days: Double
    var channels: [SoakChannelResult]
    var wallSeconds: Double
    /// Run-log bytes at the end of each day (this run's own database).
    var runLogBytesPerDay: [Int]
    var nativeRows = 0
    var downsampledRows = 0
    var fullResolutionDays: Double
    var downsamplePeriod: Double
    var retentionDays: Double
    var lateTicks = 0
    /// The run's process's resident memory at its start and end, MB.
    var rssStartMB: Double?
    var rssEndMB: Double?
}

struct SoakReport: Codable {
    var days: Double
    var seed: UInt64
    var wallSeconds: Double
    var rssStartMB: Double
    var rssEndMB: Double
    var runs: [SoakResult]

    /// What `--check` fails on.
    var problems: [String] {
        var p: [String] = []
        for r in runs {
            for c in r.channels {
                let who = "\(r.strategy.rawValue) \(c.channel)"
                if c.bursts > 0 { p.append("\(who): \(c.bursts) bursts outside ±5 %, e.g. \(c.burstExamples.first ?? "")") }
                if c.inBand < c.scoredSamples { p.append("\(who): \(c.scoredSamples - c.inBand) of \(c.scoredSamples) scored samples outside ±5 %") }
                if !c.faults.isEmpty { p.append("\(who): faults \(c.faults.joined(separator: ", "))") }
                if c.scoredSamples == 0 { p.append("\(who): nothing scored") }
            }
        }
        // Memory: the simulated rig, the loop core and the run log's caches are bounded;
        // a leak of a few bytes per tick over days would show as hundreds of MB.
        for r in runs {
            if let a = r.rssStartMB, let b = r.rssEndMB, b - a > 100 {
                p.append(String(format: "%@: resident memory grew from %.1f to %.1f MB", r.strategy.rawValue, a, b))
            }
        }
        return p
    }

    var markdown: String {
        func f(_ v: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", v) }
        var s = "pressbench soak: \(f(days, 1)) plant days per strategy, seed \(seed), wall \(f(wallSeconds / 60, 1)) min; resident memory per run (its own process): "
            + runs.map { r in "\(r.strategy.rawValue) \(r.rssStartMB.map { f($0, 1) } ?? "?") → \(r.rssEndMB.map { f($0, 1) } ?? "?") MB" }.joined(separator: ", ") + "\n\n"
        s += "| strategy | channel | scored 1 s samples | within ±5 % | bursts | worst % | excursion events (counted) | worst excursion | oscillations damped | gains validated | fallbacks | final scale | faults |\n"
        s += "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n"
        for r in runs {
            for c in r.channels {
                s += "| \(r.strategy.rawValue) | \(c.channel) (\(c.fixture)) | \(c.scoredSamples) | \(f(c.inBandPercent, 4)) % | \(c.bursts) | \(f(c.worstPercent)) | \(c.excursionEvents) (\(c.excursionsCounted)) | \(c.worstExcursion.isEmpty ? "–" : c.worstExcursion) | \(c.oscillationsDamped) | \(c.gainsValidated) | \(c.fallbacks) | \(c.finalScale.map { f($0, 3) } ?? "–") | \(c.faults.isEmpty ? "–" : c.faults.joined(separator: ", ") + (c.faultCount > c.faults.count ? " … \(c.faultCount) in all" : "")) |\n"
            }
        }
        s += "\n"
        for r in runs {
            let perDay = zip(r.runLogBytesPerDay.dropFirst(), r.runLogBytesPerDay).map { $0 - $1 }
            let firstDay = r.runLogBytesPerDay.first ?? 0
            let growth = ([firstDay] + perDay).prefix(Int(min(r.fullResolutionDays, r.days))).map(Double.init)
            let fullPerDay = growth.isEmpty ? 0 : growth.reduce(0, +) / Double(growth.count)
            let chans = Double(max(1, r.channels.count))
            let bytesPerRow = r.nativeRows + r.downsampledRows > 0 ? Double(r.runLogBytesPerDay.last ?? 0) / Double(r.nativeRows + r.downsampledRows) : 0
            let rowsPerDayDown = 86_400 / r.downsamplePeriod
            let yearMB = (min(r.retentionDays, r.fullResolutionDays > 0 ? r.fullResolutionDays : r.retentionDays) * fullPerDay / chans
                + max(0, r.retentionDays - r.fullResolutionDays) * (r.fullResolutionDays > 0 ? rowsPerDayDown * bytesPerRow : 0)) / 1e6
            s += "\(r.strategy.rawValue): run log \(f(Double(r.runLogBytesPerDay.last ?? 0) / 1e6, 1)) MB after \(f(r.days, 1)) days "
            s += "(\(r.nativeRows) rows as logged, \(r.downsampledRows) downsampled to \(Int(r.downsamplePeriod)) s beyond \(f(r.fullResolutionDays, 0)) days); "
            s += "full resolution \(f(fullPerDay / chans / 1e6, 2)) MB per channel per day, \(f(bytesPerRow, 0)) bytes per row; "
            s += "a year at retention \(f(r.retentionDays, 0)) days ≈ \(f(yearMB, 0)) MB per channel; \(r.lateTicks) late ticks; wall \(f(r.wallSeconds / 60, 1)) min\n"
        }
        return s
    }
}

/// One strategy's soak.
struct SoakRun {
    let config: DaemonConfig
    let strategy: ControlStrategy
    let setpoints: [String: Double]
    let days: Double
    let seed: UInt64
    let trace: Bool

    /// A scheduled change: at plant time `time`, on channel `channel`.
    enum Action {
        case inject(SimInjection)
        case setpoint(Double)
        /// Samples in [time, until) are not scored (a deep supply dip and its recovery).
        case exclude(until: Double)
    }

    /// The month's schedule; deterministic for the seed, independent of the strategy.
    static func schedule(_ cfg: DaemonConfig, setpoints: [String: Double], days: Double, seed: UInt64) -> [(time: Double, channel: Int, action: Action)] {
        var rng = SimRandom(seed: seed ^ 0x50AC_5EED)
        func u(_ a: Double, _ b: Double) -> Double { a + (b - a) * rng.uniform() }
        let end = days * 86_400
        var out: [(Double, Int, Action)] = []
        for (i, c) in cfg.channels.enumerated() {
            let area = c.control.cellArea
            let sp = setpoints[c.name]!
            out.append((0, i, .setpoint(sp)))
            // Cycling regime per day.
            var t = 0.0
            while t < end {
                let fast = rng.uniform() < 1.0 / 3
                let current = (fast ? u(3, 5) : u(0.5, 1.5)) * area
                let period = fast ? u(0.5, 1.5) * 3600 : u(2, 10) * 3600
                out.append((t, i, .inject(SimInjection(current: current, cyclePeriod: period))))
                t += 86_400
            }
            // Lab temperature: a daily cycle, every 10 min.
            for k in stride(from: 0.0, to: end, by: 600) {
                out.append((k, i, .inject(SimInjection(ambient: 25 + 1.5 * sin(2 * .pi * k / 86_400)))))
            }
            // HVAC faults: every 2–5 days, 3–6 K for 1–8 h (the daily cycle resumes after).
            t = u(1, 3) * 86_400
            while t < end {
                let d = u(3, 6) * (rng.uniform() < 0.5 ? -1 : 1), hours = u(1, 8)
                for k in stride(from: t, to: min(end, t + hours * 3600), by: 600) {
                    out.append((k + 1, i, .inject(SimInjection(ambient: 25 + d + 1.5 * sin(2 * .pi * k / 86_400)))))
                }
                t += u(2, 5) * 86_400
            }
            // Sensor noise episodes.
            let noise = c.sim.loadCell.noise
            t = u(0.5, 5) * 86_400
            while t < end {
                var on = SimInjection(); on.sensorNoise = noise * u(2, 4)
                var off = SimInjection(); off.sensorNoise = noise
                let hours = u(1, 12)
                out.append((t, i, .inject(on)))
                out.append((t + hours * 3600, i, .inject(off)))
                t += u(2, 8) * 86_400
            }
            // Supply dips on pneumatic channels.
            if c.actuator == .pneumatic {
                let supply = c.sim.pneumatic.supply
                t = u(0, 6) * 3600
                while t < end {
                    let length = exp(u(log(5), log(1200)))
                    out.append((t, i, .inject(SimInjection(supply: u(0.25, 0.6)))))
                    out.append((t + length, i, .inject(SimInjection(supply: supply))))
                    t += length + u(1, 11) * 3600
                }
                t = u(2, 7) * 86_400
                while t < end {
                    let length = u(20, 120)
                    out.append((t, i, .inject(SimInjection(supply: 0.1))))
                    out.append((t + length, i, .inject(SimInjection(supply: supply))))
                    out.append((t, i, .exclude(until: t + length + 180)))
                    t += u(5, 9) * 86_400
                }
            }
            // An operator's setpoint move every 2–5 days, and back after 6–24 h.
            t = u(2, 5) * 86_400
            while t < end {
                let moved = sp * (1 + (rng.uniform() < 0.5 ? -1 : 1) * u(0.1, 0.2))
                out.append((t, i, .setpoint(min(max(moved, c.control.limits.minSetpoint), c.control.limits.maxSetpoint))))
                out.append((t + u(6, 24) * 3600, i, .setpoint(sp)))
                t += u(2, 5) * 86_400
            }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    func run() -> SoakResult {
        let started = Date()
        var core = RigBuilder.simulated(config)
        let period = 1 / config.loopRate
        var plan = Self.schedule(config, setpoints: setpoints, days: days, seed: seed)[...]
        var rng = SimRandom(seed: seed ^ 0x1A7E)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressbench-soak-\(strategy.rawValue)-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = ProcessInfo.processInfo.environment["SOAK_NO_RUNLOG"] != nil ? nil : try? RunLog(path: dir + "/runlog.sqlite")
        let epoch = 1.8e9
        core.epoch = epoch
        var ch = config.channels.map { c in
            SoakChannelResult(channel: c.name, fixture: c.actuator == .pneumatic ? "pneumatic" : "spring")
        }
        var target = config.channels.map { setpoints[$0.name]! }
        var lastChange = [Double](repeating: 0, count: ch.count)
        var excludedUntil = [Double](repeating: -1, count: ch.count)
        var outside = [Int](repeating: 0, count: ch.count)
        var pendingSamples: [LogSample] = []
        var pendingEvents: [RunLogEvent] = []
        var bytesPerDay: [Int] = []
        var lateTicks = 0
        var now = 0.0
        core.tick(now: now)
        let end = days * 86_400
        var nextDay = 86_400.0
        while now < end {
            while let e = plan.first, e.time <= now {
                plan.removeFirst()
                switch e.action {
                case .inject(let j): _ = core.apply(.inject(channel: e.channel, j))
                case .setpoint(let sp):
                    _ = core.apply(.set(channel: e.channel, mpa: sp, ramp: nil))
                    target[e.channel] = sp; lastChange[e.channel] = now
                case .exclude(let until):
                    excludedUntil[e.channel] = max(excludedUntil[e.channel], until)
                    ch[e.channel].deepDips += 1
                    ch[e.channel].excludedSeconds += until - e.time
                }
            }
            // A real-time loop on a busy host: now and then a tick comes 10–100 ms late.
            var step = period
            if rng.uniform() < 2e-5 { step += period * Double(1 + Int(rng.uniform() * 10)); lateTicks += 1 }
            now += step
            core.tick(now: now)
            for e in core.takeEvents() {
                let i = core.channels.firstIndex { $0.settings.name == e.channel } ?? 0
                pendingEvents.append(RunLogEvent(e, epoch: epoch))
                switch e.event {
                case .faultRaised(let r, _):
                    ch[i].faultCount += 1
                    if ch[i].faults.count < 10 { ch[i].faults.append("\(r.code.rawValue) at \(String(format: "%.2f", e.time / 3600)) h") }
                case .excursion(let x):
                    ch[i].excursionEvents += 1
                    if abs(x.worstError) / x.setpoint * 100 >= ch[i].worstExcursionPercent {
                        ch[i].worstExcursionPercent = abs(x.worstError) / x.setpoint * 100
                        ch[i].worstExcursion = String(format: "%.2f %% for %.2f s at %.1f h (%@)", abs(x.worstError) / x.setpoint * 100, x.duration ?? 0, x.start / 3600, x.cause)
                    }
                case .adaptation(let m):
                    if m.hasPrefix("loop oscillating") { ch[i].oscillationsDamped += 1 }
                    if m.contains("validated on") { ch[i].gainsValidated += 1 }
                    if m.contains("mispredicted") { ch[i].fallbacks += 1 }
                default: break
                }
                if trace {
                    switch e.event {
                    case .adaptation, .faultRaised, .excursion, .authority, .recovery:
                        print(String(format: "%@ %@ %9.3f h  %@", strategy.rawValue, e.channel, e.time / 3600, "\(e.event)"))
                    default: break
                    }
                }
            }
            for s in core.takeSamples() {
                pendingSamples.append(s)
                guard let i = core.channels.firstIndex(where: { $0.settings.name == s.channel }) else { continue }
                let t = s.time - epoch
                guard t - lastChange[i] >= 120, t >= excludedUntil[i] else { continue }
                let sp = target[i]
                ch[i].scoredSamples += 1
                let lo = s.pressureMin ?? -.infinity, hi = s.pressureMax ?? .infinity
                let worst = max(sp - lo, hi - sp) / sp * 100
                ch[i].worstPercent = max(ch[i].worstPercent, worst)
                if s.mode == "regulating" && worst <= 5 {
                    ch[i].inBand += 1
                    if outside[i] > 0 { outside[i] = 0 }
                } else {
                    if outside[i] == 0 {
                        ch[i].bursts += 1
                        if ch[i].burstExamples.count < 5 {
                            ch[i].burstExamples.append(String(format: "%.3f h: %.3f…%.3f MPa on %.2f (%@)", t / 3600, lo, hi, sp, s.mode))
                        }
                    }
                    outside[i] += 1
                }
            }
            if pendingSamples.count >= 1200 {
                _ = try? log?.append(samples: pendingSamples, events: pendingEvents)
                pendingSamples.removeAll(keepingCapacity: true); pendingEvents.removeAll(keepingCapacity: true)
            }
            if now >= nextDay {
                nextDay += 86_400
                _ = try? log?.append(samples: pendingSamples, events: pendingEvents)
                pendingSamples.removeAll(keepingCapacity: true); pendingEvents.removeAll(keepingCapacity: true)
                // The writer's daily maintenance on the log's own clock.
                let r = config.runlog
                if let log {
                    if r.retentionDays > 0 { _ = try? log.prune(before: epoch + now - r.retentionDays * 86_400) }
                    if r.fullResolutionDays > 0 {
                        while ((try? log.downsample(before: epoch + now - r.fullResolutionDays * 86_400, period: r.downsamplePeriod, maxRows: 20_000)) ?? 0) > 0 {}
                    }
                    bytesPerDay.append(log.diskBytes())
                }
                FileHandle.standardError.write(Data(String(format: "soak %@: day %.0f of %.0f, wall %.1f min, RSS %.1f MB\n", strategy.rawValue, now / 86_400, days,
                                                           Date().timeIntervalSince(started) / 60, Double(residentBytes()) / 1e6).utf8))
            }
        }
        for i in ch.indices {
            let s = core.channels[i].controller.excursionStats
            ch[i].excursionsCounted = s.count
            ch[i].finalScale = core.channels[i].controller.adapter?.memory.scale
        }
        let (native, down) = (try? log?.sampleCounts()) ?? (0, 0)
        return SoakResult(strategy: strategy, days: days, channels: ch, wallSeconds: Date().timeIntervalSince(started), runLogBytesPerDay: bytesPerDay,
                          nativeRows: native, downsampledRows: down, fullResolutionDays: config.runlog.fullResolutionDays,
                          downsamplePeriod: config.runlog.downsamplePeriod, retentionDays: config.runlog.retentionDays, lateTicks: lateTicks)
    }
}
