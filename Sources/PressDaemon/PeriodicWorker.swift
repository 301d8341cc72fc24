import Foundation
import PressDrivers
import Synchronization

/// A thread of its own that runs `body` every `interval` seconds, and once more when
/// stopped (so that the last state is written after the control loop has stopped).
/// For the run log and the state file: their writes block on the disk and must never
/// run on the control thread or the event loop.
final class PeriodicWorker: @unchecked Sendable {
    let name: String
    let interval: Double
    private let body: () -> Void
    private let stopFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private var thread: Thread?

    init(name: String, interval: Double, body: @escaping () -> Void) {
        self.name = name; self.interval = interval; self.body = body
    }

    func start() {
        let t = Thread { [self] in nameThreadForOS(name);
            while !stopFlag.load(ordering: .acquiring) {
                Thread.sleep(forTimeInterval: interval)
                body()
            }
            body()
            done.signal()
        }
        t.name = name
        thread = t
        t.start()
    }

    /// Stops after a last run of the body; waits for it.
    func stop() {
        guard thread != nil else { return }
        stopFlag.store(true, ordering: .releasing)
        done.wait()
        thread = nil
    }
}
