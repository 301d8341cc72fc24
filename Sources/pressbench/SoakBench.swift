import ArgumentParser
import Foundation
import PressCore
import PressDaemon
import PressLog
import PressSim

/// `pressbench soak` (experiment): the daemon's loop core on the configured simulated rig,
/// on a virtual clock, nobody touching it.
struct SoakBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "soak", abstract: "Long unattended run on the simulated rig.")

    @Option(help: "Configuration (the simulated rig).") var config = "config/pressd.toml"
    @Option(help: "Plant hours.") var hours = 27.0
    @Option(help: "Override every channel's strategy.") var strategy: String?
    @Option(help: "Setpoints, CH=MPa.") var set: [String] = ["A=5", "B=2"]
    @Option(help: "Simulator seed override.") var seed: UInt64?

    func run() throws {
        var cfg = try DaemonConfig.load(path: config)
        if let seed { cfg.seed = seed }
        if let s = strategy {
            guard let st = ControlStrategy(rawValue: s) else { throw ValidationError("unknown strategy \(s)") }
            for i in cfg.channels.indices { cfg.channels[i].control.strategy = st }
        }
        var core = RigBuilder.simulated(cfg)
        let period = 1 / cfg.loopRate
        var now = 0.0
        core.tick(now: now)
        var targets: [String: Double] = [:]
        for s in set {
            let kv = s.split(separator: "=")
            guard kv.count == 2, let v = Double(kv[1]), let i = core.channels.firstIndex(where: { $0.settings.name == kv[0] }) else { throw ValidationError("bad --set \(s)") }
            _ = core.apply(.set(channel: i, mpa: v, ramp: nil))
            targets[String(kv[0])] = v
        }
        let started = Date()
        let total = Int(hours * 3600 * cfg.loopRate)
        var outside: [String: (start: Double, lo: Double, hi: Double, n: Int)] = [:]
        var bursts = 0
        var samples = 0, inBand = 0
        var nextReport = 3600.0
        for _ in 0..<total {
            now += period
            core.tick(now: now)
            for e in core.takeEvents() {
                switch e.event {
                case .adaptation(let s), .supervisor(let s), .configuration(let s): print(String(format: "%9.3f h %@ %@", e.time / 3600, e.channel, s))
                case .faultRaised(let r, _): print(String(format: "%9.3f h %@ FAULT %@ %@", e.time / 3600, e.channel, r.code.rawValue, r.message))
                case .authority(let st, let d): print(String(format: "%9.3f h %@ authority %@ %@", e.time / 3600, e.channel, st.rawValue, d))
                default: break
                }
            }
            for s in core.takeSamples() {
                guard let t = targets[s.channel], s.time > 120, let lo = s.pressureMin, let hi = s.pressureMax else { continue }
                samples += 1
                let out = lo < 0.95 * t || hi > 1.05 * t
                if !out { inBand += 1 }
                if out {
                    var o = outside[s.channel] ?? (s.time, lo, hi, 0)
                    o.lo = min(o.lo, lo); o.hi = max(o.hi, hi); o.n += 1
                    outside[s.channel] = o
                } else if let o = outside.removeValue(forKey: s.channel) {
                    if o.n >= 2 || o.lo < 0.85 * t || o.hi > 1.15 * t {
                        bursts += 1
                        print(String(format: "%9.3f h %@ OUT OF BAND %d s, envelope %.3f…%.3f MPa (setpoint %.2f)", o.start / 3600, s.channel, o.n, o.lo, o.hi, t))
                    }
                }
            }
            if now >= nextReport {
                nextReport += 3600
                let st = core.states.map { s in String(format: "%@ %.3f scale %.3f g %@", s.name, s.pressure ?? .nan, s.control.memory?.scale ?? 1,
                                                       s.control.memory.map { String(format: "%.3f(%d) osc %d", $0.estimate.gain, $0.estimate.observations, $0.oscillations) } ?? "-") }
                print(String(format: "%6.1f h  wall %.0f s  %@", now / 3600, Date().timeIntervalSince(started), st.joined(separator: " | ")))
            }
        }
        print("samples \(samples), in band \(String(format: "%.3f", Double(inBand) / Double(max(samples, 1)) * 100)) %, bursts \(bursts), wall \(Int(Date().timeIntervalSince(started))) s")
    }
}
