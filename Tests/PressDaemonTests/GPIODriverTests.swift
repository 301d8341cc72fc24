import Testing
@testable import PressDrivers

/// A simulated HX711 behind two simulated lines: it shifts out queued conversions on
/// clock rising edges exactly as the datasheet describes, and counts the extra pulses.
final class SimHX711 {
    var queue: [Int32] = []
    var bitIndex = 0
    var pulses = 0
    var lastGainPulses: Int?
    var clockHigh = false
    var current: UInt32 = 0
    var ready: Bool { !queue.isEmpty && pulses == 0 }

    final class Clock: DigitalLine {
        unowned let chip: SimHX711
        init(_ c: SimHX711) { chip = c }
        func get() throws(GPIOError) -> Bool { chip.clockHigh }
        func set(_ v: Bool) throws(GPIOError) { chip.clock(v) }
    }
    final class Data: DigitalLine {
        unowned let chip: SimHX711
        init(_ c: SimHX711) { chip = c }
        func get() throws(GPIOError) -> Bool { chip.dout }
        func set(_ v: Bool) throws(GPIOError) { throw GPIOError(chip: "sim", line: 1, operation: "set value", reason: "input line") }
    }
    lazy var clockLine = Clock(self)
    lazy var dataLine = Data(self)

    var dout: Bool {
        if pulses == 0 { return queue.isEmpty } // high = not ready
        if pulses <= 24 { return (current >> UInt32(24 - pulses)) & 1 == 1 }
        return true
    }

    func clock(_ high: Bool) {
        if high && !clockHigh {
            if pulses == 0 { current = UInt32(bitPattern: queue[0]) & 0xFF_FFFF }
            pulses += 1
        }
        clockHigh = high
    }

    /// Ends a frame (what the chip does when the next conversion starts).
    func finishFrame() {
        lastGainPulses = pulses
        if !queue.isEmpty { queue.removeFirst() }
        pulses = 0
    }
}

/// A line that records (time, value) of every set.
final class RecordingLine: DigitalLine {
    var value = false
    var now: () -> Double
    var edges: [(Double, Bool)] = []
    init(now: @escaping () -> Double) { self.now = now }
    func get() throws(GPIOError) -> Bool { value }
    func set(_ v: Bool) throws(GPIOError) { value = v; edges.append((now(), v)) }
}

@Suite("GPIO drivers against simulated lines")
struct GPIODriverTests {
    @Test("HX711: reads signed 24-bit conversions MSB first and sends the gain pulses", arguments: HX711Gain.allCases)
    func hx711(gain: HX711Gain) throws {
        let chip = SimHX711()
        let adc = HX711(clock: chip.clockLine, data: chip.dataLine, gain: gain)
        #expect(try adc.read() == nil) // nothing converted yet: DOUT high
        for v: Int32 in [0, 1, -1, 8_388_607, -8_388_608, 123_456, -654_321] {
            chip.queue = [v]
            #expect(try adc.read() == v)
            #expect(chip.pulses == gain.rawValue)
            chip.finishFrame()
            #expect(chip.lastGainPulses == gain.rawValue)
        }
        #expect(HX711.newtons(1_000_100, offset: 100, scale: 0.0005) == 500)
    }

    @Test("stepper profile: exact step count, never above the maximum rate, bounded acceleration, symmetric ramps")
    func stepperProfile() {
        let t = StepperProfile.stepTimes(steps: 2000, maxRate: 2000, acceleration: 8000)
        #expect(t.count == 2000)
        let intervals = zip(t.dropFirst(), t).map { $0 - $1 }
        #expect(intervals.allSatisfy { $0 >= 1 / 2000 - 1e-12 })
        // Speed changes by at most a·Δt (+ a step's worth of discretisation).
        let rates = intervals.map { 1 / $0 }
        for (i, (r1, r0)) in zip(rates.dropFirst(), rates).enumerated() {
            #expect(abs(r1 - r0) <= 8000 * intervals[i + 1] * 1.5 + 1, "step \(i)")
        }
        // Accelerate, cruise, decelerate: cruise time dominates a long move.
        #expect(rates.filter { abs($0 - 2000) < 1e-6 }.count > 1000)
        #expect(abs(t.first! - intervals.last!) < 1e-9) // the first pulse comes as long after the start as the last after its predecessor
        // A short move never reaches full speed.
        #expect(StepperProfile.stepTimes(steps: 10, maxRate: 2000, acceleration: 8000).count == 10)
    }

    @Test("stepper driver: direction first, one pulse per step at the planned times, position tracked")
    func stepperDriver() throws {
        var clock = 0.0
        let step = RecordingLine { clock }, dir = RecordingLine { clock }
        let drv = StepperDriver(step: step, dir: dir, maxRate: 1000, acceleration: 5000)
        try drv.move(to: 300) { clock = $0 }
        #expect(drv.position == 300)
        #expect(dir.edges.first?.1 == true)
        #expect(step.edges.filter { $0.1 }.count == 300)
        try drv.move(to: 100) { clock = 10 + $0 }
        #expect(drv.position == 100)
        #expect(dir.edges.last?.1 == false)
        #expect(step.edges.filter { $0.1 }.count == 500)
    }

    @Test("valve PWM: bounded frequency, pulses shorter than the valve can make are dropped or merged")
    func valvePWM() {
        let p = ValvePWM.period(duty: 0.3, frequency: 5, minPulse: 0.02)
        #expect(abs(p.on - 0.06) < 1e-12 && abs(p.off - 0.14) < 1e-12)
        #expect(ValvePWM.period(duty: 0.05, frequency: 5, minPulse: 0.02).on == 0)   // 10 ms: too short, stays shut
        #expect(ValvePWM.period(duty: 0.95, frequency: 5, minPulse: 0.02).off == 0)  // 10 ms off: stays open
        #expect(ValvePWM.period(duty: 2, frequency: 5, minPulse: 0.02).on == 0.2)
    }
}
