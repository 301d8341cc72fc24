/// The hardware side of one channel, as the control loop sees it.
///
/// Implementations own their devices; the loop calls them from its own thread only,
/// once per tick, in the order `read` then `apply`. A simulated rig advances its
/// physics to `now` inside `read`.
public protocol ChannelBackend: AnyObject {
    /// Reads the channel's sensors as of monotonic time `now` (seconds).
    func read(now: Double) -> ChannelReadings
    /// Applies the actuator output (in the actuator's units) at monotonic time `now`.
    func apply(output: Double, now: Double)
    /// The actuator's present output if the hardware can report it, so that the
    /// controller starts from it without a bump.
    var presentOutput: Double? { get }
    /// State the backend needs to resume after a restart (real hardware keeps its own
    /// state and returns nil; the simulator returns its plant's state).
    func persistentState() -> [String: Double]?
    /// Restores what ``persistentState()`` returned, before the first tick.
    func restore(_ state: [String: Double])
    /// Called after every tick with the channel's published state when ``mirrors`` is
    /// true: a backend may copy values out (the hardware backend mirrors pressure and
    /// setpoint to a cycler's registers). Must not block.
    func mirror(_ state: ChannelState, now: Double)
    /// Whether ``mirror(_:now:)`` has anything to do (the state is built for it only then).
    var mirrors: Bool { get }
}

extension ChannelBackend {
    public func persistentState() -> [String: Double]? { nil }
    public func restore(_ state: [String: Double]) {}
    public func mirror(_ state: ChannelState, now: Double) {}
    public var mirrors: Bool { false }
}
