import Foundation
import PressCore
import PressDrivers

/// A channel on real devices: load cells, auxiliary signals and the actuator are
/// registers on Modbus devices (polled by their ``ModbusPoller`` threads) or GPIO lines
/// (HX711 load-cell ADCs, stepper drives, inlet/exhaust valves, switches; driven by
/// their ``GPIODevicePoller`` threads). `read` and `apply` only touch the pollers'
/// caches and queues, so they never block the loop.
public final class HardwareChannelBackend: ChannelBackend {
    let config: ChannelConfig
    let pollers: [String: ModbusPoller]
    let gpio: [String: GPIODevicePoller]
    /// An analyser's result register holds its value until the next fit: its
    /// measurement time is the poll at which the value changed, not every poll.
    private var impedance = MeasurementRegister()
    /// Loop time of each mirror's next write.
    private var mirrorDue: [Double]

    init(config: ChannelConfig, pollers: [String: ModbusPoller], gpio: [String: GPIODevicePoller] = [:]) {
        self.config = config; self.pollers = pollers; self.gpio = gpio
        self.mirrorDue = config.hardware.mirrors.map { _ in -Double.infinity }
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
            case .signal(.interfacialResistance): readings.interfacialResistance = impedance.observe(s)
            case .signal(let signal): readings[signal] = s
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

    public var mirrors: Bool { !config.hardware.mirrors.isEmpty }

    /// Copies the channel's pressure, setpoint or force to its mirror registers, each at
    /// its rate (queued for the device's poller: never I/O here).
    public func mirror(_ state: ChannelState, now: Double) {
        for (i, m) in config.hardware.mirrors.enumerated() where now >= mirrorDue[i] {
            let next = (mirrorDue[i].isFinite ? mirrorDue[i] : now) + 1 / m.rate
            mirrorDue[i] = next > now ? next : now + 1 / m.rate
            let value: Double?
            switch m.quantity {
            case .pressureMPa: value = state.pressure
            case .forceN: value = state.stale ? nil : state.force
            case .setpointMPa: value = state.mode == .regulating ? (state.target ?? 0) : 0
            }
            guard let v = value ?? m.invalidValue else { continue }
            pollers[m.ref.device]?.write(m.ref.signal, v)
        }
    }

    /// The actuator's register read back (holding registers and coils are readable),
    /// or the stepper's position.
    public var presentOutput: Double? {
        if let (dev, st) = config.hardware.stepper { return gpio[dev]?.position(st.id) }
        guard let a = config.hardware.actuator else { return nil }
        return sample(a)?.value
    }
}

/// A register that holds a measurement until the instrument writes the next one (an
/// impedance analyser's fitted resistance): each poll returns the value with the time
/// of the poll at which it last changed, so a result is one measurement however often
/// it is polled, and a frozen instrument ages instead of looking fresh.
///
/// Two successive results that are exactly equal count as one (with 32-bit float
/// registers and a fit's noise this is rare).
public struct MeasurementRegister: Sendable {
    private var last: Sample?
    public init() {}
    public mutating func observe(_ s: Sample) -> Sample {
        if let l = last, l.value == s.value || (l.value.isNaN && s.value.isNaN) { return l }
        last = s
        return s
    }
}
