import PressCore

/// Runs a ``ChannelController`` against a backend on a virtual clock: the same
/// read → step → apply sequence the daemon's loop performs, minus the threads and
/// sleeps, so minutes of plant time pass in milliseconds.
public struct ClosedLoop {
    public var controller: ChannelController
    public let backend: ChannelBackend
    /// Tick period, s.
    public let period: Double
    public private(set) var now: Double

    public init(controller: ChannelController, backend: ChannelBackend, rate: Double = 100, start: Double = 0) {
        self.controller = controller; self.backend = backend
        self.period = 1 / rate; self.now = start
    }

    /// One tick. Returns the published state.
    @discardableResult
    public mutating func tick() -> ChannelState {
        now += period
        let readings = backend.read(now: now)
        let out = controller.step(now: now, readings: readings)
        backend.apply(output: out, now: now)
        return controller.state
    }

    /// Runs for `seconds`, calling `observe` after every tick.
    public mutating func run(for seconds: Double, observe: (ChannelState) -> Void = { _ in }) {
        let n = Int((seconds / period).rounded())
        for _ in 0..<n { observe(tick()) }
    }
}

/// Ready-made plants matching the default two-channel rig (`config/pressd.toml`).
public enum SimPresets {
    /// Channel A: stepper screw + spring on a 1 cm² pellet cell.
    public static func springChannel(area: Double = 1, seed: UInt64 = 1) -> SimChannel {
        var cp = CellModel.Parameters(); cp.area = area
        var lc = LoadCellModel.Parameters(); lc.capacity = 2000; lc.sampleRate = 80
        return SimChannel(fixture: .spring(.init(parameters: .init(), cell: .init(parameters: cp), frame: .init())),
                          loadCell: .init(parameters: lc), seed: seed)
    }

    /// Channel B: E/P regulator + 63 mm cylinder on a 2 cm² cell.
    public static func pneumaticChannel(area: Double = 2, seed: UInt64 = 2) -> SimChannel {
        var cp = CellModel.Parameters(); cp.area = area
        var lc = LoadCellModel.Parameters(); lc.capacity = 5000; lc.noise = 0.5; lc.resolution = 0.1; lc.sampleRate = 100
        return SimChannel(fixture: .pneumatic(.init(parameters: .init(), cell: .init(parameters: cp), frame: .init())),
                          loadCell: .init(parameters: lc), seed: seed)
    }

    /// Controller parameters matching ``springChannel(area:seed:)``.
    public static func springController(area: Double = 1) -> ChannelParameters {
        ChannelParameters(
            name: "A", cellArea: area,
            pid: PIDParameters(kp: 100, ki: 1500, kd: 0, derivativeFilterTime: 0.05,
                               outputMin: 0, outputMax: 20_000, outputRateLimit: 2500, setpointRampRate: 1),
            feedforward: Feedforward(gain: StackUnits.force(pressure: 1, area: area) / 0.2, offset: 0),
            limits: PressureLimits(minSetpoint: 0.1, maxSetpoint: 12, trip: 15),
            sensor: SensorLimits(minForce: -50, maxForce: 2000, staleAfter: 0.25),
            safeOutput: 0)
    }

    /// Controller parameters matching ``pneumaticChannel(area:seed:)``.
    public static func pneumaticController(area: Double = 2) -> ChannelParameters {
        let k = StackUnits.pressure(force: 3117, area: area)
        var p = ChannelParameters(
            name: "B", cellArea: area,
            pid: PIDParameters(kp: 0.02, ki: 0.3, kd: 0, derivativeFilterTime: 0.05,
                               outputMin: 0, outputMax: 0.9, outputRateLimit: 1.0, setpointRampRate: 1),
            feedforward: Feedforward(gain: 1 / k, offset: 40 / 3117),
            limits: PressureLimits(minSetpoint: 0.1, maxSetpoint: 9, trip: 10),
            sensor: SensorLimits(minForce: -100, maxForce: 5000, staleAfter: 0.25),
            safeOutput: 0)
        // The cylinder's 30 N of stiction and the regulator's 0.003 MPa of hysteresis
        // (PneumaticModel's defaults) over the cell area.
        p.actuatorPlay = StackUnits.pressure(force: 30 + 0.003 * 3117, area: area)
        return p
    }
}
