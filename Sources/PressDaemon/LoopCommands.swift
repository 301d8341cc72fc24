import Foundation
import PressCore
import PressLog
import PressSim

/// A command for the control loop, applied between two ticks.
public enum LoopCommand: Sendable {
    case set(channel: Int, mpa: Double, ramp: Double?)
    case hold(channel: Int)
    case release(channel: Int)
    /// Acknowledge one channel's faults, or every channel's with `nil`.
    case acknowledge(channel: Int?)
    case inject(channel: Int, SimInjection)
    case programStart(channel: Int, PressureProgram)
    case programPause(channel: Int)
    case programResume(channel: Int)
    case programStop(channel: Int)
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
    /// Start a relay autotune (nil settings: the channel's configured ones) or cancel it.
    case autotune(channel: Int, AutotuneSettings?)
    case autotuneCancel(channel: Int)
    /// Start or cancel a critical-stack-pressure sweep.
    case sweep(channel: Int, SweepSettings)
    case sweepCancel(channel: Int)
    /// Lock or unlock the impedance-aware supervisor.
    case supervisorLock(channel: Int, locked: Bool)
}

/// Values pushed in for a channel; nil fields are left as they were.
public struct PushedSignals: Sendable, Equatable {
    public var interfacialResistance: Double?
    public var temperature: Double?
    public var current: Double?
    /// Bulk resistance, Ω·cm² (from a fitted spectrum), and cell voltage, V.
    public var bulkResistance: Double?
    public var voltage: Double?
    /// How long before arrival they were measured, wall-clock seconds (0: now).
    public var age: Double
    public init(interfacialResistance: Double? = nil, temperature: Double? = nil, current: Double? = nil, voltage: Double? = nil,
                bulkResistance: Double? = nil, age: Double = 0) {
        self.interfacialResistance = interfacialResistance; self.temperature = temperature; self.current = current
        self.voltage = voltage; self.bulkResistance = bulkResistance; self.age = age
    }
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
