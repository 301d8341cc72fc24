import DequeModule
import PressCore

#if canImport(Glibc)
import Glibc
#endif

/// A stepper-driven screw compressing a calibrated spring in series with the cell.
///
/// The actuator output is the screw's target position in µm from home. The stepper
/// moves one step (`micronsPerStep`) at a time at no more than `maxStepRate` steps/s;
/// the nut follows the screw through a backlash of `backlash` µm (play operator).
/// Force balance: spring, frame and cell carry the same force F, and their
/// compressions add up to the closure of the gap:
///   F/k_spring + F/k_frame + δ_cell(F) = nut − gap + thickness change − frame growth.
public struct SpringFixtureModel: Sendable {
    public struct Parameters: Sendable, Equatable {
        public var micronsPerStep: Double = 1.25
        public var maxStepRate: Double = 2000
        public var backlash: Double = 10
        /// Screw travel, µm.
        public var travel: Double = 20_000
        /// Spring rate, N/µm.
        public var springRate: Double = 0.2
        /// Nut position at which the spring first touches the cell stack, µm.
        public var gap: Double = 500
        public init() {}
    }
    public var p: Parameters
    public var cell: CellModel
    public var frame: FrameModel
    /// Motor position, steps.
    public private(set) var motorSteps: Int = 0
    /// Nut (spring seat) position, µm.
    public private(set) var nut: Double = 0
    public private(set) var force: Double = 0
    private var target: Double = 0
    private var stepCredit: Double = 0

    public init(parameters: Parameters, cell: CellModel, frame: FrameModel) {
        self.p = parameters; self.cell = cell; self.frame = frame
    }

    /// Screw position, µm.
    public var screwPosition: Double { Double(motorSteps) * p.micronsPerStep }

    public mutating func command(position: Double) { target = min(max(position, 0), p.travel) }

    public mutating func advance(dt: Double, current: Double, ambient: Double) {
        // Stepper: quantised, rate limited.
        let targetSteps = Int((target / p.micronsPerStep).rounded())
        stepCredit = min(stepCredit + p.maxStepRate * dt, max(1, p.maxStepRate * dt) + 1)
        while stepCredit >= 1 && motorSteps != targetSteps {
            motorSteps += targetSteps > motorSteps ? 1 : -1
            stepCredit -= 1
        }
        if motorSteps == targetSteps { stepCredit = min(stepCredit, 1) }
        // Backlash: the nut moves only once the screw has taken up the play.
        let half = p.backlash / 2
        let screw = screwPosition
        if screw - nut > half { nut = screw - half } else if nut - screw > half { nut = screw + half }

        frame.advance(dt: dt, ambient: ambient)
        cell.advance(dt: dt, force: force, current: current, ambient: ambient)
        let closure = nut - p.gap + cell.thicknessChange - frame.growth
        let ks = p.springRate, kf = frame.stiffness
        let c = cell
        force = solveForce(compression: closure, upper: 1e6, guess: force) { f in
            (f / ks + f / kf + c.compression(force: f), 1 / ks + 1 / kf + 1 / c.stiffness(force: f))
        }
    }
}

extension SpringFixtureModel {
    /// The spring's rate becomes `k` N/µm from its present state on, the force carried
    /// unchanged (a progressive spring entering its stiff range, a spring that starts to
    /// bind): the spring's seat is moved so that the new rate carries the same force.
    public mutating func changeSpringRate(_ k: Double) {
        let f = force
        let before = f / p.springRate, after = f / k
        p.springRate = k
        p.gap += before - after
    }
}

/// An electro-pneumatic regulator feeding a single-acting cylinder with a return spring.
///
/// The actuator output is the regulator's command in MPa (gauge). The regulator has a
/// dead zone at the bottom of its range, mechanical hysteresis, a transport dead time
/// and a first-order lag, and cannot deliver more than its supply. The cylinder is
/// quasi-static (its mass is negligible at these speeds) with Coulomb friction and
/// stiction: the piston stays put while |drive − cell force| ≤ static friction and slips
/// to drive − kinetic friction when it breaks away, which gives the stick-slip hunting
/// seen on real rigs.
public struct PneumaticModel: Sendable {
    public struct Parameters: Sendable, Equatable {
        /// Regulator command range, MPa.
        public var commandMax: Double = 0.9
        public var supply: Double = 0.7
        public var deadZone: Double = 0.005
        public var hysteresis: Double = 0.003
        public var deadTime: Double = 0.05
        public var lag: Double = 0.2
        /// Regulator static gain (output MPa per command MPa).
        public var gain: Double = 1
        /// Bore area, mm².
        public var boreArea: Double = 3117
        /// Return-spring force at the working position, N.
        public var returnSpring: Double = 40
        public var staticFriction: Double = 30
        public var kineticFriction: Double = 20
        public init() {}
    }
    public var p: Parameters
    public var cell: CellModel
    public var frame: FrameModel
    /// Chamber pressure, MPa.
    public private(set) var chamber: Double = 0
    public private(set) var force: Double = 0
    /// Compression of the cell and frame, µm (the piston's position past contact).
    public private(set) var compression: Double = 0
    private var command: Double = 0
    private var hysteresisState: Double = 0
    private var delayLine = Deque<(time: Double, value: Double)>()
    private var delayed: Double = 0
    private var time: Double = 0

    public init(parameters: Parameters, cell: CellModel, frame: FrameModel) {
        self.p = parameters; self.cell = cell; self.frame = frame
    }

    public mutating func command(pressure: Double) { command = min(max(pressure, 0), p.commandMax) }

    /// Total compression of cell and frame for force f, µm, and its slope.
    private func contact(_ f: Double) -> (value: Double, slope: Double) {
        (f / frame.stiffness + cell.compression(force: f), 1 / frame.stiffness + 1 / cell.stiffness(force: f))
    }

    public mutating func advance(dt: Double, current: Double, ambient: Double) {
        time += dt
        // Regulator: dead zone, hysteresis (play), dead time, lag, supply limit.
        let effective = command < p.deadZone ? 0 : command
        let h = p.hysteresis / 2
        if effective - hysteresisState > h { hysteresisState = effective - h }
        else if hysteresisState - effective > h { hysteresisState = effective + h }
        if effective == 0 { hysteresisState = 0 }
        delayLine.append((time, hysteresisState))
        while let first = delayLine.first, first.time <= time - p.deadTime + 1e-12 {
            delayed = first.value
            delayLine.removeFirst()
        }
        let targetChamber = min(max(0, p.gain * delayed), p.supply)
        chamber += (targetChamber - chamber) * min(1, dt / p.lag)
        chamber = min(chamber, p.supply)

        let oldGrowth = frame.growth
        frame.advance(dt: dt, ambient: ambient)
        let oldThickness = cell.thicknessChange
        cell.advance(dt: dt, force: force, current: current, ambient: ambient)
        // Cell growth and frame growth change the compression while the piston is stuck.
        compression += (cell.thicknessChange - oldThickness) - (frame.growth - oldGrowth)
        let drive = chamber * p.boreArea - p.returnSpring
        let geometric = compression > 0
            ? solveForce(compression: compression, upper: 1e6, guess: force, contact) : 0
        let imbalance = drive - geometric
        if abs(imbalance) > p.staticFriction {
            // Breakaway: slip to where only kinetic friction remains.
            let f = max(0, drive - (imbalance > 0 ? p.kineticFriction : -p.kineticFriction))
            force = f
            compression = f > 0 ? contact(f).value : min(compression, 0)
        } else {
            force = geometric
        }
    }
}

extension PneumaticModel {
    /// Changes the compression at once by `microns` (a sudden swelling of the cell).
    mutating func bumpCompression(_ microns: Double) { compression += microns }
}

// MARK: Persistence (the simulated plant survives a daemon restart like real hardware)

extension CellModel {
    func export(into d: inout [String: Double]) {
        d["cell.charge"] = charge; d["cell.creep"] = creep; d["cell.temperature"] = temperature
        d["cell.void_recoverable"] = voidRecoverable; d["cell.void_permanent"] = voidPermanent
    }
    mutating func restore(_ d: [String: Double]) {
        charge = d["cell.charge"] ?? charge; creep = d["cell.creep"] ?? creep; temperature = d["cell.temperature"] ?? temperature
        voidRecoverable = d["cell.void_recoverable"] ?? voidRecoverable; voidPermanent = d["cell.void_permanent"] ?? voidPermanent
    }
}

extension SpringFixtureModel {
    func exportState() -> [String: Double] {
        var d: [String: Double] = ["spring.motor": Double(motorSteps), "spring.nut": nut, "spring.force": force,
                                   "spring.target": target, "spring.gap": p.gap, "frame.temperature": frame.temperature]
        cell.export(into: &d)
        return d
    }
    mutating func restore(_ d: [String: Double]) {
        motorSteps = Int(d["spring.motor"] ?? Double(motorSteps)); nut = d["spring.nut"] ?? nut
        force = d["spring.force"] ?? force; target = d["spring.target"] ?? target
        p.gap = d["spring.gap"] ?? p.gap
        frame.temperature = d["frame.temperature"] ?? frame.temperature
        cell.restore(d)
    }
}

extension PneumaticModel {
    func exportState() -> [String: Double] {
        var d: [String: Double] = ["pneu.chamber": chamber, "pneu.force": force, "pneu.compression": compression,
                                   "pneu.command": command, "pneu.hysteresis": hysteresisState, "pneu.delayed": delayed,
                                   "pneu.supply": p.supply,
                                   "frame.temperature": frame.temperature]
        cell.export(into: &d)
        return d
    }
    mutating func restore(_ d: [String: Double]) {
        chamber = d["pneu.chamber"] ?? chamber; force = d["pneu.force"] ?? force
        compression = d["pneu.compression"] ?? compression; command = d["pneu.command"] ?? command
        hysteresisState = d["pneu.hysteresis"] ?? hysteresisState; delayed = d["pneu.delayed"] ?? delayed
        p.supply = d["pneu.supply"] ?? p.supply
        delayLine = []
        frame.temperature = d["frame.temperature"] ?? frame.temperature
        cell.restore(d)
    }
}
