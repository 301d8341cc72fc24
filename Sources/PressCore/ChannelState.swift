/// The operating state of a channel.
public enum ChannelMode: String, Sendable, Codable {
    /// Actuator at its safe output; nothing is regulated. The state at start-up.
    case released
    /// Actuator frozen where it is; nothing is regulated.
    case holding
    /// Closed loop on the setpoint.
    case regulating
    /// A fault fired; its safe action was taken. Stays until acknowledged.
    case tripped
    /// The stack thickness is held (constant gap, constant volume); the pressure is what
    /// the cell develops (``ConstantGap``).
    case constantGap = "constant_gap"
}

/// Why a command was refused. Each case carries enough to name the problem.
public enum CommandRejection: Error, Sendable, Equatable {
    case outOfRange(value: Double, min: Double, max: Double)
    case faultLatched([FaultCode])
    case invalidRamp(Double)
    /// A program that does not fit the channel: step index and reason.
    case invalidProgram(step: Int, message: String)
    /// No program is loaded, or it is not in a state that allows the command.
    case noProgram(String)
    /// The command would be unsafe or cannot run in the present state; the text says why.
    case unsafe(String)
}

/// What happened to a program (the run log's `program` events).
public enum ProgramEventState: String, Sendable, CaseIterable {
    case started, paused, resumed, stopped, finished, failed
}

/// How an autotune experiment went.
public enum AutotuneEventState: String, Sendable, CaseIterable {
    case started, done, failed, cancelled
}

/// A sweep's progress (its end is ``ChannelEvent/sweepFinished(_:)``).
public enum SweepEventState: String, Sendable, CaseIterable {
    case started
    /// One pressure level measured.
    case level
}

/// Whether the actuator moves the pressure.
public enum AuthorityEventState: String, Sendable, CaseIterable {
    case lost, regained
}

/// An automatic recovery, or the hour's budget of them spent.
public enum RecoveryEventState: String, Sendable, CaseIterable {
    case resumed, latched
}

/// Something worth recording that happened in a tick.
public enum ChannelEvent: Sendable, Equatable {
    case modeChanged(from: ChannelMode, to: ChannelMode, reason: String)
    case faultRaised(FaultRecord, action: SafeAction)
    case faultsAcknowledged(cleared: [FaultCode], remaining: [FaultCode])
    case setpointChanged(target: Double, ramp: Double?)
    case programStep(name: String, index: Int, step: String)
    case programState(name: String, state: ProgramEventState, detail: String)
    /// Autotune progress: started, done (with the result), failed (with the reason), cancelled.
    case autotune(state: AutotuneEventState, detail: String)
    /// The adaptive or learned controller changed something worth recording.
    case adaptation(String)
    /// Critical-stack-pressure sweep progress: started, or level (a point measured).
    case sweep(state: SweepEventState, detail: String)
    /// A sweep ended (done or aborted), with its result: the run log keeps it.
    case sweepFinished(SweepResult)
    /// The impedance-aware supervisor moved the setpoint, locked, unlocked or converged.
    case supervisor(String)
    /// The regulated pressure came back into its band (or regulation ended) after an
    /// excursion; the record has its bounds, worst error and likely cause.
    case excursion(ExcursionRecord)
    /// The pressure stopped answering the output (`lost`: the output is capped at what
    /// the setpoint needs) or answers again (`regained`).
    case authority(state: AuthorityEventState, detail: String)
    /// Recoverable faults cleared by themselves and the channel resumed (`resumed`), or
    /// the hour's budget of recoveries was spent and the faults stay latched (`latched`).
    case recovery(state: RecoveryEventState, codes: [FaultCode], detail: String)
    /// The setpoint changed owner: who took over from whom (see ``SetpointArbiter``).
    case setpointOwner(SetpointHandover)
    /// A reloaded configuration changed something the channel was doing (a setpoint
    /// outside the new limits was moved inside them).
    case configuration(String)
}

/// The published state of a channel after a tick.
public struct ChannelState: Sendable, Equatable {
    public var name: String
    public var mode: ChannelMode
    public var time: Double
    /// Operator's target, MPa (nil until one was set).
    public var target: Double?
    /// Ramped setpoint the PID is chasing, MPa.
    public var workingSetpoint: Double?
    /// Latest stack pressure, MPa (nil without a valid force sample).
    public var pressure: Double?
    public var force: Double?
    /// True when the force sample is older than the staleness limit.
    public var stale: Bool
    public var output: Double
    public var terms: PIDTerms
    public var faults: [FaultRecord]
    public var inBand: Bool
    public var readings: ChannelReadings
    /// Setpoint ramp in force, MPa/s (nil: steps).
    public var ramp: Double?
    /// The running program, if any.
    public var program: ProgramRunner?
    /// The limits in force (they change on a configuration reload).
    public var limits: PressureLimits
    public var cellArea: Double
    /// Strategy, relay experiment in progress, last autotune and what the adaptive and
    /// learned controllers know.
    public var control: ControlStatus
    /// The excursion out of the band in progress, if any, and the counts so far.
    public var excursion: ExcursionRecord? = nil
    public var excursions = ExcursionStats()
    /// True while the pressure does not answer the output and the output is capped.
    public var authorityLost = false
    /// Automatic recoveries from faults that cleared by themselves, since start.
    public var recoveries = 0
    /// The stack thickness held in constant-gap mode, µm (nil: not in that mode, or
    /// holding the actuator for want of a gauge).
    public var gapTarget: Double?
}

/// The controller side of a channel's state, for `status` and persistence.
public struct ControlStatus: Sendable, Equatable {
    public var strategy: ControlStrategy
    /// The relay experiment in progress.
    public var autotune: RelayAutotuner?
    /// The last successful autotune (its gains are the channel's base gains).
    public var lastTune: AutotuneResult?
    /// What the adaptive and learned controllers have learned (nil for `pid`).
    public var memory: ControllerMemory?
    /// Gains and feedforward in force.
    public var kp: Double
    public var ki: Double
    public var feedforwardGain: Double
    /// What is really computing the output now.
    public var activeControl: ActiveControl
    /// `activeControl`'s wire spelling: pid, adaptive, learned, mpc or autotune.
    public var active: String { activeControl.rawValue }
    /// The sweep in progress and the last sweep's result.
    public var sweep: CSPSweep?
    public var lastSweep: SweepResult?
    /// The impedance-aware supervisor, when enabled.
    public var supervisor: ImpedanceSupervisor?
    /// Who owns the setpoint now.
    public var setpointOwner: SetpointOwner = .operator
    /// The `mpc` law's model, confidence and prediction error (nil for other laws).
    public var mpc: MPCStatus? = nil
}
