import Foundation
import Testing

/// Found while measuring the cost per rig: every pressd thread showed in `top -H` as
/// `pressd` or a Dispatch name (Foundation's `Thread.name` never reaches the OS on
/// Linux), so a technician could not tell the control loop from a poller.
@Suite("Threads are named for top -H and ps -L")
struct ThreadNamesTests {
    @Test("the control loop, the socket acceptor, the run-log and state writers carry their names in /proc")
    func names() throws {
        let d = try DaemonProcess(timeScale: 1)
        defer { d.cleanup() }
        _ = try d.client()
        let pid = d.process.processIdentifier
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        let names = Set(tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) })
        for want in ["pressd-control", "pressd-accept", "pressd-runlog", "pressd-state"] {
            #expect(names.contains(want), "threads: \(names.sorted())")
        }
    }
}
