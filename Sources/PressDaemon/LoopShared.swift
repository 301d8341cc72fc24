import Foundation
import PressCore
import PressLog
import Synchronization

// What the control thread shares with the rest of the daemon: the command inbox, the
// snapshot, the event and sample rings (docs/architecture.md, "Threads"), and what they carry.

/// Timing statistics of the loop, against its absolute deadlines.
public struct LoopStats: Sendable, Equatable {
    public var rate: Double
    public var timeScale: Double
    public var ticks: UInt64 = 0
    public var overruns: UInt64 = 0
    /// Plant seconds the simulated clock fell behind the scaled wall clock because the
    /// host could not keep up (0 on hardware, whose clock is the wall clock).
    public var slipped: Double = 0
    /// Wake-up lateness of the last tick, s.
    public var lastJitter: Double = 0
    public var maxJitter: Double = 0
    /// Longest tick body, s.
    public var maxTickDuration: Double = 0
    /// Wake-up lateness histogram: counts per bucket of ``jitterBucketEdges``
    /// (the last bucket counts everything above the last edge).
    public var jitterHistogram = [UInt64](repeating: 0, count: LoopStats.jitterBucketEdges.count + 1)
    /// Upper edges of the histogram buckets, s.
    public static let jitterBucketEdges: [Double] = [25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3]

    mutating func record(jitter: Double) {
        var i = 0
        while i < Self.jitterBucketEdges.count && jitter > Self.jitterBucketEdges[i] { i += 1 }
        jitterHistogram[i] += 1
    }
}

/// What the loop publishes after every tick. Immutable once published.
public struct RigSnapshot: Sendable {
    /// Loop time of the tick, s since start (simulated seconds on the simulator).
    public var time: Double
    public var stats: LoopStats
    public var channels: [ChannelState]
    /// Each backend's restart state, refreshed once per log period.
    public var backendStates: [[String: Double]?]
}

/// Something that happened on the loop, for the log. Produced on the control thread,
/// consumed elsewhere.
public struct LoopEvent: Sendable {
    public var time: Double
    public var channel: String
    public var event: ChannelEvent
}

/// A bounded multi-producer queue drained by the control thread.
public final class CommandInbox: Sendable {
    private let queue = Mutex<[PendingCommand]>([])
    public let capacity: Int
    public init(capacity: Int = 64) { self.capacity = capacity }

    /// Enqueues `c`; returns false when the inbox is full (the caller answers `busy`).
    public func offer(_ c: PendingCommand) -> Bool {
        queue.withLock { q in
            guard q.count < capacity else { return false }
            q.append(c)
            return true
        }
    }

    /// Takes every waiting command. Never waits: if a producer holds the lock this
    /// tick, the commands are taken next tick.
    func drain() -> [PendingCommand] {
        queue.withLockIfAvailable { q -> [PendingCommand] in
            defer { q.removeAll(keepingCapacity: true) }
            return q
        } ?? []
    }
}

/// The latest snapshot, swapped in by the control thread and copied out by readers.
/// The lock is held only for the swap; the old value is released outside it.
public final class SnapshotBox: Sendable {
    private let value: Mutex<RigSnapshot?> = Mutex(nil)
    public init() {}
    func publish(_ s: RigSnapshot) {
        var incoming: RigSnapshot? = s
        value.withLock { swap(&$0, &incoming) }
        _ = incoming // old snapshot released here, outside the lock
    }
    public func latest() -> RigSnapshot? { value.withLock { $0 } }
}

/// A bounded multi-producer buffer drained in batches; when full the oldest entries
/// are dropped and counted. The lock is held only to append or to swap the contents.
public final class BoundedRing<Element: Sendable>: Sendable {
    private let state = Mutex<(items: [Element], dropped: Int)>(([], 0))
    public let capacity: Int
    public init(capacity: Int) { self.capacity = capacity }
    func push(_ e: [Element]) {
        guard !e.isEmpty else { return }
        state.withLock { s in
            s.items.append(contentsOf: e)
            if s.items.count > capacity {
                let extra = s.items.count - capacity
                s.items.removeFirst(extra)
                s.dropped += extra
            }
        }
    }
    /// Takes the queued items and the number dropped since the last call.
    public func drain() -> (items: [Element], dropped: Int) {
        state.withLock { s in
            defer { s.items.removeAll(keepingCapacity: true); s.dropped = 0 }
            return s
        }
    }
}

/// Loop events for the journal and the run log.
public typealias EventRing = BoundedRing<LoopEvent>
/// Finished log samples for the run-log writer.
public typealias SampleRing = BoundedRing<LogSample>
