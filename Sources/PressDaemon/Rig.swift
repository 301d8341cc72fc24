import Foundation
import PressCore
import PressDrivers
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
        let sim = SimChannel(fixture: fixture, loadCell: LoadCellModel(parameters: c.sim.loadCell),
                             cycler: CyclerProfile(current: c.sim.current, period: c.sim.cyclePeriod),
                             ambient: c.sim.ambient, seed: seed, substep: substep)
        sim.thicknessGauge = c.sim.thicknessGauge
        if c.sim.impedanceInterval > 0 {
            sim.impedanceInterval = c.sim.impedanceInterval
            sim.impedanceAcquisition = c.sim.impedanceAcquisition
        }
        return sim
    }
}

extension RigBuilder {
    /// Pollers for every configured device, reading every signal the channels name each
    /// cycle, and the actuators' registers as read-backs (at start, every second, after
    /// an error), and one backend per channel. `lines` opens a
    /// GPIO chip (tests pass simulated lines).
    public static func hardware(_ config: DaemonConfig, clock: @escaping @Sendable () -> Double,
                                lines: (String) throws(GPIOError) -> LineProvider = { name throws(GPIOError) in try GPIOChip(name) })
        throws(GPIOError) -> (LoopCore, [ModbusPoller], [GPIODevicePoller]) {
        var signals: [String: [ModbusSignal]] = [:]
        var readbacks: [String: [ModbusSignal]] = [:]
        for c in config.channels {
            let hw = c.hardware
            for r in hw.loadCells.map(\.ref) + hw.signals.map(\.ref) {
                signals[r.device, default: []].append(r.signal)
            }
            if let a = hw.actuator { readbacks[a.device, default: []].append(a.signal) }
            for m in hw.mirrors { readbacks[m.ref.device, default: []].append(m.ref.signal) }
        }
        var pollers: [String: ModbusPoller] = [:]
        var gpio: [String: GPIODevicePoller] = [:]
        for d in config.devices {
            if let t = d.transport {
                pollers[d.name] = ModbusPoller(name: d.name, transport: t, defaultUnit: d.unit, timeout: d.timeout,
                                               retries: d.retries, pollRate: d.pollRate, readSignals: signals[d.name] ?? [],
                                               readbackSignals: readbacks[d.name] ?? [], readbackInterval: d.readbackInterval,
                                               rewriteInterval: d.rewriteInterval, clock: clock)
            } else if let chip = d.gpioChip {
                let hx = config.channels.flatMap { $0.hardware.hx711s.filter { $0.device == d.name }.map(\.input) }
                let ins = config.channels.flatMap { $0.hardware.gpioSignals.filter { $0.device == d.name }.map { (id: $0.id, spec: $0.spec) } }
                let st = config.channels.compactMap { $0.hardware.stepper }.filter { $0.device == d.name }.map(\.output)
                let vs = config.channels.compactMap { $0.hardware.valves }.filter { $0.device == d.name }.map(\.output)
                gpio[d.name] = GPIODevicePoller(name: d.name, provider: try lines(chip), consumer: d.consumer,
                                                hx711s: hx, inputs: ins, steppers: st, valves: vs, clock: clock)
            }
        }
        let channels = config.channels.map { c in
            LoopChannel(controller: ChannelController(parameters: c.control),
                        backend: HardwareChannelBackend(config: c, pollers: pollers, gpio: gpio), config: c)
        }
        return (LoopCore(channels: channels), config.devices.compactMap { pollers[$0.name] }, config.devices.compactMap { gpio[$0.name] })
    }
}
