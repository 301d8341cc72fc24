import PressNumerics
import PressCore

/// The control benchmark: standard scenarios on the simulated rig, run faster than real
/// time, scored on the cell's true pressure. `pressbench control` prints it; the test
/// suite runs a subset and asserts the targets.
public enum ControlBenchmark {
    /// Who computes the output.
    public enum Contender: String, Sendable, Codable, CaseIterable {
        /// PID autotuned once on the nominal plant of its family, then never changed.
        case fixed = "fixed-pid"
        /// The same start, then the adaptive strategy.
        case adaptive
        /// The same start, then the learned-model strategy.
        case learned
        /// The fixed PID plus exact cancellation of the true disturbance (the simulator's
        /// own thickness change and frame growth): what perfect disturbance knowledge
        /// could add.
        case oracle
        /// The same start, then the model-predictive strategy (`mpc`).
        case mpc
    }

    /// Fixture family; fixes the nominal plant and the channel's limits.
    public enum Family: String, Sendable, Codable { case spring, pneumatic }

    /// One scenario: a plant variant, a setpoint schedule, injected disturbances.
    public struct Scenario: Sendable {
        public var name: String
        public var family: Family
        public var summary: String
        /// Scored plant time after the start, s.
        public var duration: Double
        /// Setpoint changes: (time, MPa); the first is at time 0.
        public var setpoints: [(time: Double, mpa: Double)]
        /// Disturbances injected at given times.
        public var injections: [(time: Double, injection: SimInjection)] = []
        /// Windows excluded from the in-band score (a supply dip and its recovery).
        public var excluded: [(from: Double, to: Double)] = []
        /// Seconds after each setpoint change excluded from the in-band score.
        public var settle: Double = 15
        /// Cell area, cm².
        public var area: Double
        /// Changes to the nominal plant (the variant).
        public var plant: @Sendable (inout PlantVariant) -> Void = { _ in }
        /// A technician acknowledges the faults and restores the setpoint at this time.
        public var acknowledgeAt: Double?
        /// Multiplies the nominal autotune's gains (below 1: a cautious hand-detuned loop).
        public var gainFactor: Double = 1
        /// A pressure program started at the scored run's start; it owns the setpoint and
        /// the error is scored against its setpoint on every tick (no settling window).
        public var program: PressureProgram?
    }

    /// Physical parameters a scenario may change.
    public struct PlantVariant: Sendable {
        public var cell = CellModel.Parameters()
        public var spring = SpringFixtureModel.Parameters()
        public var pneumatic = PneumaticModel.Parameters()
        public var frame = FrameModel()
        public var loadCell = LoadCellModel.Parameters()
        public var cycler = CyclerProfile()
    }

    /// Scores of one contender on one scenario.
    public struct Result: Sendable, Codable, Equatable {
        public var scenario: String
        public var contender: String
        /// Percentage of scored samples within ±5 % and ±1 % of the setpoint.
        public var within5: Double
        public var within1: Double
        /// ∫|p − setpoint| dt over the scored samples, MPa·s.
        public var iae: Double
        /// Largest |p − setpoint| / setpoint over the scored samples, %.
        public var worstError: Double
        /// Largest overshoot past a new setpoint, % of the step.
        public var overshoot: Double
        /// Longest time after a setpoint change until the pressure stays within ±5 %, s
        /// (nil: it never did).
        public var settlingTime: Double?
        /// Highest pressure above the setpoint outside the settling windows after
        /// setpoint changes (so including any return from saturation), % of setpoint.
        public var maxAboveTarget: Double
        /// Total actuator movement, output units.
        public var travel: Double
        public var scoredSamples: Int
        /// Ticks with the output held by a limit, and the faults that fired.
        public var saturatedTicks: Int
        public var faults: [String]
        /// The autotune that preceded the run, when there was one ("rule kp ki" or the failure).
        public var autotune: String?
        /// The final strategy state (for adaptive and learned).
        public var finalScale: Double?
        public var confidence: Double?
        public var handovers: Int?
        public var fallbacks: Int?
        /// Excursions out of the band the channel itself recorded, their total time and
        /// the automatic recoveries from faults that cleared.
        public var excursions: Int = 0
        public var outOfBandS: Double = 0
        public var recoveries: Int = 0
    }

    // MARK: Scenarios

    /// Every standard scenario.
    public static func scenarios() -> [Scenario] {
        var list: [Scenario] = []
        list.append(Scenario(name: "steps", family: .spring, summary: "setpoint 5 → 6 → 4 → 5 MPa, nominal spring",
                             duration: 240, setpoints: [(0, 5), (60, 6), (120, 4), (180, 5)], area: 1))
        list.append(Scenario(name: "pulsed", family: .spring, summary: "square wave 4 ↔ 6 MPa, period 60 s",
                             duration: 300, setpoints: stride(from: 0.0, to: 300, by: 30).map { ($0, Int($0 / 30) % 2 == 0 ? 4 : 6) }, area: 1))
        list.append(Scenario(name: "breathing", family: .spring,
                             summary: "charge/discharge ±3 mA/cm² (1C on a 3 mAh/cm² cell), period 600 s, Li-metal anode (5 µm per mAh/cm²), stiff 2 N/µm spring",
                             duration: 900, setpoints: [(0, 5)], area: 1,
                             plant: { v in v.spring.springRate = 2; v.cycler = CyclerProfile(current: 3, period: 600) }))
        list.append(Scenario(name: "breathing-fine", family: .spring,
                             summary: "pulsed charge ±3 mA/cm² (period 20 s), Li-metal anode, stiff 2 N/µm spring, 1/16-microstepped screw",
                             duration: 600, setpoints: [(0, 5)], area: 1,
                             plant: { v in
                                 v.spring.springRate = 2; v.spring.micronsPerStep = 0.078; v.spring.maxStepRate = 32_000; v.spring.backlash = 2
                                 v.cycler = CyclerProfile(current: 3, period: 20)
                             }))
        var slow = Scenario(name: "breathing-slow-loop", family: .spring,
                            summary: "as breathing-fine, with the PID's gains cut to 1/20 of the autotune (a cautious hand tune)",
                            duration: 600, setpoints: [(0, 5)], area: 1,
                            plant: { v in
                                v.spring.springRate = 2; v.spring.micronsPerStep = 0.078; v.spring.maxStepRate = 32_000; v.spring.backlash = 2
                                v.cycler = CyclerProfile(current: 3, period: 20)
                            })
        slow.gainFactor = 0.05
        list.append(slow)
        var slowThermal = Scenario(name: "thermal-slow-loop", family: .spring,
                                   summary: "as thermal, with the PID's gains cut to 1/20 of the autotune",
                                   duration: 600, setpoints: [(0, 5)], injections: [(30, SimInjection(ambient: 40))], area: 1,
                                   plant: { v in v.spring.springRate = 1; v.frame.timeConstant = 120 })
        slowThermal.gainFactor = 0.05
        list.append(slowThermal)
        list.append(Scenario(name: "thermal", family: .spring,
                             summary: "ambient +15 K step at 30 s, frame time constant 120 s, 1 N/µm spring",
                             duration: 600, setpoints: [(0, 5)], injections: [(30, SimInjection(ambient: 40))], area: 1,
                             plant: { v in v.spring.springRate = 1; v.frame.timeConstant = 120 }))
        list.append(Scenario(name: "creep", family: .spring,
                             summary: "lithium creep 10× nominal (0.04 µm/s at 5 MPa), 1 N/µm spring",
                             duration: 600, setpoints: [(0, 5)], area: 1,
                             plant: { v in v.spring.springRate = 1; v.cell.creepRate = 0.04 }))
        list.append(Scenario(name: "noise", family: .spring, summary: "load-cell noise 3 N RMS (0.6 % of the force)",
                             duration: 300, setpoints: [(0, 5)], area: 1, plant: { v in v.loadCell.noise = 3 }))
        list.append(Scenario(name: "soft-spring", family: .spring, summary: "0.05 N/µm spring (4× softer), ±3 mA/cm² cycling, 5 → 6 MPa at 150 s",
                             duration: 300, setpoints: [(0, 5), (150, 6)], area: 1,
                             plant: { v in v.spring.springRate = 0.05; v.cycler = CyclerProfile(current: 3, period: 300) }))
        list.append(Scenario(name: "stiff-spring", family: .spring, summary: "2 N/µm spring (10× stiffer), ±3 mA/cm² cycling, 5 → 6 MPa at 150 s",
                             duration: 300, setpoints: [(0, 5), (150, 6)], area: 1,
                             plant: { v in v.spring.springRate = 2; v.cycler = CyclerProfile(current: 3, period: 300) }))
        list.append(Scenario(name: "coin", family: .spring, summary: "0.5 cm² coin-size cell, 5 → 6 MPa at 150 s (250 → 300 N), ±1.5 mA (3 mA/cm²) cycling",
                             duration: 300, setpoints: [(0, 5), (150, 6)], area: 0.5,
                             plant: { v in v.cycler = CyclerProfile(current: 1.5, period: 300) }))
        list.append(Scenario(name: "pouch", family: .spring, summary: "20 cm² pouch, 2 → 2.5 MPa at 150 s (4 → 5 kN), 1 N/µm spring, 20 kN load cell, ±60 mA (3 mA/cm²) cycling",
                             duration: 300, setpoints: [(0, 2), (150, 2.5)], area: 20,
                             plant: { v in
                                 v.spring.springRate = 1; v.loadCell.capacity = 20_000; v.loadCell.noise = 2; v.loadCell.resolution = 0.5
                                 v.cell.contactStiffness0 = 40; v.cycler = CyclerProfile(current: 60, period: 300)
                             }))
        list.append(Scenario(name: "pneumatic-steps", family: .pneumatic, summary: "E/P regulator, setpoint 3 → 4 → 2.5 → 3 MPa",
                             duration: 240, setpoints: [(0, 3), (60, 4), (120, 2.5), (180, 3)], area: 2))
        var dip = Scenario(name: "stiction-supply-dip", family: .pneumatic,
                           summary: "stiction 40 N static / 20 N kinetic (nominal 30/20); supply 0.7 → 0.15 MPa (needs 0.21) from 60 to 105 s; acknowledged at 110 s",
                           duration: 240, setpoints: [(0, 3)],
                           injections: [(60, SimInjection(supply: 0.15)), (105, SimInjection(supply: 0.7))],
                           excluded: [(60, 125)], area: 2,
                           plant: { v in v.pneumatic.staticFriction = 40 })
        dip.acknowledgeAt = 110
        list.append(dip)
        // Field faults (issue 12): no exclusion windows and no technician; what counts is
        // how far past the setpoint the pressure goes when authority returns, and whether
        // regulation comes back by itself.
        list.append(Scenario(name: "fault-short-supply-dip", family: .pneumatic,
                             summary: "supply 0.7 → 0.12 MPa (3 MPa needs 0.21) for 6 s at 60 s and for 1 s at 150 s, shorter than saturation_timeout_s; no technician",
                             duration: 240, setpoints: [(0, 3)],
                             injections: [(60, SimInjection(supply: 0.12)), (66, SimInjection(supply: 0.7)),
                                          (150, SimInjection(supply: 0.12)), (151, SimInjection(supply: 0.7))], area: 2))
        list.append(Scenario(name: "fault-sensor-dropouts", family: .spring,
                             summary: "load cell silent for 0.5 s at 60 s, 3 s at 120 s and 8 s at 200 s (bus errors, DEVICE_BUSY); ±3 mA/cm² cycling; no technician",
                             duration: 300, setpoints: [(0, 5)],
                             injections: [(60, SimInjection(sensorDisconnected: true)), (60.5, SimInjection(sensorDisconnected: false)),
                                          (120, SimInjection(sensorDisconnected: true)), (123, SimInjection(sensorDisconnected: false)),
                                          (200, SimInjection(sensorDisconnected: true)), (208, SimInjection(sensorDisconnected: false))], area: 1,
                             plant: { v in v.cycler = CyclerProfile(current: 3, period: 120) }))
        list.append(Scenario(name: "regulator-gain", family: .pneumatic, summary: "regulator gain 0.6 instead of 1, setpoint 3 → 4 MPa",
                             duration: 240, setpoints: [(0, 3), (120, 4)], area: 2, plant: { v in v.pneumatic.gain = 0.6 }))
        list += plantChangeScenarios()
        list += programScenarios()
        return list
    }

    /// Issue 26: following pressure programs (docs/programs.md's pulsed and oscillating
    /// protocols), scored against the programmed pressure on every tick.
    public static func programScenarios() -> [Scenario] {
        // Settled at the program's first pressure before it starts.
        func program(_ name: String, _ family: Family, _ summary: String, duration: Double, area: Double, _ steps: [ProgramStep]) -> Scenario {
            let first: Double
            switch steps[0] {
            case .sine(let mean, _, _, _): first = mean
            case .square(_, let hi, _, _, _): first = hi
            default: first = steps[0].setpoints.first ?? 1
            }
            var s = Scenario(name: name, family: family, summary: summary, duration: duration, setpoints: [(0, first)], settle: 0, area: area)
            s.program = PressureProgram(name: name, steps: steps)
            return s
        }
        return [
            program("program-sine-spring", .spring, "program: sine 5 ± 1 MPa, 0.1 Hz, 60 s", duration: 60, area: 1,
                    [.sine(mean: 5, amplitude: 1, period: 10, duration: 60)]),
            program("program-sine-pneumatic", .pneumatic, "program: sine 2 ± 0.5 MPa, 0.1 Hz, 60 s", duration: 60, area: 2,
                    [.sine(mean: 2, amplitude: 0.5, period: 10, duration: 60)]),
            program("program-square-spring", .spring, "program: square 4 ↔ 6 MPa, period 20 s, steps (ramp 1 MPa/s, the default)", duration: 60, area: 1,
                    [.square(low: 4, high: 6, period: 20, duration: 60, ramp: nil)]),
            program("program-square-ramp-spring", .spring, "program: square 4 ↔ 6 MPa, period 20 s, ramps 0.5 MPa/s", duration: 60, area: 1,
                    [.square(low: 4, high: 6, period: 20, duration: 60, ramp: 0.5)]),
            program("program-square-pneumatic", .pneumatic, "program: square 1.5 ↔ 2.5 MPa, period 20 s, steps (ramp 1 MPa/s, the default)", duration: 60, area: 2,
                    [.square(low: 1.5, high: 2.5, period: 20, duration: 60, ramp: nil)]),
            program("program-square-ramp-pneumatic", .pneumatic, "program: square 1.5 ↔ 2.5 MPa, period 20 s, ramps 0.5 MPa/s", duration: 60, area: 2,
                    [.square(low: 1.5, high: 2.5, period: 20, duration: 60, ramp: 0.5)]),
            program("program-press-release-spring", .spring, "program: press 6 MPa 10 s, release to 3 MPa 10 s, three times", duration: 60, area: 1,
                    [.pressRelease(press: 6, pressTime: 10, release: 3, settleTime: 10, ramp: nil), .loop(toStep: 0, count: 3)]),
            program("program-press-release-pneumatic", .pneumatic, "program: press 2.5 MPa 10 s, release to 1 MPa 10 s, three times", duration: 60, area: 2,
                    [.pressRelease(press: 2.5, pressTime: 10, release: 1, settleTime: 10, ramp: nil), .loop(toStep: 0, count: 3)]),
        ]
    }

    /// An injection that changes the plant under the running channel.
    static func change(_ edit: (inout SimInjection) -> Void) -> SimInjection {
        var j = SimInjection()
        edit(&j)
        return j
    }

    /// Issue 22: the plant changes under a running channel, the case the adaptive layer
    /// is for. The fixed PID keeps the nominal plant's tuning throughout.
    public static func plantChangeScenarios() -> [Scenario] {
        let square = { (lo: Double, hi: Double, half: Double, duration: Double) in
            stride(from: 0.0, to: duration, by: half).map { ($0, Int($0 / half) % 2 == 0 ? lo : hi) }
        }
        return [
            Scenario(name: "spring-stiffens", family: .spring,
                     summary: "the spring stiffens 25× (0.2 → 5 N/µm) at 60 s under a 5 MPa hold; ±3 mA/cm² cycling",
                     duration: 300, setpoints: [(0, 5)], injections: [(60, change { $0.springRate = 5 })], area: 1,
                     plant: { v in v.cycler = CyclerProfile(current: 3, period: 300) }),
            Scenario(name: "creep-stiffening", family: .spring,
                     summary: "lithium creep 10× nominal while the stack stiffens step by step, 0.2 → 0.5 → 1 → 2 → 5 N/µm (every 120 s), 5 MPa hold",
                     duration: 600, setpoints: [(0, 5)],
                     injections: [(60, change { $0.springRate = 0.5 }), (180, change { $0.springRate = 1 }),
                                  (300, change { $0.springRate = 2 }), (420, change { $0.springRate = 5 })], area: 1,
                     plant: { v in v.cell.creepRate = 0.04 }),
            Scenario(name: "spring-softens-pulsed", family: .spring,
                     summary: "pulsed program 4 ↔ 6 MPa (30 s each); the spring softens 4× (0.2 → 0.05 N/µm) at 90 s",
                     duration: 600, setpoints: square(4, 6, 30, 600), injections: [(90, change { $0.springRate = 0.05 })], area: 1),
            Scenario(name: "regulator-weakens-pulsed", family: .pneumatic,
                     summary: "pulsed program 2.5 ↔ 3.5 MPa (30 s each); the regulator's gain halves (1 → 0.5) at 90 s",
                     duration: 600, setpoints: square(2.5, 3.5, 30, 600), injections: [(90, change { $0.regulatorGain = 0.5 })],
                     excluded: [(90, 105)], area: 2),
        ]
    }

    // MARK: Plants and channels

    static func nominalVariant(_ family: Family, area: Double) -> PlantVariant {
        var v = PlantVariant()
        v.cell.area = area
        switch family {
        case .spring:
            v.loadCell.capacity = 2000; v.loadCell.sampleRate = 80
        case .pneumatic:
            v.loadCell.capacity = 5000; v.loadCell.noise = 0.5; v.loadCell.resolution = 0.1; v.loadCell.sampleRate = 100
        }
        return v
    }

    static func makePlant(_ family: Family, _ v: PlantVariant, seed: UInt64) -> SimChannel {
        let cell = CellModel(parameters: v.cell)
        let fixture: SimFixture = family == .spring
            ? .spring(SpringFixtureModel(parameters: v.spring, cell: cell, frame: v.frame))
            : .pneumatic(PneumaticModel(parameters: v.pneumatic, cell: cell, frame: v.frame))
        return SimChannel(fixture: fixture, loadCell: LoadCellModel(parameters: v.loadCell), cycler: v.cycler, seed: seed)
    }

    static func channel(_ family: Family, area: Double, capacity: Double) -> ChannelParameters {
        var p = family == .spring ? SimPresets.springController(area: area) : SimPresets.pneumaticController(area: area)
        p.sensor.maxForce = capacity
        if family == .spring { p.pid.outputMax = 20_000 }
        return p
    }

    /// The autotune result on the nominal plant of `family`, which the fixed PID uses.
    public static func nominalTune(_ family: Family, rule: TuningRule = .amigo) -> AutotuneResult? {
        let sp = family == .spring ? 5.0 : 3.0
        let area = family == .spring ? 1.0 : 2.0
        let v = nominalVariant(family, area: area)
        let plant = makePlant(family, v, seed: 99)
        var p = channel(family, area: area, capacity: v.loadCell.capacity)
        p.autotune.rule = rule
        var loop = ClosedLoop(controller: ChannelController(parameters: p, initialOutput: 0), backend: plant)
        return tune(&loop, at: sp).result
    }

    /// Regulates to `sp` until settled, then runs the relay experiment.
    static func tune(_ loop: inout ClosedLoop, at sp: Double) -> (result: AutotuneResult?, note: String) {
        do { try loop.controller.setTarget(sp) } catch { return (nil, "setpoint refused: \(error)") }
        var settled = 0.0
        for _ in 0..<6000 {
            loop.tick()
            let s = loop.controller.state
            settled = s.inBand ? settled + loop.period : 0
            if settled >= 5 { break }
        }
        do { try loop.controller.startAutotune() } catch { return (nil, "autotune refused: \(error)") }
        for _ in 0..<20_000 {
            loop.tick()
            if loop.controller.autotuner == nil { break }
        }
        for e in loop.controller.drainEvents() {
            if case .autotune(let state, let detail) = e, state != .started {
                return (state == .done ? loop.controller.lastTune : nil, "\(state): \(detail)")
            }
        }
        return (nil, "no result")
    }

    // MARK: Running

    /// Runs `contender` on `scenario`. `nominal` is the fixed PID's nominal autotune.
    /// - Parameter trace: called with every event of the scored run (plant seconds from its start).
    public static func run(_ scenario: Scenario, _ contender: Contender, nominal: AutotuneResult?, seed: UInt64 = 7, rule: TuningRule = .amigo, rate: Double = 100,
                           trace: ((Double, ChannelEvent) -> Void)? = nil) -> Result {
        var v = nominalVariant(scenario.family, area: scenario.area)
        scenario.plant(&v)
        let plant = makePlant(scenario.family, v, seed: seed)
        var params = channel(scenario.family, area: scenario.area, capacity: v.loadCell.capacity)
        let cycler = plant.cycler
        plant.cycler = CyclerProfile() // no cycling while settling and tuning
        switch contender {
        case .fixed, .oracle: params.strategy = .pid
        case .adaptive: params.strategy = .adaptive
        case .learned: params.strategy = .learned
        case .mpc: params.strategy = .mpc
        }
        params.autotune.rule = rule
        var ctl = ChannelController(parameters: params, initialOutput: 0)
        if var nominal {
            nominal.kp *= scenario.gainFactor; nominal.ki *= scenario.gainFactor
            ctl.restoreLearning(tune: nominal, memory: nil)
        }
        var loop = ClosedLoop(controller: ctl, backend: plant, rate: rate)
        let first = scenario.setpoints[0].mpa
        // Every contender starts from the nominal plant's autotune, as a technician who
        // swapped the cell, spring or regulator would: nobody retunes by hand.
        try? loop.controller.setTarget(first)
        loop.run(for: 30)
        let note = nominal.map { "nominal \($0.rule.rawValue) kp \(fmt3($0.kp)) ki \(fmt3($0.ki))" }
        _ = loop.controller.drainEvents()
        // Start of the scored run: the plant's disturbance state now is the oracle's zero.
        plant.cycler = cycler
        if let program = scenario.program { try? loop.controller.startProgram(program) }
        let t0 = loop.now
        let d0 = disturbance(plant)
        var injections = scenario.injections
        var acknowledge = scenario.acknowledgeAt
        var maxAbove = 0.0
        var spIndex = 0
        var lastChange = 0.0
        var target = first
        var prevTarget = first
        var within5 = 0, within1 = 0, scored = 0, saturated = 0
        var iae = 0.0, worst = 0.0, overshoot = 0.0, travel = 0.0
        var settling: [Double?] = []
        var changed = false
        var enteredAt: Double? = 0
        var lastOutput = loop.controller.pid.output
        var faults: [String] = []
        var recoveries = 0
        let n = Int((scenario.duration * rate).rounded())
        for _ in 0..<n {
            let t = loop.now - t0
            while spIndex < scenario.setpoints.count && scenario.setpoints[spIndex].time <= t + 1e-9 {
                let sp = scenario.setpoints[spIndex].mpa
                if abs(sp - target) > 1e-12 {
                    if changed { settling.append(enteredAt.map { $0 - lastChange }) }
                    changed = true
                    prevTarget = target
                    lastChange = t
                    enteredAt = nil
                    try? loop.controller.setTarget(sp)
                }
                target = sp
                spIndex += 1
            }
            while let j = injections.first, j.time <= t + 1e-9 { plant.inject(j.injection); injections.removeFirst() }
            if let ack = acknowledge, t >= ack {
                acknowledge = nil
                loop.controller.acknowledge()
                try? loop.controller.setTarget(target)
            }
            if contender == .oracle { loop.controller.externalFeedforward = -(disturbance(plant) - d0) }
            let s = loop.tick()
            if scenario.program != nil, let sp = loop.controller.target { target = sp }
            for e in loop.controller.drainEvents() {
                trace?(t, e)
                if case .faultRaised(let r, _) = e { faults.append(r.code.rawValue) }
                if case .recovery(.resumed, _, _) = e { recoveries += 1 }
            }
            let p = StackUnits.pressure(force: plant.trueForce, area: scenario.area)
            let err = abs(p - target)
            let inside5 = Band.contains(p, target: target, band: 0.05)
            if inside5 { enteredAt = enteredAt ?? t } else { enteredAt = nil }
            if !(changed && t - lastChange < scenario.settle) { maxAbove = max(maxAbove, (p - target) / target * 100) }
            if changed {
                let past = (p - target) * (target > prevTarget ? 1 : -1)
                if past > 0 { overshoot = max(overshoot, past / abs(target - prevTarget) * 100) }
            }
            travel += abs(s.output - lastOutput); lastOutput = s.output
            if s.terms.saturated { saturated += 1 }
            let isExcluded = (changed && t - lastChange < scenario.settle) || scenario.excluded.contains { t >= $0.from && t < $0.to }
            if !isExcluded {
                scored += 1
                if inside5 { within5 += 1 }
                if err <= 0.01 * target { within1 += 1 }
                iae += err * loop.period
                worst = max(worst, err / target * 100)
            }
        }
        if changed { settling.append(enteredAt.map { $0 - lastChange }) }
        let settleTime: Double? = settling.contains { $0 == nil } ? nil : settling.compactMap { $0 }.max()
        let mem = loop.controller.adapter?.memory
        return Result(scenario: scenario.name, contender: contender.rawValue,
                      within5: scored > 0 ? Double(within5) / Double(scored) * 100 : 0,
                      within1: scored > 0 ? Double(within1) / Double(scored) * 100 : 0,
                      iae: iae, worstError: worst, overshoot: overshoot, settlingTime: settleTime, maxAboveTarget: maxAbove, travel: travel,
                      scoredSamples: scored, saturatedTicks: saturated, faults: Array(Set(faults)).sorted(),
                      autotune: note, finalScale: mem?.scale, confidence: contender == .learned ? mem?.confidence : nil,
                      handovers: contender == .learned ? mem?.handovers : nil, fallbacks: mem?.fallbacks,
                      excursions: loop.controller.excursionStats.count, outOfBandS: loop.controller.excursionStats.timeOutOfBand,
                      recoveries: recoveries)
    }

    /// The true disturbance displacement in the spring fixture's actuator units (µm of
    /// screw): cell thickness change minus frame growth. Zero for pneumatic fixtures,
    /// whose regulator sets the force directly.
    static func disturbance(_ plant: SimChannel) -> Double {
        if case .spring(let s) = plant.fixture { return s.cell.thicknessChange - s.frame.growth }
        return 0
    }
}

/// Three decimals, for notes.
