import PressCore

#if canImport(Glibc)
import Glibc
#endif

/// The mechanism a simulated channel uses to load its cell.
public enum SimFixture: Sendable {
    case spring(SpringFixtureModel)
    case pneumatic(PneumaticModel)
}

/// A battery cycler driving the cell: a square wave of charge and discharge current.
public struct CyclerProfile: Sendable, Equatable {
    /// Current while charging, mA (discharge uses the same magnitude).
    public var current: Double = 0
    /// Full charge + discharge period, s. Zero means constant `current`.
    public var period: Double = 0
    public init(current: Double = 0, period: Double = 0) { self.current = current; self.period = period }

    public func current(at t: Double) -> Double {
        guard period > 0 else { return current }
        let phase = t.truncatingRemainder(dividingBy: period) / period
        return phase < 0.5 ? current : -current
    }
}

/// Disturbances a test or a trainee can inject into a running simulation.
public struct SimInjection: Sendable, Equatable {
    public var forceBias: Double?
    /// Load-cell sensitivity error: readings are force × gain + bias.
    public var forceGain: Double?
    public var sensorDisconnected: Bool?
    public var ambient: Double?
    public var supply: Double?
    public var current: Double?
    public var cyclePeriod: Double?
    /// Adds µm of cell thickness at once (e.g. a sudden swelling event).
    public var thicknessStep: Double?
    /// The next sensor read blocks this many wall-clock seconds (a hung device).
    public var stallSeconds: Double?
    /// Drives the emergency-stop input.
    public var emergencyStop: Bool?
    /// Drives the cycler's "charging" signal (nil: follows the cycler current).
    public var charging: Bool?
    /// Forces a soft short now: a shunt of this many Ω across the cell (its voltage
    /// collapses partially and turns noisy).
    public var shortOhm: Double?
    /// Changes the plant under a running channel: the spring fixture's spring rate, N/µm,
    /// and the pneumatic regulator's static gain (output MPa per command MPa).
    public var springRate: Double?
    public var regulatorGain: Double?
    /// The load cell's RMS noise, N (electrical noise from a nearby drive, a worn cable).
    public var sensorNoise: Double?
    /// Freezes the load cell's value while its samples keep arriving (true), or thaws it.
    public var sensorFrozen: Bool?
    public init(forceBias: Double? = nil, sensorDisconnected: Bool? = nil, ambient: Double? = nil, supply: Double? = nil,
                current: Double? = nil, cyclePeriod: Double? = nil, thicknessStep: Double? = nil,
                stallSeconds: Double? = nil, emergencyStop: Bool? = nil, charging: Bool? = nil) {
        self.stallSeconds = stallSeconds; self.emergencyStop = emergencyStop; self.charging = charging
        self.forceBias = forceBias; self.sensorDisconnected = sensorDisconnected; self.ambient = ambient
        self.supply = supply; self.current = current; self.cyclePeriod = cyclePeriod; self.thicknessStep = thicknessStep
    }
}

/// One simulated channel: fixture, cell, load cell, cycler and ambient, advanced in
/// fixed physics sub-steps. Deterministic for a given seed and call sequence, and as
/// fast as the CPU allows, so tests run it far faster than real time.
public final class SimChannel: ChannelBackend {
    /// The fixture, held unwrapped so that each physics sub-step mutates it in place
    /// (copying a fixture out of an enum and back every millisecond halved the speed).
    private var springModel: SpringFixtureModel?
    private var pneumaticModel: PneumaticModel?
    public var fixture: SimFixture { springModel.map { .spring($0) } ?? .pneumatic(pneumaticModel!) }
    public var loadCell: LoadCellModel
    public var cycler: CyclerProfile
    public var ambient: Double
    /// Physics sub-step, s.
    public let substep: Double
    private var rng: SimRandom
    private(set) public var time: Double = 0
    private var output: Double = 0
    private var extraThickness: Double = 0
    /// Interfacial-resistance measurement noise, relative.
    public var impedanceNoise: Double = 0.01
    /// A simulated impedance analyser: one spectrum every `impedanceInterval` s, each
    /// taking `impedanceAcquisition` s. Its result (the resistance averaged over the
    /// acquisition, with one draw of noise) is delivered when the spectrum ends, stamped
    /// with the time the spectrum started, as an analyser's file is. Nil: a fresh
    /// resistance on every read (an ideal, instantaneous instrument).
    public var impedanceInterval: Double?
    public var impedanceAcquisition: Double = 60
    private var spectrum: (start: Double, sum: Double, n: Int)?
    private var lastSpectrum: Sample?
    private var pendingStall: Double = 0
    private var emergencyStop = false
    private var chargingOverride: Bool?
    /// Draws of the cell's own randomness (voltage noise, the short's clock), apart from
    /// `rng` so that adding them left the load cell's noise sequence as it was.
    private var cellRng: SimRandom
    /// Cumulative short hazard, and the level at which the short fires (Exp(1) draw).
    public private(set) var shortHazardIntegral: Double = 0
    private var hazardTime: Double = 0
    private var shortThreshold: Double
    /// The soft short's shunt across the cell, Ω (nil: no short), and when it formed.
    public private(set) var shortShunt: Double?
    public private(set) var shortSince: Double?
    /// Cell-voltage measurement noise, V RMS.
    public var voltageNoise: Double = 0.001
    /// The thickness gauge across the platens (a capacitive or LVDT gauge): its noise,
    /// µm RMS, and resolution, µm (nil: no gauge). Its own random draws, so that adding
    /// it left every other signal's noise sequence as it was.
    public var thicknessGauge: (noise: Double, resolution: Double)? = (0.1, 0.05)
    private var gaugeRng: SimRandom

    public init(fixture: SimFixture, loadCell: LoadCellModel, cycler: CyclerProfile = .init(),
                ambient: Double = 25, seed: UInt64 = 1, substep: Double = 0.001) {
        switch fixture {
        case .spring(let s): springModel = s
        case .pneumatic(let p): pneumaticModel = p
        }
        self.loadCell = loadCell; self.cycler = cycler
        self.ambient = ambient; self.substep = substep
        self.rng = SimRandom(seed: seed)
        self.gaugeRng = SimRandom(seed: seed ^ 0x6A06_E000_7410_C4E5)
        var c = SimRandom(seed: seed ^ 0x5EED_CE11_5407_7000)
        self.shortThreshold = -log(c.uniform())
        self.cellRng = c
    }

    /// True force on the cell, N (what a perfect sensor would read).
    public var trueForce: Double { springModel?.force ?? pneumaticModel!.force }

    public var cell: CellModel { springModel?.cell ?? pneumaticModel!.cell }

    public var presentOutput: Double? { output }

    public func persistentState() -> [String: Double]? {
        var d: [String: Double]
        d = springModel?.exportState() ?? pneumaticModel!.exportState()
        d["output"] = output
        d["loadcell.bias"] = loadCell.bias
        d["loadcell.gain"] = loadCell.gain
        d["loadcell.disconnected"] = loadCell.disconnected ? 1 : 0
        d["cycler.current"] = cycler.current
        d["cycler.period"] = cycler.period
        d["ambient"] = ambient
        d["short.hazard"] = shortHazardIntegral
        if let r = shortShunt { d["short.shunt"] = r }
        return d
    }

    public func restore(_ d: [String: Double]) {
        output = d["output"] ?? output
        loadCell.bias = d["loadcell.bias"] ?? loadCell.bias
        loadCell.gain = d["loadcell.gain"] ?? loadCell.gain
        loadCell.disconnected = (d["loadcell.disconnected"] ?? (loadCell.disconnected ? 1 : 0)) != 0
        cycler.current = d["cycler.current"] ?? cycler.current
        cycler.period = d["cycler.period"] ?? cycler.period
        ambient = d["ambient"] ?? ambient
        shortHazardIntegral = d["short.hazard"] ?? shortHazardIntegral
        shortShunt = d["short.shunt"] ?? shortShunt
        if springModel != nil { springModel!.restore(d) } else { pneumaticModel!.restore(d) }
    }

    /// Advances the physics to `t` s.
    public func advance(to t: Double) {
        while time + substep <= t + 1e-12 {
            time += substep
            let i = cycler.current(at: time)
            if springModel != nil {
                springModel!.command(position: output)
                springModel!.advance(dt: substep, current: i, ambient: ambient)
            } else {
                pneumaticModel!.command(pressure: output)
                pneumaticModel!.advance(dt: substep, current: i, ambient: ambient)
            }
            loadCell.observe(force: trueForce, now: time, rng: &rng)
        }
        // The soft short fires when the integrated hazard reaches its Exp(1) draw
        // (integrated once per call, at the state it ended in: a tick's resolution).
        if shortShunt == nil, time > hazardTime {
            let c = cell
            shortHazardIntegral += c.shortHazardRate * (time - hazardTime)
            if shortHazardIntegral >= shortThreshold { formShort(ohm: c.p.shortShunt / c.p.area) }
        }
        hazardTime = time
    }

    private func formShort(ohm: Double) {
        shortShunt = ohm
        shortSince = time
    }

    /// The terminal voltage now as a voltmeter reads it, V: the shunt of a short
    /// flickers from one measurement to the next, and the meter adds its noise.
    public func measuredVoltage() -> Double {
        let i = cycler.current(at: time)
        var shunt = shortShunt
        if let r = shunt { shunt = r * exp(cell.p.shortFlicker * cellRng.gaussian()) }
        return cell.voltage(current: i, shunt: shunt) + voltageNoise * cellRng.gaussian()
    }

    public func read(now: Double) -> ChannelReadings {
        if pendingStall > 0 {
            let s = pendingStall
            pendingStall = 0
            // At most a minute (the socket refuses more); never a trap on conversion.
            usleep(useconds_t(min(max(s, 0), 60) * 1e6))
        }
        advance(to: now)
        let c = cell
        let pressure = StackUnits.pressure(force: trueForce, area: c.p.area)
        let resistance: Sample?
        if let interval = impedanceInterval {
            resistance = analyser(c.interfacialResistance(pressure: pressure), interval: interval)
        } else {
            resistance = Sample(value: c.interfacialResistance(pressure: pressure) * (1 + impedanceNoise * rng.gaussian()), time: time)
        }
        var r = ChannelReadings(
            force: loadCell.last,
            temperature: Sample(value: c.temperature, time: time),
            current: Sample(value: cycler.current(at: time), time: time),
            interfacialResistance: resistance,
            voltage: Sample(value: measuredVoltage(), time: time),
            charging: chargingOverride ?? (cycler.current(at: time) > 0),
            emergencyStop: emergencyStop)
        r.altered = loadCell.bias != 0 || loadCell.gain != 1
        if let g = thicknessGauge {
            let v = c.stackThickness(force: trueForce) + g.noise * gaugeRng.gaussian()
            r.thickness = Sample(value: g.resolution > 0 ? (v / g.resolution).rounded() * g.resolution : v, time: time)
        }
        return r
    }

    /// One read of the simulated analyser: accumulates the true resistance while a
    /// spectrum runs and returns the latest finished spectrum's result.
    private func analyser(_ r: Double, interval: Double) -> Sample? {
        let acquisition = min(max(impedanceAcquisition, 0), interval)
        var s = spectrum ?? (start: time, sum: 0, n: 0)
        if time >= s.start { s.sum += r; s.n += 1 }
        if time >= s.start + acquisition, s.n > 0 {
            lastSpectrum = Sample(value: s.sum / Double(s.n) * (1 + impedanceNoise * rng.gaussian()), time: s.start)
            var next = s.start + interval
            while next + acquisition < time { next += interval }
            s = (start: next, sum: 0, n: 0)
        }
        spectrum = s
        return lastSpectrum
    }

    public func apply(output value: Double, now: Double) {
        output = value
    }

    /// Applies an injected disturbance. Fields left nil are unchanged.
    /// Applies a simulated fault or plant change (see ``SimInjection``).
    public func inject(_ j: SimInjection) {
        if let b = j.forceBias { loadCell.bias = b }
        if let g = j.forceGain { loadCell.gain = g }
        if let s = j.stallSeconds { pendingStall = s }
        if let e = j.emergencyStop { emergencyStop = e }
        if let c = j.charging { chargingOverride = c }
        if let r = j.shortOhm { formShort(ohm: r) }
        if let d = j.sensorDisconnected { loadCell.disconnected = d }
        if let a = j.ambient { ambient = a }
        if let i = j.current { cycler.current = i }
        if let p = j.cyclePeriod { cycler.period = p }
        if let s = j.supply, pneumaticModel != nil { pneumaticModel!.p.supply = s }
        if let k = j.springRate, springModel != nil, k > 0 { springModel!.changeSpringRate(k) }
        if let g = j.regulatorGain, pneumaticModel != nil, g > 0 { pneumaticModel!.p.gain = g }
        if let n = j.sensorNoise, n >= 0 { loadCell.p.noise = n }
        if let f = j.sensorFrozen { loadCell.frozen = f }
        if let dz = j.thicknessStep {
            if springModel != nil { springModel!.p.gap -= dz } else { pneumaticModel!.bumpCompression(dz) }
        }
    }
}

/// A backend whose plant can be changed on command (`sim` on the socket): the loop asks
/// for the capability, never for a concrete backend type.
public protocol SimulatedPlantControl: AnyObject {
    func inject(_ j: SimInjection)
}

extension SimChannel: SimulatedPlantControl {}
