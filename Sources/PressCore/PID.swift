/// Which way the controller output moves when the measurement rises above the setpoint.
///
/// Process-control naming (ISA): a *reverse-acting* controller lowers its output when
/// the measurement rises, which is what a press needs (more actuator → more pressure).
/// A *direct-acting* controller raises it, for plants with a negative gain (for example
/// an exhaust valve whose opening lowers the pressure).
public enum ControllerAction: String, Sendable, Codable, CaseIterable {
    /// error = setpoint − measurement
    case reverse
    /// error = measurement − setpoint
    case direct
}

/// How the integrator is kept from winding up while the output is limited.
public enum AntiWindup: String, Sendable, Codable, CaseIterable {
    /// Feed the difference between the limited and the unlimited output back into the
    /// integrator with time constant ``PIDParameters/trackingTime`` (Åström & Hägglund).
    case backCalculation = "back-calculation"
    /// Stop integrating while the output is limited and the error would push it further
    /// into the limit (conditional integration / clamping).
    case conditional
    /// No protection. Only for tests and comparisons.
    case none
}

/// Tuning and shaping parameters of a ``PIDController``.
///
/// Units: the controlled variable is in the channel's process unit (MPa in pressd),
/// the output in actuator units (µm of screw travel, MPa of regulator command, …).
/// `kp` is output/process-unit, `ki` output/(process-unit·s), `kd` output·s/process-unit.
public struct PIDParameters: Sendable, Equatable, Codable {
    public var kp: Double
    public var ki: Double
    public var kd: Double
    /// Time constant of the first-order filter on the derivative of the measurement, s.
    /// Zero disables filtering (not recommended with noisy sensors).
    public var derivativeFilterTime: Double
    public var outputMin: Double
    public var outputMax: Double
    /// Largest output change per second, in output units/s. `nil` means unlimited.
    public var outputRateLimit: Double?
    /// Largest setpoint change per second, in process units/s. `nil` means steps.
    public var setpointRampRate: Double?
    /// Half-width of the error deadband, process units. Inside it the error counts as
    /// zero; outside it the band is subtracted, so P and I stay continuous at the edge.
    public var deadband: Double
    public var action: ControllerAction
    public var antiWindup: AntiWindup
    /// Back-calculation tracking time constant, s. `nil` selects √(Ti·Td), or Ti when
    /// there is no derivative action (Åström & Hägglund's rule of thumb), and immediate
    /// tracking for an integral-only controller.
    public var trackingTime: Double?

    public init(
        kp: Double, ki: Double = 0, kd: Double = 0,
        derivativeFilterTime: Double = 0,
        outputMin: Double = -.infinity, outputMax: Double = .infinity,
        outputRateLimit: Double? = nil, setpointRampRate: Double? = nil,
        deadband: Double = 0, action: ControllerAction = .reverse,
        antiWindup: AntiWindup = .backCalculation, trackingTime: Double? = nil
    ) {
        self.kp = kp; self.ki = ki; self.kd = kd
        self.derivativeFilterTime = derivativeFilterTime
        self.outputMin = outputMin; self.outputMax = outputMax
        self.outputRateLimit = outputRateLimit; self.setpointRampRate = setpointRampRate
        self.deadband = deadband; self.action = action
        self.antiWindup = antiWindup; self.trackingTime = trackingTime
    }

    /// Problems that make the parameters unusable, each naming the field.
    public func validationErrors() -> [(field: String, message: String)] {
        var errors: [(String, String)] = []
        for (name, v) in [("kp", kp), ("ki", ki), ("kd", kd)] where !v.isFinite || v < 0 {
            errors.append((name, "must be a finite number ≥ 0"))
        }
        if !(derivativeFilterTime >= 0) { errors.append(("derivative_filter_s", "must be ≥ 0")) }
        if !(outputMin < outputMax) { errors.append(("output_min", "must be below output_max")) }
        if let r = outputRateLimit, !(r > 0) { errors.append(("output_rate", "must be > 0")) }
        if let r = setpointRampRate, !(r > 0) { errors.append(("setpoint_ramp", "must be > 0")) }
        if !(deadband >= 0) { errors.append(("deadband", "must be ≥ 0")) }
        if let t = trackingTime, !(t > 0) { errors.append(("tracking_time_s", "must be > 0")) }
        return errors
    }

    /// Tracking time in use; zero means "track at once" (integral-only controllers,
    /// whose integrator *is* the output).
    var effectiveTrackingTime: Double {
        if let t = trackingTime { return t }
        guard ki > 0, kp > 0 else { return 0 }
        let ti = kp / ki
        let td = kd / kp
        return td > 0 ? (ti * td).squareRoot() : ti
    }
}

/// The controller's operating mode.
public enum PIDMode: String, Sendable, Codable {
    /// Closed loop: the output is computed from setpoint and measurement.
    case automatic
    /// Open loop: the output is given from outside; the controller tracks it so that the
    /// return to automatic is bumpless.
    case manual
}

/// One update's breakdown, for status displays and tuning.
public struct PIDTerms: Sendable, Equatable, Codable {
    public var error: Double = 0
    public var proportional: Double = 0
    public var integral: Double = 0
    public var derivative: Double = 0
    public var feedforward: Double = 0
    /// Output before limits.
    public var unlimited: Double = 0
    public var output: Double = 0
    /// True when the output is held by its amplitude or rate limit.
    public var saturated: Bool = false
    public init() {}
}

/// A discrete PID controller a control engineer would put in front of a real plant.
///
/// - The sample time is the measured `dt` of each call, not a nominal one.
/// - Derivative acts on the (filtered) measurement, never on the setpoint, so setpoint
///   steps do not kick the actuator.
/// - Anti-windup respects the amplitude *and* the rate limit: the integrator is
///   corrected with the output that was actually applied.
/// - Setpoint ramp, error deadband, feedforward, direct/reverse action.
/// - Bumpless transfer manual → automatic and on every gain change: the integrator is
///   re-seeded so that the output does not jump.
///
/// It is a value type with no I/O and no clock of its own: deterministic and testable.
public struct PIDController: Sendable {
    public private(set) var parameters: PIDParameters
    public private(set) var mode: PIDMode = .manual
    /// Integrator state, in output units.
    public private(set) var integral: Double = 0
    /// The setpoint after ramp limiting: what the loop is actually chasing.
    public private(set) var workingSetpoint: Double?
    /// Last applied output.
    public private(set) var output: Double
    public private(set) var lastTerms = PIDTerms()

    private var filteredDerivative: Double = 0
    private var lastMeasurement: Double?

    public init(parameters: PIDParameters, initialOutput: Double = 0) {
        self.parameters = parameters
        self.output = min(max(initialOutput, parameters.outputMin), parameters.outputMax)
    }

    /// Signed error for the configured action, after the deadband.
    private func error(setpoint: Double, measurement: Double) -> Double {
        let raw = parameters.action == .reverse ? setpoint - measurement : measurement - setpoint
        let db = parameters.deadband
        if abs(raw) <= db { return 0 }
        return raw > 0 ? raw - db : raw + db
    }

    /// Hands the output to an outside source (operator, safety logic). While manual the
    /// controller tracks `output` so that ``setAutomatic(measurement:)`` is bumpless.
    public mutating func setManual(output value: Double) {
        mode = .manual
        output = min(max(value, parameters.outputMin), parameters.outputMax)
        lastTerms.output = output
    }

    /// Returns to closed loop without a bump: the working setpoint starts at the present
    /// measurement when a ramp is configured, and the integrator absorbs the difference
    /// between the last manual output and what P and feedforward would now give.
    public mutating func setAutomatic(measurement: Double, feedforward: Double = 0) {
        guard mode == .manual else { return }
        mode = .automatic
        lastMeasurement = measurement
        if parameters.setpointRampRate != nil { workingSetpoint = measurement }
        let sp = workingSetpoint ?? measurement
        let p = parameters.kp * error(setpoint: sp, measurement: measurement)
        integral = output - p - parameters.kd * filteredDerivative - feedforward
    }

    /// Changes tuning without a bump: the integrator is adjusted so that the output
    /// computed with the new gains, the last error and the last derivative equals the
    /// output computed with the old ones.
    public mutating func setParameters(_ new: PIDParameters) {
        let e = lastTerms.error
        let oldPD = parameters.kp * e + parameters.kd * filteredDerivative
        let newPD = new.kp * e + new.kd * filteredDerivative
        parameters = new
        if mode == .automatic { integral += oldPD - newPD }
        output = min(max(output, new.outputMin), new.outputMax)
    }

    /// Moves the integrator by `delta` output units. Used to keep the output continuous
    /// when something outside the PID (a feedforward term) changes by −`delta`.
    public mutating func shiftIntegral(by delta: Double) {
        if delta.isFinite { integral += delta }
    }

    /// Forgets the ramp so the next update starts it from `value` (e.g. on a new target
    /// when the measurement is far from the old working setpoint).
    public mutating func resetWorkingSetpoint(to value: Double) { workingSetpoint = value }

    /// One controller step.
    /// - Parameters:
    ///   - setpoint: the target, process units.
    ///   - measurement: the present measurement, process units.
    ///   - feedforward: added to the output before limits (e.g. a static plant inverse).
    ///   - dt: seconds since the previous update, as measured. Non-positive or
    ///     non-finite values skip integration and differentiation for this step.
    /// - Returns: the output to apply, within limits.
    @discardableResult
    ///   - ceiling: a temporary upper limit for this update, below `outputMax` (a channel
    ///     that lost actuator authority); the anti-windup treats it like the limit.
    public mutating func update(setpoint: Double, measurement: Double, feedforward: Double = 0, dt: Double,
                                ceiling: Double? = nil) -> Double {
        let p = parameters
        let validDt = dt.isFinite && dt > 0
        var terms = PIDTerms()
        terms.feedforward = feedforward

        // Derivative on the measurement, first-order filtered (backward Euler).
        let sign: Double = p.action == .reverse ? -1 : 1
        if validDt, let last = lastMeasurement {
            let raw = sign * (measurement - last) / dt
            let tf = p.derivativeFilterTime
            let a = tf > 0 ? dt / (tf + dt) : 1
            filteredDerivative += a * (raw - filteredDerivative)
        }
        lastMeasurement = measurement

        guard mode == .automatic else {
            // Tracking: keep the integrator consistent with the applied output.
            workingSetpoint = nil
            terms.output = output
            lastTerms = terms
            return output
        }

        // Setpoint ramp.
        var sp = setpoint
        if let rate = p.setpointRampRate, let working = workingSetpoint {
            let step = validDt ? rate * dt : 0
            sp = working + min(max(setpoint - working, -step), step)
        }
        workingSetpoint = sp

        let e = error(setpoint: sp, measurement: measurement)
        terms.error = e
        terms.proportional = p.kp * e
        terms.derivative = p.kd * filteredDerivative
        let unlimited = terms.proportional + integral + terms.derivative + feedforward
        terms.unlimited = unlimited

        var u = min(max(unlimited, p.outputMin), min(p.outputMax, max(ceiling ?? .infinity, p.outputMin)))
        if let rate = p.outputRateLimit, validDt {
            let step = rate * dt
            u = min(max(u, output - step), output + step)
        }
        terms.saturated = abs(u - unlimited) > 1e-12 * max(1, abs(unlimited))

        if validDt {
            switch p.antiWindup {
            case .backCalculation:
                let tt = p.effectiveTrackingTime
                integral += p.ki * e * dt + (tt > 0 ? min(1, dt / tt) : 1) * (u - unlimited)
            case .conditional:
                let pushingHigh = unlimited > u && e > 0
                let pushingLow = unlimited < u && e < 0
                if !(pushingHigh || pushingLow) { integral += p.ki * e * dt }
            case .none:
                integral += p.ki * e * dt
            }
        }
        terms.integral = integral
        terms.output = u
        output = u
        lastTerms = terms
        return u
    }
}
