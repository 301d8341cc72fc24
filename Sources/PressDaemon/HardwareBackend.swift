import Foundation
import PressCore
import PressDrivers

/// A channel on real devices: load cells, auxiliary signals and the actuator are
/// registers on Modbus devices, polled by their ``ModbusPoller`` threads. `read` and
/// `apply` only touch the pollers' caches and queues, so they never block the loop.
public final class ModbusChannelBackend: ChannelBackend {
    let config: ChannelConfig
    let pollers: [String: ModbusPoller]
    let gpio: [String: GPIODevicePoller]

    init(config: ChannelConfig, pollers: [String: ModbusPoller], gpio: [String: GPIODevicePoller] = [:]) {
        self.config = config; self.pollers = pollers; self.gpio = gpio
    }

    private func sample(_ r: RegisterRef) -> Sample? { pollers[r.device]?.value(r.signal.id) }

    public func read(now: Double) -> ChannelReadings {
        let hw = config.hardware
        var readings = ChannelReadings()
        // Total force: every load cell must have delivered; the oldest sample dates it.
        var forces: [Double] = []
        var oldest = Double.infinity
        var complete = true
        for (ref, q) in hw.loadCells {
            guard let s = sample(ref) else { complete = false; break }
            forces.append(q.newtons(s.value, area: config.control.cellArea))
            oldest = min(oldest, s.time)
        }
        for (dev, h) in hw.hx711s where complete {
            guard let s = gpio[dev]?.value(h.id) else { complete = false; break }
            forces.append(s.value)
            oldest = min(oldest, s.time)
        }
        if complete, !forces.isEmpty {
            readings.force = Sample(value: forces.reduce(0, +), time: oldest)
            if forces.count > 1 { readings.loadCellForces = forces }
        }
        let gpioSamples = hw.gpioSignals.compactMap { g in gpio[g.device]?.value(g.id).map { (g.role, $0) } }
        for (role, s) in hw.signals.compactMap({ r in sample(r.ref).map { (r.role, $0) } }) + gpioSamples {
            switch role {
            case .temperatureC: readings.temperature = s
            case .currentMA: readings.current = s
            case .impedanceOhmCm2: readings.interfacialResistance = s
            case .charging: readings.charging = s.value >= 0.5
            case .emergencyStop: readings.emergencyStop = s.value >= 0.5
            case .limitSwitch: readings.limitSwitch = (readings.limitSwitch ?? false) || s.value >= 0.5
            }
        }
        return readings
    }

    public func apply(output: Double, now: Double) {
        if let (dev, st) = config.hardware.stepper { gpio[dev]?.setTarget(st.id, microns: output); return }
        if let (dev, v) = config.hardware.valves { gpio[dev]?.setValves(v.id, command: output); return }
        guard let a = config.hardware.actuator else { return }
        pollers[a.device]?.write(a.signal, output)
    }

    /// The actuator's register read back (holding registers and coils are readable),
    /// or the stepper's position.
    public var presentOutput: Double? {
        if let (dev, st) = config.hardware.stepper { return gpio[dev]?.position(st.id) }
        guard let a = config.hardware.actuator else { return nil }
        return sample(a)?.value
    }
}

extension RigBuilder {
    /// Pollers for every configured device, reading every signal the channels name
    /// (actuators too, for read-back), and one backend per channel. `lines` opens a
    /// GPIO chip (tests pass simulated lines).
    public static func hardware(_ config: DaemonConfig, clock: @escaping @Sendable () -> Double,
                                lines: (String) throws(GPIOError) -> LineProvider = { name throws(GPIOError) in try GPIOChip(name) })
        throws(GPIOError) -> (LoopCore, [ModbusPoller], [GPIODevicePoller]) {
        var signals: [String: [ModbusSignal]] = [:]
        for c in config.channels {
            let hw = c.hardware
            for r in hw.loadCells.map(\.ref) + hw.signals.map(\.ref) + (hw.actuator.map { [$0] } ?? []) {
                signals[r.device, default: []].append(r.signal)
            }
        }
        var pollers: [String: ModbusPoller] = [:]
        var gpio: [String: GPIODevicePoller] = [:]
        for d in config.devices {
            if let t = d.transport {
                pollers[d.name] = ModbusPoller(name: d.name, transport: t, defaultUnit: d.unit, timeout: d.timeout,
                                               retries: d.retries, pollRate: d.pollRate, readSignals: signals[d.name] ?? [], clock: clock)
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
                        backend: ModbusChannelBackend(config: c, pollers: pollers, gpio: gpio), config: c)
        }
        return (LoopCore(channels: channels), config.devices.compactMap { pollers[$0.name] }, config.devices.compactMap { gpio[$0.name] })
    }
}
