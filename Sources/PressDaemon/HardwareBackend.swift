import Foundation
import PressCore
import PressDrivers

/// A channel on real devices: load cells, auxiliary signals and the actuator are
/// registers on Modbus devices, polled by their ``ModbusPoller`` threads. `read` and
/// `apply` only touch the pollers' caches and queues, so they never block the loop.
public final class ModbusChannelBackend: ChannelBackend {
    let config: ChannelConfig
    let pollers: [String: ModbusPoller]

    init(config: ChannelConfig, pollers: [String: ModbusPoller]) {
        self.config = config; self.pollers = pollers
    }

    private func sample(_ r: RegisterRef) -> Sample? { pollers[r.device]?.value(r.signal.id) }

    public func read(now: Double) -> ChannelReadings {
        let hw = config.hardware
        var readings = ChannelReadings()
        // Total force: every load cell must have delivered; the oldest sample dates it.
        var forces: [Double] = []
        var oldest = Double.infinity
        for (ref, q) in hw.loadCells {
            guard let s = sample(ref) else { forces = []; break }
            forces.append(q.newtons(s.value, area: config.control.cellArea))
            oldest = min(oldest, s.time)
        }
        if forces.count == hw.loadCells.count, !forces.isEmpty {
            readings.force = Sample(value: forces.reduce(0, +), time: oldest)
            if forces.count > 1 { readings.loadCellForces = forces }
        }
        for (role, ref) in hw.signals {
            guard let s = sample(ref) else { continue }
            switch role {
            case .temperatureC: readings.temperature = s
            case .currentMA: readings.current = s
            case .impedanceOhmCm2: readings.interfacialResistance = s
            case .charging: readings.charging = s.value >= 0.5
            case .emergencyStop: readings.emergencyStop = s.value >= 0.5
            }
        }
        return readings
    }

    public func apply(output: Double, now: Double) {
        guard let a = config.hardware.actuator else { return }
        pollers[a.device]?.write(a.signal, output)
    }

    /// The actuator's register read back (holding registers and coils are readable).
    public var presentOutput: Double? {
        guard let a = config.hardware.actuator else { return nil }
        return sample(a)?.value
    }
}

extension RigBuilder {
    /// Pollers for every configured device, reading every signal the channels name
    /// (actuators too, for read-back), and one backend per channel.
    public static func hardware(_ config: DaemonConfig, clock: @escaping @Sendable () -> Double) -> (LoopCore, [ModbusPoller]) {
        var signals: [String: [ModbusSignal]] = [:]
        for c in config.channels {
            let hw = c.hardware
            for r in hw.loadCells.map(\.ref) + hw.signals.map(\.ref) + (hw.actuator.map { [$0] } ?? []) {
                signals[r.device, default: []].append(r.signal)
            }
        }
        var pollers: [String: ModbusPoller] = [:]
        for d in config.devices {
            pollers[d.name] = ModbusPoller(name: d.name, transport: d.transport, defaultUnit: d.unit, timeout: d.timeout,
                                           retries: d.retries, pollRate: d.pollRate, readSignals: signals[d.name] ?? [], clock: clock)
        }
        let channels = config.channels.map { c in
            LoopChannel(controller: ChannelController(parameters: c.control), backend: ModbusChannelBackend(config: c, pollers: pollers), config: c)
        }
        return (LoopCore(channels: channels), config.devices.compactMap { pollers[$0.name] })
    }
}
