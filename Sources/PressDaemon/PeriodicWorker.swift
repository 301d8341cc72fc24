import Foundation
import PressDrivers

/// A thread of its own that runs `body` every `interval` seconds, and once more when
/// stopped (so that the last state is written after the control loop has stopped).
/// For the run log and the state file: their writes block on the disk and must never
/// run on the control thread or the event loop.
final class PeriodicWorker: @unchecked Sendable {
    let name: ThreadName
    let interval: Double
    private let thread: DaemonThread

    init(name: ThreadName, interval: Double, body: @escaping () -> Void) {
        self.name = name; self.interval = interval
        let work = UncheckedBody(body)
        thread = DaemonThread(name) { t in
            while !t.isStopping {
                Thread.sleep(forTimeInterval: interval)
                work.run()
            }
            work.run()
        }
    }

    func start() { thread.start() }

    /// Stops after a last run of the body; waits for it.
    func stop() { thread.stop() }
}

/// The body of a ``PeriodicWorker``: called on its thread only.
private final class UncheckedBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
