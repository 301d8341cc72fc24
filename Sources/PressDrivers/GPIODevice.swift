import CGPIOD
import Foundation
import PressCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A GPIO line named by offset on its chip or by its line name, optionally active-low.
public struct LineSpec: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int?
    public var name: String?
    public var activeLow: Bool
    public init(offset: Int? = nil, name: String? = nil, activeLow: Bool = false) {
        self.offset = offset; self.name = name; self.activeLow = activeLow
    }
    public var description: String { (name ?? offset.map { "line \($0)" } ?? "?") + (activeLow ? " (active-low)" : "") }
}

/// Something that hands out lines: a libgpiod chip, or simulated lines in tests.
public protocol LineProvider: AnyObject {
    func request(_ spec: LineSpec, output: Bool, consumer: String) throws(GPIOError) -> DigitalLine
}

extension GPIOChip: LineProvider {
    /// Requests a line by offset or name (gpiod_chip_get_line / gpiod_chip_find_line)
    /// with the active-low flag (gpiod_line_request_*_flags).
    public func request(_ spec: LineSpec, output: Bool, consumer: String) throws(GPIOError) -> DigitalLine {
        let l: OpaquePointer?
        if let n = spec.name { l = gpiod_chip_find_line(chip, n) } else { l = gpiod_chip_get_line(chip, UInt32(spec.offset ?? -1)) }
        guard let line = l else {
            throw GPIOError(chip: name, line: spec.offset, operation: "find \(spec)", reason: String(cString: strerror(errno)))
        }
        let flags = spec.activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
        let rc = output ? gpiod_line_request_output_flags(line, consumer, flags, 0) : gpiod_line_request_input_flags(line, consumer, flags)
        guard rc == 0 else {
            throw GPIOError(chip: name, line: spec.offset, operation: output ? "request output \(spec)" : "request input \(spec)", reason: String(cString: strerror(errno)))
        }
        return GPIOLine(chip: self, line: line, offset: Int(gpiod_line_offset(line)))
    }
}

/// An HX711 on a device, with its conversion to N.
public struct HX711Input: Sendable {
    public var id: String
    public var clock: LineSpec
    public var data: LineSpec
    public var gain: HX711Gain
    /// Counts at zero load.
    public var offset: Double
    /// N per count.
    public var scale: Double
    public init(id: String, clock: LineSpec, data: LineSpec, gain: HX711Gain, offset: Double, scale: Double) {
        self.id = id; self.clock = clock; self.data = data; self.gain = gain; self.offset = offset; self.scale = scale
    }
}

/// A stepper on a device: step/dir/enable lines and its motion limits.
public struct StepperOutput: Sendable {
    public var id: String
    public var step: LineSpec
    public var dir: LineSpec
    public var enable: LineSpec?
    public var micronsPerStep: Double
    public var maxRate: Double
    public var acceleration: Double
    public init(id: String, step: LineSpec, dir: LineSpec, enable: LineSpec?, micronsPerStep: Double, maxRate: Double, acceleration: Double) {
        self.id = id; self.step = step; self.dir = dir; self.enable = enable
        self.micronsPerStep = micronsPerStep; self.maxRate = maxRate; self.acceleration = acceleration
    }
}

/// A pair of solenoid valves (inlet, exhaust) driven by one signed command in −1…1:
/// positive opens the inlet for that fraction of each PWM period, negative the exhaust.
public struct ValvePairOutput: Sendable {
    public var id: String
    public var inlet: LineSpec
    public var exhaust: LineSpec
    public var frequency: Double
    public var minPulse: Double
    public init(id: String, inlet: LineSpec, exhaust: LineSpec, frequency: Double, minPulse: Double) {
        self.id = id; self.inlet = inlet; self.exhaust = exhaust; self.frequency = frequency; self.minPulse = minPulse
    }
}

/// One GPIO chip's sensors and outputs, served from device threads: one thread reads
/// the HX711s (whenever a conversion is ready) and the digital inputs; each stepper
/// has its own thread that moves toward the latest target in short slices (≤ 20 ms of
/// steps), so a new target is taken up quickly and the sensors never wait for motion.
public final class GPIODevicePoller: @unchecked Sendable {
    public let name: String
    let provider: LineProvider
    let consumer: String
    let hx711s: [HX711Input]
    let inputs: [(id: String, spec: LineSpec)]
    let steppers: [StepperOutput]
    let valves: [ValvePairOutput]
    let clock: @Sendable () -> Double
    private let values = Mutex<[String: Sample]>([:])
    private let targets = Mutex<[String: Double]>([:])
    private let positions = Mutex<[String: Double]>([:])
    /// The sensor thread, one per stepper and one per valve pair, while they run.
    private var threads: [DaemonThread] = []
    public private(set) var lastError: String?

    public init(name: String, provider: LineProvider, consumer: String = "pressd", hx711s: [HX711Input],
                inputs: [(id: String, spec: LineSpec)], steppers: [StepperOutput], valves: [ValvePairOutput] = [],
                clock: @escaping @Sendable () -> Double) {
        self.name = name; self.provider = provider; self.consumer = consumer
        self.hx711s = hx711s; self.inputs = inputs; self.steppers = steppers; self.valves = valves; self.clock = clock
    }

    public func value(_ id: String) -> Sample? { values.withLock { $0[id] } }
    /// Where a stepper is, µm.
    public func position(_ id: String) -> Double? { positions.withLock { $0[id] } }
    /// Sets a stepper's target, µm.
    public func setTarget(_ id: String, microns: Double) { targets.withLock { $0[id] = microns } }

    /// Requests every line (errors name the chip and line) and starts the threads.
    public func start() throws(GPIOError) {
        var adcs: [(HX711Input, HX711)] = []
        for h in hx711s {
            adcs.append((h, HX711(clock: try provider.request(h.clock, output: true, consumer: consumer),
                                  data: try provider.request(h.data, output: false, consumer: consumer), gain: h.gain)))
        }
        var ins: [(String, DigitalLine)] = []
        for i in inputs { ins.append((i.id, try provider.request(i.spec, output: false, consumer: consumer))) }
        var drivers: [(StepperOutput, StepperDriver)] = []
        for s in steppers {
            let d = StepperDriver(step: try provider.request(s.step, output: true, consumer: consumer),
                                  dir: try provider.request(s.dir, output: true, consumer: consumer),
                                  enable: try s.enable.map { spec throws(GPIOError) in try provider.request(spec, output: true, consumer: consumer) },
                                  maxRate: s.maxRate, acceleration: s.acceleration)
            drivers.append((s, d))
            positions.withLock { $0[s.id] = 0 }
        }
        // The lines now belong to the device threads; nothing else touches them.
        let owned = Owned((adcs, ins))
        let sensorThread = DaemonThread(ThreadName("gpio", instance: name)) { [self] t in
            let (adcs, ins) = owned.value
            while !t.isStopping {
                for (h, adc) in adcs {
                    do {
                        if let counts = try adc.read() {
                            let v = HX711.newtons(counts, offset: h.offset, scale: h.scale)
                            let now = clock()
                            values.withLock { $0[h.id] = Sample(value: v, time: now) }
                        }
                    } catch { lastError = "\(error)" }
                }
                for (id, line) in ins {
                    if let v = try? line.get() {
                        let now = clock()
                        values.withLock { $0[id] = Sample(value: v ? 1 : 0, time: now) }
                    }
                }
                usleep(1000)
            }
        }
        threads.append(sensorThread)
        for pair in drivers {
            let ownedPair = Owned(pair)
            let thread = DaemonThread(ThreadName("stepper", instance: Self.channel(of: pair.0.id))) { [self] t in
                let (s, d) = ownedPair.value
                let sliceSteps = max(1, Int(s.maxRate * 0.02))
                while !t.isStopping {
                    let target = targets.withLock { $0[s.id] }
                    guard let target else { usleep(2000); continue }
                    let wanted = Int((target / s.micronsPerStep).rounded())
                    let delta = wanted - d.position
                    guard delta != 0 else { usleep(2000); continue }
                    let next = d.position + max(-sliceSteps, min(sliceSteps, delta))
                    var start = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &start)
                    do {
                        try d.move(to: next) { offset in
                            var ts = start
                            let ns = Int(offset * 1e9) + ts.tv_nsec
                            ts.tv_sec += ns / 1_000_000_000
                            ts.tv_nsec = ns % 1_000_000_000
                            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
                        }
                    } catch { lastError = "\(error)"; usleep(10_000) }
                    positions.withLock { $0[s.id] = Double(d.position) * s.micronsPerStep }
                }
            }
            threads.append(thread)
        }
        for v in valves {
            let lines = Owned((try provider.request(v.inlet, output: true, consumer: consumer),
                               try provider.request(v.exhaust, output: true, consumer: consumer)))
            let thread = DaemonThread(ThreadName("valves", instance: Self.channel(of: v.id))) { [self] t in
                let (inlet, exhaust) = lines.value
                while !t.isStopping {
                    let cmd = min(max(targets.withLock { $0[v.id] } ?? 0, -1), 1)
                    let p = ValvePWM.period(duty: abs(cmd), frequency: v.frequency, minPulse: v.minPulse)
                    let open = cmd > 0 ? inlet : exhaust, shut = cmd > 0 ? exhaust : inlet
                    try? shut.set(false)
                    if p.on > 0 { try? open.set(true); Thread.sleep(forTimeInterval: p.on) }
                    if p.off > 0 { try? open.set(false); Thread.sleep(forTimeInterval: p.off) }
                }
                try? inlet.set(false); try? exhaust.set(false) // both shut: the chamber holds
            }
            threads.append(thread)
        }
        for t in threads { t.start() }
    }

    /// The channel an output belongs to: its id is `CHANNEL.stepper` or `CHANNEL.valves`
    /// (channel names have no dots).
    static func channel(of id: String) -> String { id.split(separator: ".").first.map(String.init) ?? id }

    /// Sets a valve pair's command (−1 exhaust … +1 inlet).
    public func setValves(_ id: String, command: Double) { targets.withLock { $0[id] = command } }

    public func stop() {
        guard !threads.isEmpty else { return }
        for t in threads { t.requestStop() }
        for t in threads { t.join() }
        threads = []
    }
}

/// Hands non-Sendable driver objects to the one thread that will own them.
final class Owned<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
