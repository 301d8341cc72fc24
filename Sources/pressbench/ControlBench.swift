import ArgumentParser
import Foundation
import PressCore
import PressSim

/// `pressbench control`: the control benchmark of docs/performance.md.
struct ControlBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control",
        abstract: "Fixed PID, adaptive PID, learned model and an oracle on the standard scenarios of the simulated rig.")

    @Option(help: "Only scenarios whose name contains this.") var only: String?
    @Option(help: "Tuning rule of the autotunes (\(TuningRule.allCases.map(\.rawValue).joined(separator: ", "))).")
    var rule: String = TuningRule.amigo.rawValue
    @Option(help: "Simulator seed.") var seed: UInt64 = 7
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Print the adaptation, authority and excursion events of every run.") var trace = false

    func run() throws {
        guard let rule = TuningRule(rawValue: rule) else { throw ValidationError("unknown rule '\(rule)'") }
        let started = DispatchTime.now().uptimeNanoseconds
        let tunes: [ControlBenchmark.Family: AutotuneResult?] = [
            .spring: ControlBenchmark.nominalTune(.spring, rule: rule),
            .pneumatic: ControlBenchmark.nominalTune(.pneumatic, rule: rule)]
        var results: [ControlBenchmark.Result] = []
        for sc in ControlBenchmark.scenarios() where only.map({ sc.name.contains($0) }) ?? true {
            for c in ControlBenchmark.Contender.allCases {
                results.append(ControlBenchmark.run(sc, c, nominal: tunes[sc.family] ?? nil, seed: seed, rule: rule, trace: !trace ? nil : { t, e in
                    switch e {
                    case .adaptation(let m), .authority(_, let m): print(String(format: "%@ %@ %8.2f s  %@", sc.name, c.rawValue, t, m))
                    case .excursion(let x): print(String(format: "%@ %@ %8.2f s  excursion %.2f s, worst %+.3f MPa (%@)", sc.name, c.rawValue, t, x.duration ?? 0, x.worstError, x.cause))
                    default: break
                    }
                }))
            }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
            return
        }
        func f(_ v: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", v) }
        print("| scenario | controller | ±5 % | ±1 % | IAE MPa·s | worst % | overshoot % | settling s | max above % | travel | sat. ticks | excursions | out of band s | recoveries | faults |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in results {
            print("| \(r.scenario) | \(r.contender) | \(f(r.within5, 3)) | \(f(r.within1, 1)) | \(f(r.iae, 3)) | \(f(r.worstError, 2)) | \(f(r.overshoot, 1)) | \(r.settlingTime.map { f($0, 1) } ?? "–") | \(f(r.maxAboveTarget, 2)) | \(f(r.travel, 0)) | \(r.saturatedTicks) | \(r.excursions) | \(f(r.outOfBandS, 1)) | \(r.recoveries) | \(r.faults.joined(separator: ",")) |")
        }
        print("")
        for sc in ControlBenchmark.scenarios() where only.map({ sc.name.contains($0) }) ?? true {
            print("\(sc.name) (\(sc.family.rawValue), \(Int(sc.duration)) s): \(sc.summary)")
        }
        print("")
        for (fam, t) in tunes.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            if let t { print("nominal autotune (\(fam.rawValue)): rule \(t.rule.rawValue), Ku \(f(t.ultimateGain, 1)), Pu \(f(t.ultimatePeriod, 3)) s, K \(t.processGain), τ \(f(t.timeConstant, 3)) s, θ \(f(t.deadTime, 3)) s → kp \(f(t.kp, 3)), ki \(f(t.ki, 3))") }
            else { print("nominal autotune (\(fam.rawValue)): failed") }
        }
        print("wall time \(f(wall, 1)) s")
    }
}
