import Dispatch
import NIOCore

/// glibc's `malloc_trim(3)` (`<malloc.h>` is not in Swift's Glibc module): returns free
/// heap memory to the system.
@_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32

/// The control socket's per-peer bounds, all in one place (docs/protocol.md, "Limits").
public struct PeerLimits: Sendable, Equatable {
    /// Requests one connection may have in flight (read, not yet answered); its further
    /// lines wait in its input buffer, unread.
    public var inFlightPerConnection = 8
    /// Requests one uid may have in flight over all its connections (operators, admins
    /// and root excepted).
    public var inFlightPerUser = 16
    /// Unread input kept per connection before it stops being read, bytes (beyond one
    /// line of at most 64 KiB the kernel holds the rest, and the peer blocks).
    public var inputBytes = 128 * 1024
    /// Unsent output above which a connection is paused: no more of its requests are
    /// served and no subscription event is built for it, bytes (NIO's high-water mark).
    public var outputHighWater = 256 * 1024
    /// ... and below which it is served again.
    public var outputLowWater = 64 * 1024
    /// A connection paused this long on its unsent output is dropped with one
    /// `overloaded` error line (`daemon.client_stall_timeout_s`), s.
    public var stallTimeout = 30.0
    /// How long a dropped connection waits for its peer to read the `overloaded` line
    /// before it is closed anyway, s.
    public var dropGrace = 10.0
    /// Event-loop time one scheduling turn may take before other I/O is handled, and
    /// the pause after it.
    public var turnBudget = TimeAmount.milliseconds(2)
    public var turnGap = TimeAmount.microseconds(500)
    public init() {}
}

/// Something the scheduler can serve one request of at a time: a connection.
protocol ScheduledPeer: AnyObject {
    var uid: UInt32 { get }
    var privileged: Bool { get }
    /// True while it waits in the scheduler's queue.
    var queued: Bool { get set }
    /// Whether it has a complete request to serve and may be served now.
    var servable: Bool { get }
    /// Serves one request.
    func serveOne()
}

/// Round robin over keys, first in first out within a key: each key gets one turn in
/// order, however many items it has queued.
struct FairQueue<Item> {
    private var items: [UInt32: [Item]] = [:]
    private var order: [UInt32] = []
    private var head = 0

    var isEmpty: Bool { head >= order.count }

    mutating func push(_ key: UInt32, _ item: Item) {
        if items[key] == nil { order.append(key) }
        items[key, default: []].append(item)
    }

    /// The first item of the key whose turn it is; that key goes to the back.
    mutating func pop() -> Item? {
        guard head < order.count else { return nil }
        let key = order[head]
        head += 1
        var list = items[key]!
        let item = list.removeFirst()
        if list.isEmpty { items[key] = nil } else { items[key] = list; order.append(key) }
        if head > 64 && head * 2 > order.count { order.removeFirst(head); head = 0 }
        return item
    }
}

/// Serves the control socket's requests fairly, on its one event loop.
///
/// A connection's complete lines are not served as they are read: the connection is
/// queued here, and each turn serves one request of the next connection in line —
/// operators', admins' and root's connections first (their reserve), then round robin
/// over the other uids, so one uid with many connections gets no more turns than
/// another with one. A turn stops after ``PeerLimits/turnBudget`` of event-loop time;
/// the next starts ``PeerLimits/turnGap`` later, so reads, writes and the control loop's
/// answers are handled in between however long the queue. Requests in flight are
/// counted per uid against ``PeerLimits/inFlightPerUser``.
final class PeerScheduler: @unchecked Sendable {
    let eventLoop: EventLoop
    let limits: PeerLimits
    private var privileged = FairQueue<ScheduledPeer>()
    private var others = FairQueue<ScheduledPeer>()
    private var inFlight: [UInt32: Int] = [:]
    private var inTurn = false
    private var turnScheduled = false
    private var lastTurnEnd = NIODeadline.uptimeNanoseconds(0)

    init(eventLoop: EventLoop, limits: PeerLimits) { self.eventLoop = eventLoop; self.limits = limits }

    /// Requests in flight of `uid`, over all its connections.
    func inFlight(uid: UInt32) -> Int { inFlight[uid] ?? 0 }

    /// Whether `peer`'s uid may start another request.
    func mayStart(_ peer: ScheduledPeer) -> Bool { peer.privileged || inFlight(uid: peer.uid) < limits.inFlightPerUser }

    func started(uid: UInt32) { inFlight[uid, default: 0] += 1 }

    private var lastTrim = NIODeadline.uptimeNanoseconds(0)
    private var trimScheduled = false

    /// A connection closed: its buffers are free. Hands the freed heap back to the
    /// system (`malloc_trim(3)`, on a worker thread, 1 s after the last of a burst of
    /// closes and at most every 5 s), so the resident memory falls back after a flood
    /// instead of staying at its peak.
    func connectionClosed() {
        eventLoop.execute { [self] in
            guard !trimScheduled else { return }
            trimScheduled = true
            let due = Swift.max(NIODeadline.now() + .seconds(1), lastTrim + .seconds(5))
            eventLoop.scheduleTask(deadline: due) { [self] in
                trimScheduled = false
                lastTrim = NIODeadline.now()
                DispatchQueue.global(qos: .utility).async { _ = glibcMallocTrim(0) }
            }
        }
    }

    func finished(uid: UInt32) {
        let n = (inFlight[uid] ?? 1) - 1
        inFlight[uid] = n > 0 ? n : nil
        // The uid's other connections that waited for its budget may go on.
        if let waiting = waitingForBudget.removeValue(forKey: uid) { for p in waiting { ready(p) } }
    }

    /// Connections held back only by their uid's budget of requests in flight, by uid.
    private var waitingForBudget: [UInt32: [ScheduledPeer]] = [:]

    private func waitForBudget(_ peer: ScheduledPeer) {
        guard !(waitingForBudget[peer.uid]?.contains { $0 === peer } ?? false) else { return }
        waitingForBudget[peer.uid, default: []].append(peer)
    }

    /// `peer` may have something to serve: queue it (once) and see that a turn comes.
    /// Never serves anything itself (it is called from the middle of a read, a write or
    /// a reply): turns run as event-loop tasks of their own.
    func ready(_ peer: ScheduledPeer) {
        eventLoop.assertInEventLoop()
        guard !peer.queued else { return }
        guard mayStart(peer) else { return waitForBudget(peer) }
        guard peer.servable else { return }
        peer.queued = true
        if peer.privileged { privileged.push(peer.uid, peer) } else { others.push(peer.uid, peer) }
        if !inTurn { kick() }
    }

    /// Makes sure a turn comes: at once when the last one ended at least a gap ago,
    /// else a gap after it.
    private func kick() {
        guard !turnScheduled else { return }
        turnScheduled = true
        let due = lastTurnEnd + limits.turnGap
        if NIODeadline.now() >= due {
            eventLoop.execute { [self] in turnScheduled = false; turn() }
        } else {
            eventLoop.scheduleTask(deadline: due) { [self] in turnScheduled = false; turn() }
        }
    }

    private func turn() {
        inTurn = true
        let end = NIODeadline.now() + limits.turnBudget
        while NIODeadline.now() < end, let peer = privileged.pop() ?? others.pop() {
            peer.queued = false
            guard mayStart(peer) else { waitForBudget(peer); continue }
            guard peer.servable else { continue }
            peer.serveOne()
            if !mayStart(peer) {
                waitForBudget(peer)
            } else if peer.servable {
                peer.queued = true
                if peer.privileged { privileged.push(peer.uid, peer) } else { others.push(peer.uid, peer) }
            }
        }
        inTurn = false
        lastTurnEnd = NIODeadline.now()
        if !privileged.isEmpty || !others.isEmpty { kick() }
    }
}

/// One request in flight, released exactly once: when its reply (or error) is written,
/// or when its connection closes first.
final class FlightTicket: @unchecked Sendable {
    private var release: (() -> Void)?
    init(_ release: @escaping () -> Void) { self.release = release }
    func settle() { release?(); release = nil }
}

/// Splits a byte stream at `\n` on demand, refusing lines longer than `maxLength`
/// without keeping them: the excess is skipped and reported once per line.
struct LineFramer {
    let maxLength: Int
    private var discarding = 0

    init(maxLength: Int) { self.maxLength = maxLength }

    /// The next complete frame in `buffer` (consumed from it), or nil when it holds
    /// none yet.
    mutating func next(_ buffer: inout ByteBuffer) -> Frame? {
        let view = buffer.readableBytesView
        if let nl = view.firstIndex(of: UInt8(ascii: "\n")) {
            let length = nl - view.startIndex
            if discarding > 0 {
                buffer.moveReaderIndex(forwardBy: length + 1)
                defer { discarding = 0 }
                return .tooLong(discarding + length)
            }
            guard length <= maxLength else {
                buffer.moveReaderIndex(forwardBy: length + 1)
                return .tooLong(length)
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            return .line(line)
        }
        if buffer.readableBytes > maxLength || discarding > 0 {
            discarding += buffer.readableBytes
            buffer.moveReaderIndex(to: buffer.writerIndex)
        }
        return nil
    }
}
