import Foundation
import Testing
@testable import PressCore

/// Soft-short detection on the cell voltage (issue 14): a collapse or rising noise at
/// steady current is a suspected short; a cycler's own switching, a stale voltage and
/// an absent voltage are not. Fed at 100 ticks/s with measurements arriving at their own
/// rate, so what is counted is measurements, not ticks.
@Suite("Soft-short detector")
struct ShortDetectorTests {
    /// Small deterministic noise, ±1 mV.
    static func jitter(_ k: Int) -> Double {
        var x = UInt64(bitPattern: Int64(k)) &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        return Double(Int(x % 21) - 10) * 0.0001
    }

    /// Runs `seconds` of 100 Hz ticks; a voltage measurement arrives every `every` s
    /// (its sample time is the measurement's), the current every tick. Returns the time
    /// of the first detection and its evidence.
    static func run(_ d: inout ShortDetector, from t0: Double = 0, seconds: Double, every: Double = 1,
                    voltage: (Double) -> Double?, current: (Double) -> Double?, voltageAge: Double = 0) -> (Double, ShortEvidence)? {
        var lastMeasured: Sample?
        let n = Int((seconds * 100).rounded())
        for k in 1...n {
            let t = t0 + Double(k) / 100
            let slot = (t / every).rounded(.down) * every
            if lastMeasured.map({ slot > $0.time + 1e-9 }) ?? true, let v = voltage(slot) {
                lastMeasured = Sample(value: v, time: slot - voltageAge)
            }
            let i = current(t).map { Sample(value: $0, time: t) }
            if let e = d.update(now: t, voltage: lastMeasured, current: i, pressure: 5) { return (t, e) }
        }
        return nil
    }

    @Test("a voltage collapse at steady current, measured once a second, is found within 3 s with its evidence")
    func collapse() throws {
        var d = ShortDetector(settings: ShortDetectionSettings())
        // Full cell charging at 1 mA through 30 Ω: 3.73 V; the short at 60 s pulls it to 3.2 V.
        let hit = Self.run(&d, seconds: 120, voltage: { t in (t < 60 ? 3.73 : 3.2) + Self.jitter(Int(t)) }, current: { _ in 1 })
        let (t, e) = try #require(hit)
        #expect(t >= 60 && t <= 63, "found at \(t) s")
        #expect(e.kind == .collapse)
        #expect(e.voltageBefore > 3.7 && e.voltageAfter < 3.25)
        #expect(e.current == 1 && e.pressure == 5)
        #expect(e.message.contains("V") && e.message.contains("mA") && e.message.contains("MPa"), "\(e.message)")
    }

    @Test("rising voltage noise at steady current is found; the same noise from the start is the baseline")
    func noise() throws {
        // The collapse test off (collapse_v 1 V), so that only the noise can find it.
        var s = ShortDetectionSettings()
        s.collapseVolts = 1
        var d = ShortDetector(settings: s)
        // A flickering shunt: ±40 mV around the same mean from 100 s.
        let noisy = Self.run(&d, seconds: 200, voltage: { t in 3.73 + (t < 100 ? Self.jitter(Int(t)) : Self.jitter(Int(t)) * 40) },
                             current: { _ in 1 })
        let (t, e) = try #require(noisy)
        #expect(e.kind == .noise, "\(e.message)")
        #expect(t >= 100 && t <= 130, "found at \(t) s")
    }

    @Test("a cycler switching between charge and discharge (voltage steps of ΔI·R, then relaxation) never trips it")
    func cyclerSwitching() {
        var d = ShortDetector(settings: ShortDetectionSettings())
        // ±3 mA through 30 Ω, switching every 60 s: the voltage steps by 0.18 V at each
        // switch and relaxes over 5 s, with a slow drift of charge. Voltage every 1 s.
        func current(_ t: Double) -> Double { Int(t / 60) % 2 == 0 ? 3 : -3 }
        func voltage(_ t: Double) -> Double {
            let since = t.truncatingRemainder(dividingBy: 60)
            let i = current(t)
            let relax = 0.03 * exp(-since / 2) * (i > 0 ? 1 : -1)
            return 3.7 + i / 1000 * 30 + relax + 0.0002 * since * (i > 0 ? 1 : -1) + Self.jitter(Int(t))
        }
        #expect(Self.run(&d, seconds: 1800, voltage: voltage, current: current) == nil)
        // Switching every 2 s (pulsed charging), sampled every 0.5 s.
        var fast = ShortDetector(settings: ShortDetectionSettings())
        #expect(Self.run(&fast, seconds: 600, every: 0.5, voltage: { t in 3.7 + (Int(t / 2) % 2 == 0 ? 0.09 : -0.09) },
                         current: { t in Int(t / 2) % 2 == 0 ? 3 : -3 }) == nil)
    }

    @Test("a stale voltage (its sample time no longer moves, or it is older than stale_after_s) and an absent one never trip it")
    func staleOrAbsent() {
        // The voltage source stops at 60 s: the last sample stays in the readings while
        // the short happens; the readings keep the old value, so nothing is judged.
        var d = ShortDetector(settings: ShortDetectionSettings())
        #expect(Self.run(&d, seconds: 300, voltage: { t in t < 60 ? 3.73 + Self.jitter(Int(t)) : nil }, current: { _ in 1 }) == nil)
        // A voltage that arrives 20 s old (beyond stale_after_s = 10) collapsing: never judged.
        var old = ShortDetector(settings: ShortDetectionSettings())
        #expect(Self.run(&old, seconds: 120, voltage: { t in t < 60 ? 3.73 : 3.2 }, current: { _ in 1 }, voltageAge: 20) == nil)
        // No voltage at all.
        var none = ShortDetector(settings: ShortDetectionSettings())
        #expect(Self.run(&none, seconds: 120, voltage: { _ in nil }, current: { _ in 1 }) == nil)
        // A voltage but no current signal: the current's steadiness is unknown.
        var noCurrent = ShortDetector(settings: ShortDetectionSettings())
        #expect(Self.run(&noCurrent, seconds: 120, voltage: { t in t < 60 ? 3.73 : 3.2 }, current: { _ in nil }) == nil)
    }

    @Test("at a fast-charge current the judged voltage carries I × the resistance signal's noise: no collapse from that noise alone; a real collapse still found")
    func fastChargeResistanceNoise() throws {
        // Issue 22's soak: 8.75 mA through a 2 cm² cell, the interfacial resistance measured
        // every tick with 1 % noise (≈ 200 Ω·cm²): I·R/A ≈ 0.875 V, its noise ≈ 9 mV.
        var rng = SplitMixForTest(seed: 5)
        var d = ShortDetector(settings: ShortDetectionSettings())
        var hit: (Double, ShortEvidence)?
        for k in 1...(1800 * 100) where hit == nil {
            let t = Double(k) / 100
            let r = 200 * (1 + 0.01 * rng.gaussian())
            let shorted = t >= 1500
            let v = 3.7 + 8.75 / 1000 * 200 / 2 - (shorted ? 0.3 : 0) + 0.0005 * rng.gaussian()
            hit = d.update(now: t, voltage: Sample(value: v, time: t), current: Sample(value: 8.75, time: t), pressure: 2,
                           resistance: Sample(value: r, time: t), area: 2).map { (t, $0) }
        }
        let (t, e) = try #require(hit, "the 300 mV collapse at 1500 s was not found")
        #expect(t >= 1500 && t < 1501, "a collapse at \(t) s: \(e.message)")
        #expect(e.kind == .collapse)
    }

    @Test("a step of the resistance signal itself (a new analyser result) at fast charge is not a collapse of the voltage; a real collapse after it is still found")
    func resistanceStep() throws {
        // Issue 22's month soak, 24.003 h: 8.8 mA through 2 cm², the raw voltage steady to
        // 1 mV while the interfacial resistance the judged voltage is compensated with
        // stepped by 25 Ω·cm² (≈ 110 mV of I·R/A): flagged "fell 6.227 → 6.226 V".
        var d = ShortDetector(settings: ShortDetectionSettings())
        var hit: (Double, ShortEvidence)?
        for k in 1...(1200 * 100) where hit == nil {
            let t = Double(k) / 100
            let r = t < 600 ? 200.0 : 225.0
            let v = 6.227 - (t >= 1000 ? 0.3 : 0) + (k % 2 == 0 ? 0.0002 : -0.0002)
            hit = d.update(now: t, voltage: Sample(value: v, time: t), current: Sample(value: 8.8, time: t), pressure: 2,
                           resistance: Sample(value: r, time: t), area: 2).map { (t, $0) }
        }
        let (t, e) = try #require(hit, "the 300 mV collapse at 1000 s was not found")
        #expect(t >= 1000 && t < 1001, "flagged at \(t) s: \(e.message)")
    }

    /// SplitMix64 + Box–Muller, for the noise of one test.
    struct SplitMixForTest {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 1) / 9_007_199_254_740_992.0
        }
        mutating func gaussian() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }
    }

    @Test("a single low glitch is not a collapse (confirm_measurements = 2)")
    func glitch() {
        var d = ShortDetector(settings: ShortDetectionSettings())
        #expect(Self.run(&d, seconds: 120, voltage: { t in abs(t - 60) < 0.5 ? 3.2 : 3.73 + Self.jitter(Int(t)) }, current: { _ in 1 }) == nil)
    }

    @Test("the channel latches cell_short_suspected and ramps down to short_safe_mpa, never up")
    func channelLatches() throws {
        var p = ChannelTests.params
        var sd = ShortDetectionSettings()
        sd.safePressure = 2
        p.shortDetection = sd
        var c = ChannelController(parameters: p)
        var t = 0.0
        func reading(_ v: Double) -> ChannelReadings {
            ChannelReadings(force: Sample(value: 500 + (Int(t * 100) % 2 == 0 ? 0.05 : -0.05), time: t),
                            current: Sample(value: 1, time: t), voltage: Sample(value: v, time: t))
        }
        _ = c.step(now: t, readings: reading(3.73))
        try c.setTarget(5)
        for _ in 0..<3000 { t += 0.01; _ = c.step(now: t, readings: reading(3.73)) }
        #expect(c.mode == .regulating)
        for _ in 0..<10 { t += 0.01; _ = c.step(now: t, readings: reading(3.2)) }
        #expect(c.mode == .tripped)
        let f = try #require(c.faults.records.first { $0.code == .cellShortSuspected })
        #expect(f.message.contains("3.2"), "\(f.message)")
        #expect(c.rampingToSafe)
        let raised = c.drainEvents().compactMap { e -> SafeAction? in if case .faultRaised(let r, let a) = e, r.code == .cellShortSuspected { return a }; return nil }
        #expect(raised == [.ramp])
        // Acknowledged, it clears (the cause is an event, not a state).
        #expect(c.acknowledge().isEmpty)
    }
}
