import Foundation
import Synchronization

/// The running configuration: one immutable ``DaemonConfig`` value, replaced whole on
/// reload.
///
/// Every reader (the control socket's handlers, the metrics renderer, the reload
/// itself) takes the snapshot current at the time of the request and works on that
/// value; nothing holds a copy from start-up. Swapping the value is atomic, so a reader
/// sees either the old configuration or the new one, never a mix.
public final class LiveConfig: Sendable {
    private let value: Mutex<DaemonConfig>

    public init(_ config: DaemonConfig) { value = Mutex(config) }

    /// The configuration in force now.
    public var current: DaemonConfig { value.withLock { $0 } }

    /// Puts `config` in force.
    func replace(_ config: DaemonConfig) { value.withLock { $0 = config } }
}

/// Runs configuration reloads one at a time, off the caller's thread.
///
/// SIGHUP and the socket's `reload` both end up here: the file is read, parsed and
/// validated on this executor's own serial queue (never on the NIO event loop, never on
/// the control thread), and two reloads never overlap, whoever asked for them.
public final class ConfigReloader: Sendable {
    private let queue = DispatchQueue(label: "pressd.reload")
    private let perform: @Sendable () -> Result<String, ConfigError>

    /// - Parameter perform: reads, validates and applies the configuration file; runs on
    ///   the reload queue only.
    public init(perform: @escaping @Sendable () -> Result<String, ConfigError>) { self.perform = perform }

    /// Queues a reload; `done` is called on the reload queue with its result.
    public func reload(_ done: @escaping @Sendable (Result<String, ConfigError>) -> Void) {
        queue.async { [perform] in done(perform()) }
    }

    /// Queues a reload and waits for it (for signal handlers and tests; never call it
    /// from an event loop).
    public func reloadAndWait() -> Result<String, ConfigError> {
        queue.sync { perform() }
    }
}
