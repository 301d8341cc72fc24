import PressCore

#if canImport(Glibc)
import Glibc
#endif

/// A small, fast, seedable PRNG (SplitMix64) with Gaussian draws. Deterministic for a
/// given seed on every platform, which the tests rely on.
public struct SimRandom: Sendable {
    private var state: UInt64
    private var spare: Double?

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    public mutating func uniform() -> Double { (Double(next() >> 11) + 1) / 9_007_199_254_740_992.0 }

    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        if let s = spare { spare = nil; return s }
        let u1 = uniform(), u2 = uniform()
        let r = (-2 * log(u1)).squareRoot()
        spare = r * sin(2 * .pi * u2)
        return r * cos(2 * .pi * u2)
    }
}

/// The solid-state cell between the plates, as a mechanical and electrochemical element.
///
/// - Contact stiffness rises with load: k(F) = k0 + β·F, so the compression needed for
///   a force F is δ(F) = ln(1 + β·F/k0)/β.
/// - Li plating/stripping changes the thickness by `breathingPerCharge` µm per mAh/cm²
///   of lithium moved (about 5 µm per mAh/cm² for Li metal).
/// - Lithium creeps under stress: the creep displacement grows at
///   `creepRate`·(P/`creepReferencePressure`)^`creepExponent` µm/s, slowing as it
///   approaches `creepLimit`, so pressure relaxes at a fixed gap.
/// - Interfacial resistance rises when the stack pressure falls below its knee (the
///   critical stack pressure) and falls with temperature (Arrhenius).
/// - Voids: stripping lithium (current < 0) below the critical pressure opens voids at
///   the interface; the void fraction grows by `voidPerCharge` per mAh/cm² stripped at
///   zero pressure, less as the pressure nears the critical one. Above it, creep closes
///   the recoverable part at `voidHealRate`·(P/P_crit − 1) per second; a share
///   `voidPermanentShare` of every void never heals. Contact area falls with the void
///   fraction, so interfacial resistance rises as 1/(1 − void).
/// - Current density: the charge-transfer part of the interfacial resistance follows a
///   symmetric Butler–Volmer law; its chord resistance η/J falls mildly with |J|, as
///   asinh(x)/x with x = |J|/`exchangeCurrentDensity`/2 (−5 % at 3 mA/cm² with the
///   default 5 mA/cm²). Stripping raises the resistance only through the voids.
/// - Voltage: OCV + I·(R_bulk + R_interfacial)/area (I in A, R in Ω·cm², area cm²); a
///   short puts a shunt in parallel (``SimChannel``).
/// - Self-heating: the Joule heat I²·R of the cell against its heat transfer h·A to
///   the surroundings, with heat capacity c·A: ΔT_steady = I²·R/(h·A), time constant c/h.
public struct CellModel: Sendable, Equatable {
    public struct Parameters: Sendable, Equatable {
        /// Active area, cm².
        public var area: Double = 1
        /// Contact stiffness at zero load, N/µm.
        public var contactStiffness0: Double = 2
        /// Rise of contact stiffness with load, 1/µm.
        public var contactStiffnessSlope: Double = 0.05
        /// Unloaded thickness of the cell stack at assembly, µm (a pellet cell).
        public var thickness: Double = 800
        /// µm of thickness per mAh/cm² of Li moved.
        public var breathingPerCharge: Double = 5
        /// µm/s of creep at the reference pressure.
        public var creepRate: Double = 0.004
        public var creepReferencePressure: Double = 5
        public var creepExponent: Double = 2
        /// Total creep the Li layer can take, µm.
        public var creepLimit: Double = 30
        /// Interfacial resistance well above the knee, Ω·cm².
        public var resistanceFloor: Double = 20
        /// Extra resistance with no contact pressure, Ω·cm².
        public var resistanceRise: Double = 200
        /// Critical stack pressure (knee of R(P)), MPa.
        public var criticalPressure: Double = 3
        /// Sharpness of the knee.
        public var kneeSharpness: Double = 4
        /// Activation energy of the interfacial process, eV.
        public var activationEnergy: Double = 0.3
        /// Heat transfer coefficient to the surroundings per cm² of cell, W/(K·cm²)
        /// (0.0025 = 25 W/(m²·K): a cell clamped between metal plates in still air).
        public var heatTransfer: Double = 0.0025
        /// Heat capacity per cm² of cell (cell and the plates in contact), J/(K·cm²).
        /// With `heatTransfer` it gives a thermal time constant of 300 s.
        public var heatCapacity: Double = 0.75
        /// Bulk (electrolyte) resistance, Ω·cm².
        public var bulkResistance: Double = 10
        /// Open-circuit voltage, V: about 3.7 for a full cell (NMC | Li), 0 for a Li | Li
        /// symmetric cell.
        public var openCircuitVoltage: Double = 3.7
        /// Exchange current density of the interfacial reaction, mA/cm².
        public var exchangeCurrentDensity: Double = 5
        /// Void fraction opened per mAh/cm² stripped at zero stack pressure.
        public var voidPerCharge: Double = 0.3
        /// Rate at which creep closes recoverable voids above the critical pressure,
        /// 1/s per unit of (P/P_crit − 1).
        public var voidHealRate: Double = 0.002
        /// Share of every void that never heals.
        public var voidPermanentShare: Double = 0.3
        /// Soft-short hazard: `shortHazard` per second at `damagePressure` and zero
        /// current, times exp((P − damagePressure)/`damagePressureScale`) and
        /// (1 + |J|/`shortCurrentDensity`).
        public var shortHazard: Double = 1e-6
        public var damagePressure: Double = 12
        public var damagePressureScale: Double = 2
        public var shortCurrentDensity: Double = 1
        /// Shunt resistance of a soft short across 1 cm², Ω·cm² (divided by the area), and
        /// the relative flicker of the shunt from one measurement to the next.
        public var shortShunt: Double = 100
        public var shortFlicker: Double = 0.3
        public init() {}
    }

    public var p: Parameters
    /// Charge moved, mAh/cm² (positive = plated on the anode).
    public internal(set) var charge: Double = 0
    /// Creep displacement, µm.
    public internal(set) var creep: Double = 0
    /// Cell temperature, °C.
    public internal(set) var temperature: Double
    /// Void fraction at the interface: recoverable and permanent parts.
    public internal(set) var voidRecoverable: Double = 0
    public internal(set) var voidPermanent: Double = 0
    /// Current density of the last step, mA/cm² (positive = plating on the anode).
    public internal(set) var currentDensity: Double = 0
    /// Stack pressure of the last step, MPa.
    public internal(set) var pressure: Double = 0
    /// Joule heat, W, recomputed when the current changes and every 50 steps (the
    /// resistance moves slowly against the 300 s thermal time constant; this keeps the
    /// simulator fast).
    private var jouleHeat: Double = 0
    private var jouleCurrent: Double = .nan
    private var jouleAge = 0

    public init(parameters: Parameters, temperature: Double = 25) {
        self.p = parameters
        self.temperature = temperature
    }

    /// Thickness change relative to assembly, µm (breathing minus creep).
    public var thicknessChange: Double { p.breathingPerCharge * charge - creep }

    /// The stack's thickness under `force`, µm: what a gauge across the platens reads.
    public func stackThickness(force: Double) -> Double { p.thickness + thicknessChange - compression(force: force) }

    /// Compression of the contact for force `f` N, µm.
    public func compression(force f: Double) -> Double {
        guard f > 0 else { return 0 }
        return log1p(p.contactStiffnessSlope * f / p.contactStiffness0) / p.contactStiffnessSlope
    }

    /// Contact stiffness at force `f`, N/µm.
    public func stiffness(force f: Double) -> Double { p.contactStiffness0 + p.contactStiffnessSlope * max(0, f) }

    /// Advances charge, creep and temperature by `dt` s under `force` N, `current` mA,
    /// ambient `ambient` °C.
    public mutating func advance(dt: Double, force: Double, current: Double, ambient: Double) {
        let j = current / p.area
        currentDensity = j
        charge += j * dt / 3600
        let pressure = StackUnits.pressure(force: max(0, force), area: p.area)
        self.pressure = pressure
        let drive = pow(pressure / p.creepReferencePressure, p.creepExponent)
        creep += p.creepRate * drive * max(0, 1 - creep / p.creepLimit) * dt
        // Voids: opened by stripping below the critical pressure, closed (the
        // recoverable part) by creep above it.
        let pc = p.criticalPressure
        if j < 0 && pressure < pc {
            let room = max(0, 0.9 - voidFraction)
            let grow = p.voidPerCharge * (-j) * dt / 3600 * (1 - pressure / pc) * room / 0.9
            voidRecoverable += grow * (1 - p.voidPermanentShare)
            voidPermanent += grow * p.voidPermanentShare
        } else if pressure > pc {
            voidRecoverable -= voidRecoverable * min(1, p.voidHealRate * (pressure / pc - 1) * dt)
        }
        // Joule heating against heat transfer: c·A·dT/dt = I²R − h·A·(T − ambient).
        let amps = current / 1000
        if current != jouleCurrent || jouleAge >= 50 {
            jouleHeat = amps == 0 ? 0 : amps * amps * cellResistance
            jouleCurrent = current; jouleAge = 0
        }
        jouleAge += 1
        let heat = jouleHeat
        // Solved as a first-order lag towards the steady state (stable for any step).
        let hA = p.heatTransfer * p.area
        let steady = ambient + heat / hA
        temperature += (steady - temperature) * min(1, dt * p.heatTransfer / p.heatCapacity)
    }

    /// Total void fraction at the interface.
    public var voidFraction: Double { voidRecoverable + voidPermanent }

    /// Interfacial resistance at stack pressure `pressure` MPa and the present current
    /// density, temperature and void fraction, Ω·cm².
    public func interfacialResistance(pressure: Double) -> Double {
        let x = max(0, pressure) / p.criticalPressure
        let contact = p.resistanceFloor + p.resistanceRise / (1 + pow(x, p.kneeSharpness))
        let k = 8.617e-5 // eV/K
        let arrhenius = exp(p.activationEnergy / k * (1 / (temperature + 273.15) - 1 / 298.15))
        let y = abs(currentDensity) / (2 * p.exchangeCurrentDensity)
        let butlerVolmer = y > 1e-9 ? asinh(y) / y : 1
        return contact * arrhenius * butlerVolmer / (1 - min(voidFraction, 0.95))
    }

    /// Cell resistance (bulk + interfacial at the last step's pressure), Ω.
    public var cellResistance: Double { (p.bulkResistance + interfacialResistance(pressure: pressure)) / p.area }

    /// Terminal voltage at current `current` mA with an optional shunt of `shunt` Ω across
    /// the cell, V (no measurement noise): (OCV + I·R)·Rs/(R + Rs).
    public func voltage(current: Double, shunt: Double? = nil) -> Double {
        let r = cellResistance
        let open = p.openCircuitVoltage + current / 1000 * r
        guard let rs = shunt else { return open }
        return open * rs / (r + rs)
    }

    /// Soft-short hazard now, 1/s.
    public var shortHazardRate: Double {
        p.shortHazard * exp((pressure - p.damagePressure) / p.damagePressureScale) * (1 + abs(currentDensity) / p.shortCurrentDensity)
    }
}

/// A load cell with its conditioning electronics: noise, quantisation, a fixed sample
/// rate (sample-and-hold between conversions) and faults a test can inject.
public struct LoadCellModel: Sendable {
    public struct Parameters: Sendable, Equatable {
        /// Rated capacity, N.
        public var capacity: Double = 2000
        /// RMS noise, N.
        public var noise: Double = 0.2
        /// Resolution (LSB), N.
        public var resolution: Double = 0.05
        /// Conversions per second.
        public var sampleRate: Double = 80
        public init() {}
    }
    public var p: Parameters
    /// Added to every reading (simulates a knocked or drifting sensor), N.
    public var bias: Double = 0
    /// Sensitivity error: the reading is force × gain + bias.
    public var gain: Double = 1
    /// While true no new samples arrive (simulates a broken cable).
    public var disconnected = false
    /// While true fresh samples keep arriving with the last value (a transmitter whose
    /// register image froze: its time stamps move, its value does not).
    public var frozen = false
    private var nextSample: Double = 0
    public private(set) var last: Sample?

    public init(parameters: Parameters) { self.p = parameters }

    /// Offers the true force at time `now`; takes a conversion when one is due.
    public mutating func observe(force: Double, now: Double, rng: inout SimRandom) {
        guard !disconnected, now >= nextSample else { return }
        let period = 1 / p.sampleRate
        nextSample = max(nextSample + period, now)
        if frozen, let l = last { last = Sample(value: l.value, time: now); return }
        var v = force * gain + bias + p.noise * rng.gaussian()
        v = (v / p.resolution).rounded() * p.resolution
        v = min(max(v, -p.capacity * 1.1), p.capacity * 1.1) // ADC rails
        last = Sample(value: v, time: now)
    }
}

/// Frame and temperature shared by a fixture: thermal growth of the frame opens the
/// gap by α·L·ΔT.
public struct FrameModel: Sendable, Equatable {
    /// Frame growth per kelvin, µm/K (steel, 100 mm: 1.2 µm/K).
    public var growthPerKelvin: Double = 1.2
    /// Frame compliance in series with the cell, N/µm.
    public var stiffness: Double = 50
    public var referenceTemperature: Double = 25
    /// Frame temperature, °C (follows ambient with `timeConstant`).
    public var temperature: Double = 25
    public var timeConstant: Double = 600
    public init() {}

    public mutating func advance(dt: Double, ambient: Double) {
        temperature += (ambient - temperature) * min(1, dt / timeConstant)
    }
    public var growth: Double { growthPerKelvin * (temperature - referenceTemperature) }
}

/// Solves `g(F) = d` for F ≥ 0 where g is the total compression of series elements,
/// monotonic increasing with g(0) = 0. Newton with a bisection guard.
/// - Parameter guess: where to start Newton's method (the previous sub-step's force:
///   the force moves little in a millisecond, so it converges in one or two steps).
func solveForce(compression d: Double, upper: Double, guess: Double? = nil, _ g: (Double) -> (value: Double, slope: Double)) -> Double {
    guard d > 0 else { return 0 }
    var lo = 0.0, hi = upper
    if g(hi).value < d { return hi }
    var f = guess.flatMap { $0 > 0 && $0 < hi ? $0 : nil } ?? min(hi, d * 0.5 * g(1).slope.reciprocal)
    for _ in 0..<60 {
        let (v, s) = g(f)
        let r = v - d
        if abs(r) < 1e-9 { break }
        if r > 0 { hi = f } else { lo = f }
        var next = f - r / s
        if !(next > lo && next < hi) { next = 0.5 * (lo + hi) }
        f = next
    }
    return f
}

extension Double {
    var reciprocal: Double { self == 0 ? 0 : 1 / self }
}
