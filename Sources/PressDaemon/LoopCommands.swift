import Foundation
import PressCore
import PressLog
import PressSim

/// A command for the control loop, applied between two ticks: a channel's own command
/// (``ChannelCommand``, the one vocabulary of what can be asked of a channel), or one of
/// the few that belong to the loop around the channels (its backends, its calibrations,
/// its pushed values, a reload's loop settings).
public enum LoopCommand: Sendable {
    /// A command for channel `channel`'s controller.
    case channel(Int, ChannelCommand)
    /// Acknowledge one channel's faults, or every channel's with `nil`.
    case acknowledge(channel: Int?)
    /// A simulated fault or change of the plant, for a backend that offers it
    /// (``SimulatedPlantControl``).
    case inject(channel: Int, SimInjection)
    /// Put a reloaded configuration's settings of a channel in force: its tuning and limits
    /// (bumplessly), its shutdown action and its pushed-signal stale limit. The channel's
    /// name and loop-rate divider cannot change (a reload refuses that).
    case reconfigure(channel: Int, LoopChannel.Settings)
    /// Tare or span the channel's load cells from the last second of raw readings.
    case calibrate(channel: Int, CalibrationAction)
    /// Auxiliary signals pushed in by other software (an impedance analyser's script,
    /// the cycler's): used in place of the backend's until they are older than the
    /// channel's `pushed_stale_after_s`.
    case push(channel: Int, PushedSignals)
}

extension LoopCommand {
    // The channel's commands by their usual names.
    public static func set(channel: Int, mpa: Double, ramp: Double?) -> LoopCommand { .channel(channel, .set(mpa: mpa, ramp: ramp)) }
    public static func hold(channel: Int) -> LoopCommand { .channel(channel, .hold) }
    public static func release(channel: Int) -> LoopCommand { .channel(channel, .release) }
    /// Hold the stack thickness (µm; nil: as measured now): constant-gap mode.
    public static func gap(channel: Int, um: Double?) -> LoopCommand { .channel(channel, .gap(um)) }
    public static func programStart(channel: Int, _ p: PressureProgram) -> LoopCommand { .channel(channel, .programStart(p)) }
    public static func programPause(channel: Int) -> LoopCommand { .channel(channel, .programPause) }
    public static func programResume(channel: Int) -> LoopCommand { .channel(channel, .programResume) }
    public static func programStop(channel: Int) -> LoopCommand { .channel(channel, .programStop) }
    /// Start a relay autotune (nil settings: the channel's configured ones) or cancel it.
    public static func autotune(channel: Int, _ s: AutotuneSettings?) -> LoopCommand { .channel(channel, .autotune(s)) }
    public static func autotuneCancel(channel: Int) -> LoopCommand { .channel(channel, .autotuneCancel) }
    /// Start or cancel a critical-stack-pressure sweep.
    public static func sweep(channel: Int, _ s: SweepSettings) -> LoopCommand { .channel(channel, .sweep(s)) }
    public static func sweepCancel(channel: Int) -> LoopCommand { .channel(channel, .sweepCancel) }
    /// Lock or unlock the impedance-aware supervisor.
    public static func supervisorLock(channel: Int, locked: Bool) -> LoopCommand { .channel(channel, .supervisorLock(locked)) }
}

/// Values pushed in for a channel, by signal; signals not named are left as they were.
public struct PushedSignals: Sendable, Equatable {
    public var values: [Signal: Double] = [:]
    /// How long before arrival they were measured, wall-clock seconds (0: now).
    public var age: Double
    public init(_ values: [Signal: Double] = [:], age: Double = 0) { self.values = values; self.age = age }
    public init(interfacialResistance: Double? = nil, temperature: Double? = nil, current: Double? = nil, voltage: Double? = nil,
                bulkResistance: Double? = nil, age: Double = 0) {
        let named: [(Signal, Double?)] = [(.interfacialResistance, interfacialResistance), (.temperature, temperature), (.current, current),
                                          (.voltage, voltage), (.bulkResistance, bulkResistance)]
        self.init(Dictionary(uniqueKeysWithValues: named.compactMap { s, v in v.map { (s, $0) } }), age: age)
    }
    public var interfacialResistance: Double? { values[.interfacialResistance] }
    public var bulkResistance: Double? { values[.bulkResistance] }
}

/// The loop's answer to a command.
public enum LoopReply: Sendable {
    case ok(mode: ChannelMode)
    case setpoint(mpa: Double, ramp: Double?)
    case acknowledged([(channel: Int, cleared: [FaultCode], remaining: [FaultCode], mode: ChannelMode)])
    case rejected(CommandRejection)
    case unavailable(String)
    case program(ProgramRunner?)
    case calibration([LoadCellCalibration])
    case calibrationFailed(CalibrationError)
}

/// A command waiting in the inbox, with the callback that carries the answer back. The
/// callback runs on the control thread and must not block (completing a NIO promise
/// is fine: it only enqueues a task on the event loop).
public struct PendingCommand: Sendable {
    public var command: LoopCommand
    public var reply: @Sendable (LoopReply) -> Void
    public init(_ command: LoopCommand, reply: @escaping @Sendable (LoopReply) -> Void) {
        self.command = command; self.reply = reply
    }
}
