/// Input channel and gain of the HX711, selected by the number of clock pulses after
/// the 24 data bits (it applies to the *next* conversion).
public enum HX711Gain: Int, Sendable, CaseIterable {
    /// Channel A, gain 128: 25 pulses.
    case a128 = 25
    /// Channel B, gain 32: 26 pulses.
    case b32 = 26
    /// Channel A, gain 64: 27 pulses.
    case a64 = 27
}

/// The HX711 24-bit load-cell ADC, bit-banged over two GPIO lines (PD_SCK out, DOUT in).
///
/// DOUT low means a conversion is ready. Each of 24 clock pulses shifts out one bit,
/// most significant first; 1–3 more pulses select the gain of the next conversion.
/// Keep each clock-high phase under 60 µs (longer powers the chip down): the driver
/// does no sleeping of its own and libgpiod toggles in about a microsecond. Run it on
/// a device thread, never on the control loop.
public final class HX711 {
    let clock: DigitalLine
    let data: DigitalLine
    public var gain: HX711Gain

    public init(clock: DigitalLine, data: DigitalLine, gain: HX711Gain = .a128) {
        self.clock = clock; self.data = data; self.gain = gain
    }

    /// True when a conversion waits to be read.
    public func isReady() throws(GPIOError) -> Bool { try !data.get() }

    /// Reads one conversion as a signed 24-bit count, or nil when none is ready.
    public func read() throws(GPIOError) -> Int32? {
        guard try isReady() else { return nil }
        var v: UInt32 = 0
        for _ in 0..<24 {
            try clock.set(true)
            let bit = try data.get()
            try clock.set(false)
            v = v << 1 | (bit ? 1 : 0)
        }
        for _ in 24..<gain.rawValue {
            try clock.set(true)
            try clock.set(false)
        }
        // Sign-extend 24 → 32 bits.
        return Int32(bitPattern: v & 0x80_0000 != 0 ? v | 0xFF00_0000 : v)
    }

    /// Converts counts to N with a tare offset (counts) and a scale (N per count).
    public static func newtons(_ counts: Int32, offset: Double, scale: Double) -> Double {
        (Double(counts) - offset) * scale
    }
}

/// Step timing for a stepper move with a trapezoidal speed profile: accelerate at
/// `acceleration` steps/s² up to `maxRate` steps/s, cruise, decelerate to stop exactly
/// on the last step.
public enum StepperProfile {
    /// Times (s from the move's start) of each step pulse.
    public static func stepTimes(steps: Int, maxRate: Double, acceleration: Double) -> [Double] {
        guard steps > 0, maxRate > 0, acceleration > 0 else { return [] }
        var times: [Double] = []
        times.reserveCapacity(steps)
        var t = 0.0
        for k in 0..<steps {
            // Speed allowed by accelerating from rest for k+1 steps and by decelerating
            // to rest over the remaining steps: v = sqrt(2·a·n).
            let vUp = (2 * acceleration * Double(k + 1)).squareRoot()
            let vDown = (2 * acceleration * Double(steps - k)).squareRoot()
            let v = min(maxRate, vUp, vDown)
            t += 1 / v
            times.append(t)
        }
        return times
    }
}

/// Drives a stepper through step / direction / enable lines with
/// ``StepperProfile`` timing. `sleepUntil` waits for a time from the move's start; the
/// real driver passes a `clock_nanosleep`-based wait, tests a recorder.
public final class StepperDriver {
    let step: DigitalLine
    let dir: DigitalLine
    let enable: DigitalLine?
    public let maxRate: Double
    public let acceleration: Double
    /// Present position, steps.
    public private(set) var position = 0

    public init(step: DigitalLine, dir: DigitalLine, enable: DigitalLine? = nil, maxRate: Double, acceleration: Double) {
        self.step = step; self.dir = dir; self.enable = enable; self.maxRate = maxRate; self.acceleration = acceleration
    }

    /// Moves to `target` steps; returns after the last pulse.
    public func move(to target: Int, sleepUntil: (Double) -> Void) throws(GPIOError) {
        let n = abs(target - position)
        guard n > 0 else { return }
        try enable?.set(true)
        try dir.set(target > position)
        for t in StepperProfile.stepTimes(steps: n, maxRate: maxRate, acceleration: acceleration) {
            sleepUntil(t)
            try step.set(true)
            try step.set(false)
            position += target > position ? 1 : -1
        }
    }
}

/// On/off timing for a solenoid valve driven with pulse-width control at a bounded
/// switching frequency: one period is 1 / `frequency`; pulses shorter than
/// `minPulse` are dropped (fully off) or merged (fully on), since a valve cannot open
/// that fast.
public enum ValvePWM {
    /// (on, off) durations of one period for `duty` in 0…1.
    public static func period(duty: Double, frequency: Double, minPulse: Double) -> (on: Double, off: Double) {
        let p = 1 / frequency
        let d = min(max(duty, 0), 1)
        var on = d * p
        if on < minPulse { on = 0 }
        if p - on < minPulse { on = p }
        return (on, p - on)
    }
}
