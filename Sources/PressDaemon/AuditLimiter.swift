import Foundation
import Logging
import PressLog
import Synchronization

/// How many refused requests of peers without a role to change anything are written to
/// the audit trail (run log and journal): at most `perUid` per uid and `total` in all per
/// `interval`; the rest are counted, and once the interval is over one summary record per
/// uid carries the count. Requests of operators, admins and root are never held back, nor
/// are accepted requests (only those roles can make them). A peer that reconnects for
/// every request gains nothing: the budget is the uid's, not the connection's.
///
/// Pure and clocked from outside (`now`, seconds), so it is tested without waiting.
struct AuditLimiter {
    let perUid: Int
    let total: Int
    let interval: Double
    /// At most this many summaries of single uids per interval; the rest are summed in one.
    static let maxSummaries = 10

    private var windowStart: Double?
    private var used: [UInt32: Int] = [:]
    private var usedTotal = 0
    private var held: [UInt32: Held] = [:]

    private struct Held {
        var count = 0
        var pid: Int32
        var methods: [String: Int] = [:]
    }

    /// Refused requests not recorded for one uid (nil: several uids summed).
    struct Summary: Equatable {
        var uid: UInt32?
        var pid: Int32?
        var count: Int
        var text: String
    }

    init(perUid: Int = 10, total: Int = 100, interval: Double = 60) {
        self.perUid = perUid; self.total = total; self.interval = interval
    }

    /// Whether to record this refused request now; when not, it is counted for the summary.
    mutating func admit(uid: UInt32, pid: Int32, method: String, privileged: Bool, now: Double) -> Bool {
        if privileged { return true }
        roll(now)
        if used[uid, default: 0] < perUid && usedTotal < total {
            used[uid, default: 0] += 1
            usedTotal += 1
            return true
        }
        held[uid, default: Held(pid: pid)].count += 1
        held[uid]?.pid = pid
        held[uid]?.methods[method, default: 0] += 1
        return false
    }

    /// The summaries of what was held back, once its interval is over (or all of them,
    /// `final`, at shutdown); a new interval starts.
    mutating func summaries(now: Double, final: Bool = false) -> [Summary] {
        guard !held.isEmpty, final || now >= (windowStart ?? now) + interval else { return [] }
        windowStart = nil
        roll(now)
        let limits = "at most \(perUid) refused requests per uid and \(total) in all are recorded per \(Int(interval)) s"
        let sorted = held.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }
        held = [:]
        var out = sorted.prefix(Self.maxSummaries).map { uid, h in
            let methods = h.methods.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            return Summary(uid: uid, pid: h.pid, count: h.count,
                           text: "SUMMARY uid \(uid): \(h.count) refused requests not recorded (\(methods)); \(limits)")
        }
        let rest = sorted.dropFirst(Self.maxSummaries)
        if !rest.isEmpty {
            let n = rest.map(\.value.count).reduce(0, +)
            out.append(Summary(uid: nil, pid: nil, count: n, text: "SUMMARY \(rest.count) more uids: \(n) refused requests not recorded; \(limits)"))
        }
        return out
    }

    private mutating func roll(_ now: Double) {
        if let s = windowStart, now < s + interval { return }
        windowStart = now
        used = [:]
        usedTotal = 0
    }
}

/// The server's one ``AuditLimiter``, shared by every connection, and where its
/// summaries go: the journal and the audit trail, like the records they stand for.
final class AuditThrottle: Sendable {
    private let limiter: Mutex<AuditLimiter>

    init(_ limiter: AuditLimiter = AuditLimiter()) { self.limiter = Mutex(limiter) }

    func admit(uid: UInt32, pid: Int32, method: String, privileged: Bool) -> Bool {
        limiter.withLock { $0.admit(uid: uid, pid: pid, method: method, privileged: privileged, now: Self.now()) }
    }

    /// Writes the summaries that are due (all of them when `final`).
    func flush(final: Bool = false, logger: Logger, sink: @Sendable (RunLogEvent) -> Void) {
        let due = limiter.withLock { $0.summaries(now: Self.now(), final: final) }
        for s in due {
            logger.notice("audit: refused requests not recorded", metadata: [
                "uid": "\(s.uid.map(String.init) ?? "several")", "count": "\(s.count)"])
            sink(RunLogEvent(time: Date().timeIntervalSince1970, channel: "", kind: "request", detail: s.text,
                             uid: s.uid.map(Int.init), pid: s.pid.map(Int.init)))
        }
    }

    private static func now() -> Double { Double(monotonicNanos()) / 1e9 }
}
