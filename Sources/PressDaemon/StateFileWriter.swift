import Foundation
import PressDrivers
import Logging
import PressCore
import PressLog
import PressProtocol
import Synchronization

/// Whether a durable store is being written: what `status`, the metrics and the alarms
/// report. Updated by the store's own thread, read by the socket.
public final class StoreHealth: Sendable {
    public let name: String
    public let path: String
    private struct State { var lastOK: UInt64?; var failingSince: UInt64?; var lastError: String?; var failures = 0 }
    private let state = Mutex(State())

    public init(name: String, path: String) { self.name = name; self.path = path }

    /// Records a successful write; returns how long it had been failing, if it was.
    @discardableResult
    func succeeded() -> Double? {
        state.withLock { s in
            let now = monotonicNanos()
            defer { s.lastOK = now; s.failingSince = nil }
            return s.failingSince.map { Double(now &- $0) / 1e9 }
        }
    }

    /// Records a failed write; returns true when this starts a failure.
    @discardableResult
    func failed(_ error: String) -> Bool {
        state.withLock { s in
            s.failures += 1
            s.lastError = error
            guard s.failingSince == nil else { return false }
            s.failingSince = monotonicNanos()
            return true
        }
    }

    func info(startNanos: UInt64) -> StorageInfo {
        state.withLock { s in
            let now = monotonicNanos()
            return StorageInfo(name: name, path: path, writing: s.failingSince == nil,
                               lastWriteAgoS: s.lastOK.map { Double(now &- $0) / 1e9 },
                               failingSinceS: s.failingSince.map { Double($0 &- startNanos) / 1e9 },
                               lastError: s.lastError, failures: s.failures)
        }
    }
}

/// Keeps the state file (``StateJournal``) current from its own thread: within 20 ms of
/// anything that matters after a restart changing (a mode, a setpoint, a fault raised or
/// acknowledged, a program step), and at least once a second, so that its time also
/// tells how fresh it is. It never touches SQLite, so a full disk or a locked run log
/// does not stop it.
///
/// A file that could not be made at start (a full disk) is the same as one that stops
/// writing later: `storage` says `state_file` is not writing, with the error, the alarm
/// is raised, and the file is made and written as soon as it can be (tried every second).
final class StateFileWriter: @unchecked Sendable {
    let path: String
    /// Nil until the file could be opened and allocated.
    private(set) var journal: StateJournal?
    let loop: ControlLoop
    let logger: Logger
    let health: StoreHealth
    /// Called with a message when writing starts failing or recovers (to the run log).
    var onChange: @Sendable (String) -> Void = { _ in }
    private var lastSignature: [ChannelSignature] = []
    private var lastWrite = 0.0
    private var lastOpenAttempt = 0.0

    /// - Parameters:
    ///   - journal: the open state file, or nil when it could not be made (`openError`).
    init(path: String, journal: StateJournal?, openError: StateJournalError? = nil, loop: ControlLoop, logger: Logger) {
        self.path = path; self.journal = journal; self.loop = loop; self.logger = logger
        health = StoreHealth(name: "state_file", path: path)
        if journal == nil { health.failed("\(openError.map { "\($0)" } ?? "not open")") }
        lastOpenAttempt = Date().timeIntervalSince1970
    }

    private lazy var worker = PeriodicWorker(name: ThreadName("state"), interval: 0.02) { [unowned self] in
        writeIfNeeded(force: stopping)
    }
    private var stopping = false

    func start() { worker.start() }

    /// Stops after a last write.
    func stop() { stopping = true; worker.stop() }

    /// What must never be lost, per channel: mode, target, latched faults, program
    /// position. Compared 50 times a second, so plain values, no text.
    struct ChannelSignature: Equatable {
        var mode: ChannelMode
        var target: Double?
        var ramp: Double?
        var faults: [FaultCode]
        var activeFaults: [Bool]
        var programState: ProgramRunner.State?
        var programIndex: Int?
    }

    static func signature(_ snap: RigSnapshot) -> [ChannelSignature] {
        snap.channels.map { c in
            ChannelSignature(mode: c.mode, target: c.target, ramp: c.ramp, faults: c.faults.map(\.code), activeFaults: c.faults.map(\.active),
                             programState: c.program?.state, programIndex: c.program?.index)
        }
    }

    func writeIfNeeded(force: Bool) {
        guard let snap = loop.snapshots.latest() else { return }
        let now = Date().timeIntervalSince1970
        let sig = Self.signature(snap)
        guard force || sig != lastSignature || now - lastWrite >= 1 else { return }
        do {
            guard let journal = try openedJournal(now: now, force: force) else { return }
            try journal.write(StateJournal.Contents(written: now, logTime: loop.epoch + snap.time, channels: persistedChannels(snap, now: now)))
            lastSignature = sig
            lastWrite = now
            if let was = health.succeeded() {
                logger.notice("state file writing again", metadata: ["path": "\(journal.path)", "failed_for_s": "\(round3(was))"])
                onChange("state file writing again after \(round3(was)) s")
            }
        } catch {
            if health.failed("\(error)") {
                logger.critical("state file not writing: after a restart the last setpoint and latched faults may be older than this", metadata: ["error": "\(error)"])
                onChange("state file not writing: \(error)")
            }
        }
    }
}

extension StateFileWriter {
    /// The state file, opened (made and allocated) now if it could not be before; at
    /// most one attempt a second unless `force`. Nil while it is not yet time to try again.
    fileprivate func openedJournal(now: Double, force: Bool) throws(StateJournalError) -> StateJournal? {
        if let journal { return journal }
        guard force || now - lastOpenAttempt >= 1 else { return nil }
        lastOpenAttempt = now
        let j = try StateJournal(path: path)
        journal = j
        return j
    }
}

/// Every channel's restart state from a snapshot (shared by the run log and the state file).
func persistedChannels(_ snap: RigSnapshot, now: Double) -> [PersistedChannel] {
    snap.channels.enumerated().map { i, c in
        var p = PersistedChannel(channel: c.name, mode: c.mode, target: c.target, ramp: c.ramp, output: c.output,
                                 faults: c.faults, program: c.program, backend: snap.backendStates[i], updated: now)
        p.tune = c.control.lastTune
        p.learned = c.control.memory
        p.sweep = c.control.lastSweep
        p.supervisor = c.control.supervisor
        return p
    }
}

/// Which restart state to believe: per channel the newer of the run log's and the state
/// file's; and whether it may be stale (the state file stopped being written while the
/// run log went on — its last sample is more than `tolerance` s newer, both on the run
/// log's clock).
enum RestoreChoice {
    static func choose(runLog: [String: PersistedChannel], file: StateJournal.Contents?, fileIsNew: Bool,
                       runLogLastTime: Double?, tolerance: Double = 5) -> (states: [String: PersistedChannel], staleSince: Double?) {
        var out = runLog
        for c in file?.channels ?? [] where (out[c.channel]?.updated ?? -.infinity) <= c.updated { out[c.channel] = c }
        var stale: Double?
        if let f = file, let last = runLogLastTime, last > (f.logTime ?? f.written) + tolerance { stale = f.written }
        if file == nil, !fileIsNew, !runLog.isEmpty { stale = runLog.values.map(\.updated).max() }
        return (out, stale)
    }
}
