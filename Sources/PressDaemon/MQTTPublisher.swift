import CMosquitto
import Foundation
import PressDrivers
import Logging
import PressCore
import Synchronization

/// Publishes the rig to an MQTT broker (`[mqtt]`) from a thread of its own, which owns
/// the libmosquitto handle (`mosquitto_connect`, `mosquitto_loop`, `mosquitto_publish`
/// are only ever called there).
///
/// The control loop never sees it: statuses and samples are read from the loop's
/// published snapshots (``SnapshotBox``), events arrive from the run-log writer once
/// they are committed (``offer(_:)`` takes a lock only to append). A slow or absent
/// broker therefore costs the loop nothing.
///
/// Delivery: events are QoS 1 and stay in an ``EventBacklog`` until the broker's PUBACK;
/// a lost connection puts the unacknowledged ones back, and they are sent again after
/// the reconnect (consumers dedupe by `seq`, the run-log row id). At most
/// `backlog_events` wait; beyond that the oldest are dropped from the MQTT backlog
/// (never from the run log) and one `missed` event says how many and which.
/// Reconnects back off from `reconnect_min_s` doubling to `reconnect_max_s`. The
/// client object is made afresh for every connection, so nothing is queued twice.
public final class MQTTPublisher: @unchecked Sendable {
    public let config: MQTTConfig
    public let mapping: MQTTMapping
    private let loop: ControlLoop
    private let logger: Logger
    private let incoming = Mutex<[SequencedEvent]>([])
    /// The publisher thread, once started.
    private var thread: DaemonThread?
    private var isStopping: Bool { thread?.isStopping ?? true }

    /// Messages handed to the broker connection since start (all topics).
    public let messagesPublished = Atomic<Int>(0)
    /// Whether the broker connection is up (CONNACK received).
    public let isConnected = Atomic<Bool>(false)

    // Owned by the publisher thread (callbacks run there too, inside mosquitto_loop).
    private var mosq: OpaquePointer?
    private var connected = false
    private var lost = false
    private var lastAcked: Int32 = -1
    private var backlog: EventBacklog
    private var lastStatus: [MQTTMapping.StatusKey?]
    private var lastStatusAt: [UInt64]
    private var nextSample: UInt64 = 0
    /// When the statuses are next compared with the loop's snapshot.
    private var nextCheck: UInt64 = 0
    /// How often the statuses are compared with the snapshot (a change is published
    /// within this time), ns.
    static let checkInterval: UInt64 = 100_000_000
    private var failures = 0
    private var lastFailureLog: UInt64 = 0

    /// Most events handed to libmosquitto and not yet acknowledged.
    static let maxInflight = 1000

    private static let libraryReady: Bool = { mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue }()

    public init(config: MQTTConfig, loop: ControlLoop, channels: [String], version: String, logger: Logger) {
        self.config = config
        self.mapping = MQTTMapping(config: config, version: version, channels: channels)
        self.loop = loop
        self.logger = logger
        backlog = EventBacklog(bound: config.backlogEvents)
        lastStatus = channels.map { _ in nil }
        lastStatusAt = channels.map { _ in 0 }
    }

    /// Events the run log has committed, with their row ids. Never blocks for long:
    /// a lock held only to append. Called from the run-log writer's thread.
    public func offer(_ events: [SequencedEvent]) {
        guard !events.isEmpty else { return }
        incoming.withLock { $0.append(contentsOf: events) }
    }

    public func start() {
        _ = Self.libraryReady
        let t = DaemonThread(ThreadName("mqtt")) { [self] _ in run() }
        thread = t
        t.start()
    }

    /// Stops after publishing what is waiting (up to 3 s) and a retained `offline`
    /// state, then disconnects cleanly (so the broker does not send the last will).
    /// Waits at most 6 s: a connect to a broker host that does not answer blocks in
    /// the kernel's TCP timeout, and pressd's shutdown must not wait for that.
    public func stop() {
        guard let t = thread else { return }
        if !t.stop(timeout: 6) {
            logger.warning("MQTT publisher still connecting to \(config.host):\(config.port) at stop; not waiting for it")
        }
    }

    // MARK: - The publisher thread

    private func run() {
        var backoff = config.reconnectMin
        var nextAttempt: UInt64 = 0
        while !isStopping {
            takeIncoming()
            let now = monotonicNanos()
            if mosq == nil {
                if now >= nextAttempt {
                    if !connect() {
                        nextAttempt = now + UInt64(backoff * 1e9)
                        backoff = min(backoff * 2, config.reconnectMax)
                    }
                } else {
                    usleep(UInt32(min(Double(nextAttempt - now) / 1e3, 100_000)))
                }
                continue
            }
            // Sleeps in poll until the broker sends something or the next status check
            // or sample is due: a few wake-ups a second, not a busy loop beside the
            // control thread.
            let wait = connected ? Int32(max(1, min(Double(nextCheck &- min(nextCheck, now)) / 1e6, 100))) : 100
            let rc = mosquitto_loop(mosq, wait, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue || lost {
                let wasConnected = connected
                teardown()
                if wasConnected {
                    logger.warning("MQTT broker connection lost; reconnecting", metadata: ["broker": "\(config.host):\(config.port)", "error": "\(Self.describe(rc))", "waiting_events": "\(backlog.count)"])
                    backoff = config.reconnectMin
                } else {
                    noteFailure("connection refused or closed: \(Self.describe(rc))")
                }
                nextAttempt = monotonicNanos() + UInt64(backoff * 1e9)
                backoff = min(backoff * 2, config.reconnectMax)
                continue
            }
            if connected {
                backoff = config.reconnectMin
                publishDue(now: monotonicNanos())
            }
        }
        finish()
    }

    /// Makes a client, sets the will, credentials and TLS, and starts the TCP
    /// connection (`mosquitto_connect`, blocking on this thread only).
    private func connect() -> Bool {
        guard let m = mosquitto_new(config.clientID, true, Unmanaged.passUnretained(self).toOpaque()) else {
            noteFailure("mosquitto_new failed")
            return false
        }
        mosquitto_connect_callback_set(m) { _, ud, rc in MQTTPublisher.from(ud).onConnect(rc) }
        mosquitto_disconnect_callback_set(m) { _, ud, rc in MQTTPublisher.from(ud).onDisconnect(rc) }
        mosquitto_publish_callback_set(m) { _, ud, mid in MQTTPublisher.from(ud).onPublish(mid) }
        mosquitto_max_inflight_messages_set(m, UInt32(Self.maxInflight))
        let will = mapping.lastWill()
        _ = will.payload.withUnsafeBytes { mosquitto_will_set(m, will.topic, Int32(will.payload.count), $0.baseAddress, will.qos, will.retain) }
        if let u = config.username { mosquitto_username_pw_set(m, u, config.password) }
        if let ca = config.caFile {
            let rc = mosquitto_tls_set(m, ca, nil, config.certFile, config.keyFile, nil)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                noteFailure("TLS setup (tls_ca_file \(ca)): \(Self.describe(rc))")
                mosquitto_destroy(m)
                return false
            }
        }
        let rc = mosquitto_connect(m, config.host, Int32(config.port), Int32(config.keepalive))
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            noteFailure(Self.describe(rc))
            mosquitto_destroy(m)
            return false
        }
        mosq = m
        lost = false
        return true
    }

    private func noteFailure(_ why: String) {
        failures += 1
        let now = monotonicNanos()
        if failures == 1 || now - lastFailureLog > 60_000_000_000 {
            lastFailureLog = now
            logger.error("MQTT broker not reachable; publishing resumes when it is (events are kept, up to \(config.backlogEvents))",
                         metadata: ["broker": "\(config.host):\(config.port)", "error": "\(why)", "attempts": "\(failures)", "waiting_events": "\(backlog.count)"])
        }
    }

    private func teardown() {
        if let m = mosq { mosquitto_destroy(m) }
        mosq = nil
        connected = false
        isConnected.store(false, ordering: .releasing)
        backlog.connectionLost()
    }

    private static func from(_ ud: UnsafeMutableRawPointer?) -> MQTTPublisher {
        Unmanaged<MQTTPublisher>.fromOpaque(ud!).takeUnretainedValue()
    }

    private func onConnect(_ rc: Int32) {
        guard rc == 0 else {
            noteFailure("broker refused the connection: \(String(cString: mosquitto_connack_string(rc)))")
            lost = true
            return
        }
        connected = true
        isConnected.store(true, ordering: .releasing)
        logger.notice("MQTT connected", metadata: ["broker": "\(config.host):\(config.port)", "topic": "\(config.rigTopic)", "waiting_events": "\(backlog.count)"])
        failures = 0
        send(mapping.state(online: true, reason: "started", time: Date().timeIntervalSince1970))
        // Every status at once: the retained values may be from before the outage.
        for i in lastStatus.indices { lastStatus[i] = nil }
        nextCheck = 0
    }

    private func onDisconnect(_ rc: Int32) { lost = true }

    private func onPublish(_ mid: Int32) {
        backlog.acknowledged(mid: mid)
        lastAcked = mid
    }

    @discardableResult
    private func send(_ msg: MQTTMessage) -> Int32? {
        guard let m = mosq else { return nil }
        var mid: Int32 = 0
        let rc = msg.payload.withUnsafeBytes {
            mosquitto_publish(m, &mid, msg.topic, Int32(msg.payload.count), $0.baseAddress, msg.qos, msg.retain)
        }
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { return nil }
        messagesPublished.add(1, ordering: .relaxed)
        return mid
    }

    private func takeIncoming() {
        let new = incoming.withLock { q -> [SequencedEvent] in defer { q.removeAll(keepingCapacity: true) }; return q }
        if !new.isEmpty { backlog.add(new) }
    }

    /// Statuses that changed or are due, samples that are due, waiting events.
    private func publishDue(now: UInt64) {
        let sampleDue = config.sampleRate > 0 && now >= nextSample
        if now >= nextCheck || sampleDue, let snap = loop.snapshots.latest() {
            nextCheck = now + Self.checkInterval
            if config.sampleRate > 0, nextSample != 0 { nextCheck = min(nextCheck, max(nextSample, now + 1_000_000)) }
            let t = loop.epoch + snap.time
            for (i, ch) in snap.channels.enumerated() where i < lastStatus.count {
                let key = MQTTMapping.statusKey(ch)
                if key != lastStatus[i] || Double(now &- lastStatusAt[i]) / 1e9 >= config.statusInterval {
                    if send(mapping.status(ch, time: t)) != nil { lastStatus[i] = key; lastStatusAt[i] = now }
                }
            }
            if sampleDue {
                for ch in snap.channels { send(mapping.sample(ch, time: t)) }
                let period = UInt64(1e9 / config.sampleRate)
                nextSample = nextSample == 0 || now - nextSample > period ? now + period : nextSample + period
                nextCheck = min(nextCheck, nextSample)
            }
        }
        if let m = backlog.takeMissed() {
            if send(mapping.missed(m, time: Date().timeIntervalSince1970)) == nil {
                backlog.putBack(missed: m) // reported on the next try
            }
            logger.warning("MQTT backlog bound reached: events not published (they are in the run log)", metadata: ["missed": "\(m.count)", "bound": "\(config.backlogEvents)"])
        }
        while backlog.inflight.count < Self.maxInflight {
            let batch = backlog.next(max: Self.maxInflight - backlog.inflight.count)
            if batch.isEmpty { break }
            for (k, e) in batch.enumerated() {
                guard let mid = send(mapping.event(e)) else {
                    backlog.unsent(Array(batch[k...]))
                    return
                }
                backlog.sent(e, mid: mid)
            }
        }
    }

    /// On stop: publish what waits (up to 3 s), then a retained `offline`, then a
    /// clean disconnect.
    private func finish() {
        guard mosq != nil, connected else {
            if mosq != nil { teardown() }
            return
        }
        let deadline = monotonicNanos() + 3_000_000_000
        while monotonicNanos() < deadline {
            takeIncoming()
            publishDue(now: monotonicNanos())
            if backlog.count == 0 { break }
            if mosquitto_loop(mosq, 20, 1) != MOSQ_ERR_SUCCESS.rawValue || lost { break }
        }
        if connected, let mid = send(mapping.state(online: false, reason: "stopped", time: Date().timeIntervalSince1970)) {
            let until = monotonicNanos() + 1_000_000_000
            while lastAcked != mid, monotonicNanos() < until, mosquitto_loop(mosq, 20, 1) == MOSQ_ERR_SUCCESS.rawValue, !lost {}
        }
        if let m = mosq {
            mosquitto_disconnect(m)
            _ = mosquitto_loop(m, 20, 1)
        }
        if backlog.count > 0 {
            logger.warning("MQTT: events not published at stop (they are in the run log)", metadata: ["events": "\(backlog.count)"])
        }
        teardown()
    }

    static func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }
}
