import PressCore
import PressSim

/// Builds the loop's channels from a validated configuration.
public enum RigBuilder {
    /// The simulated rig described by `config`: one ``SimChannel`` per channel, seeded
    /// from the configured seed and the channel's position.
    public static func simulated(_ config: DaemonConfig) -> LoopCore {
        var channels: [LoopChannel] = []
        for (i, c) in config.channels.enumerated() {
            let backend = simulatedChannel(c, seed: config.seed &+ UInt64(i) &* 7919, substep: config.substep)
            channels.append(LoopChannel(controller: ChannelController(parameters: c.control), backend: backend, config: c))
        }
        return LoopCore(channels: channels)
    }

    public static func simulatedChannel(_ c: ChannelConfig, seed: UInt64, substep: Double) -> SimChannel {
        var frame = FrameModel()
        frame.growthPerKelvin = c.sim.frameGrowthPerKelvin
        frame.temperature = c.sim.ambient
        let cell = CellModel(parameters: c.sim.cell, temperature: c.sim.ambient)
        let fixture: SimFixture
        switch c.actuator {
        case .springFixture:
            var s = c.sim.spring
            s.travel = min(s.travel, c.control.pid.outputMax)
            fixture = .spring(SpringFixtureModel(parameters: s, cell: cell, frame: frame))
        case .pneumatic:
            var p = c.sim.pneumatic
            p.commandMax = c.control.pid.outputMax
            fixture = .pneumatic(PneumaticModel(parameters: p, cell: cell, frame: frame))
        }
        return SimChannel(fixture: fixture, loadCell: LoadCellModel(parameters: c.sim.loadCell),
                          cycler: CyclerProfile(current: c.sim.current, period: c.sim.cyclePeriod),
                          ambient: c.sim.ambient, seed: seed, substep: substep)
    }
}
