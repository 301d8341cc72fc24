import Foundation
import PressCore
import PressLog
import PressProtocol

/// One message for the broker: topic, JSON payload, QoS and retain flag.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int32
    public var retain: Bool
    public var text: String { String(decoding: payload, as: UTF8.self) }
}

/// The topic layout and the payloads pressd publishes (docs/protocol.md, "MQTT").
/// Pure: no I/O, so the mapping is tested without a broker. Text from users (an
/// event's detail, a program's name) goes through ``SafeText/escaped(_:)``.
///
/// - `{prefix}/{site}/{rig}/state` — `online`/`offline`, retained, QoS 1 (also the last will)
/// - `{prefix}/{site}/{rig}/events` — daemon-wide events and `missed` notices, QoS 1
/// - `{prefix}/{site}/{rig}/{channel}/status` — retained, QoS 1
/// - `{prefix}/{site}/{rig}/{channel}/samples` — QoS 0, not retained
/// - `{prefix}/{site}/{rig}/{channel}/events` — the channel's run-log events, QoS 1
public struct MQTTMapping: Sendable {
    public let config: MQTTConfig
    public let version: String
    public let channels: [String]

    public init(config: MQTTConfig, version: String, channels: [String]) {
        self.config = config; self.version = version; self.channels = channels
    }

    public var stateTopic: String { config.rigTopic + "/state" }
    public func statusTopic(_ channel: String) -> String { "\(config.rigTopic)/\(channel)/status" }
    public func samplesTopic(_ channel: String) -> String { "\(config.rigTopic)/\(channel)/samples" }
    /// A channel's events topic, or the rig's for daemon-wide events (channel "").
    public func eventsTopic(_ channel: String) -> String { channel.isEmpty ? config.rigTopic + "/events" : "\(config.rigTopic)/\(channel)/events" }

    struct StatePayload: Encodable {
        var state: String
        var reason: String
        var site: String
        var rig: String
        var version: String
        var channels: [String]
        var time_unix: Double?
    }

    /// The rig's retained state: `online` on connect, `offline` on a clean stop, and the
    /// last will (`offline`, reason `connection lost`, no time: the broker sends it).
    public func state(online: Bool, reason: String, time: Double?) -> MQTTMessage {
        let p = StatePayload(state: online ? "online" : "offline", reason: reason, site: config.site, rig: config.rig,
                             version: version, channels: channels, time_unix: time.map(round3))
        return MQTTMessage(topic: stateTopic, payload: Self.encode(p), qos: 1, retain: true)
    }

    public func lastWill() -> MQTTMessage { state(online: false, reason: "connection lost", time: nil) }

    struct StatusPayload: Encodable, Equatable {
        var channel: String
        var mode: String
        var setpoint_mpa: Double?
        var pressure_mpa: Double?
        var force_n: Double?
        var output: Double
        var in_band: Bool
        var stale: Bool
        var faults: [String]
        var program: String?
        var time_unix: Double
    }

    /// What decides whether the retained status must be republished at once.
    public struct StatusKey: Equatable, Sendable {
        var mode: String
        var target: Double?
        var faults: [String]
        var inBand: Bool
        var program: String?
    }

    public static func statusKey(_ s: ChannelState) -> StatusKey {
        StatusKey(mode: s.mode.rawValue, target: s.target, faults: s.faults.map(\.code.rawValue), inBand: s.inBand, program: s.program?.program.name)
    }

    /// A channel's retained status at unix time `time`.
    public func status(_ s: ChannelState, time: Double) -> MQTTMessage {
        let p = StatusPayload(channel: s.name, mode: s.mode.rawValue, setpoint_mpa: s.target.map(Self.r4), pressure_mpa: s.pressure.map(Self.r4),
                              force_n: s.force.map(round3), output: round3(s.output), in_band: s.inBand, stale: s.stale,
                              faults: s.faults.map(\.code.rawValue), program: s.program.map { SafeText.escaped($0.program.name) }, time_unix: round3(time))
        return MQTTMessage(topic: statusTopic(s.name), payload: Self.encode(p), qos: 1, retain: true)
    }

    struct SamplePayload: Encodable {
        var time_unix: Double
        var mode: String
        var setpoint_mpa: Double?
        var pressure_mpa: Double?
        var force_n: Double?
        var output: Double
        /// Every other measured signal by its key, from the signal table.
        var signals: [String: Double]?
    }

    /// One sample of a channel (QoS 0, not retained).
    public func sample(_ s: ChannelState, time: Double) -> MQTTMessage {
        let p = SamplePayload(time_unix: round3(time), mode: s.mode.rawValue, setpoint_mpa: s.workingSetpoint.map(Self.r4),
                              pressure_mpa: s.pressure.map(Self.r4), force_n: s.force.map(round3), output: round3(s.output),
                              signals: Self.signals(s.readings))
        return MQTTMessage(topic: samplesTopic(s.name), payload: Self.encode(p), qos: 0, retain: false)
    }

    /// The measured signals other than the force, rounded to what carries information.
    static func signals(_ r: ChannelReadings) -> [String: Double]? {
        var out: [String: Double] = [:]
        for (signal, sample) in r.signals.present where signal != .force {
            let d = signal.descriptor, f = pow(10, Double(d.decimals))
            out[d.key] = (sample.value * f).rounded() / f
        }
        return out.isEmpty ? nil : out
    }

    struct EventPayload: Encodable {
        var seq: Int64
        var time_unix: Double
        var channel: String
        var kind: String
        var detail: String
        var uid: Int?
        var pid: Int?
    }

    /// A run-log event; `seq` is its row id in the run log, so consumers dedupe QoS 1
    /// redeliveries by it (and find it with `pressctl log events`).
    public func event(_ e: SequencedEvent) -> MQTTMessage {
        let p = EventPayload(seq: e.seq, time_unix: e.event.time, channel: e.event.channel, kind: e.event.kind, detail: SafeText.escaped(e.event.detail),
                             uid: e.event.uid, pid: e.event.pid)
        return MQTTMessage(topic: eventsTopic(e.event.channel), payload: Self.encode(p), qos: 1, retain: false)
    }

    struct MissedPayload: Encodable {
        var kind = "missed"
        var missed: Int
        var first_seq: Int64
        var last_seq: Int64
        var bound: Int
        var detail: String
        var time_unix: Double
    }

    /// Published on the rig's events topic when the backlog bound dropped events.
    public func missed(_ m: MissedEvents, time: Double) -> MQTTMessage {
        let p = MissedPayload(missed: m.count, first_seq: m.firstSeq, last_seq: m.lastSeq, bound: config.backlogEvents,
                              detail: "\(m.count) events (seq \(m.firstSeq)…\(m.lastSeq)) were not published: more than \(config.backlogEvents) waited for the broker; they are in the run log (pressctl log events)",
                              time_unix: round3(time))
        return MQTTMessage(topic: eventsTopic(""), payload: Self.encode(p), qos: 1, retain: false)
    }

    static func r4(_ v: Double) -> Double { (v * 10_000).rounded() / 10_000 }

    static func encode<T: Encodable>(_ v: T) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(e.encode(v))) ?? Array("{}".utf8)
    }
}

/// A run-log event with its row id.
public struct SequencedEvent: Sendable, Equatable {
    public var seq: Int64
    public var event: RunLogEvent
    public init(seq: Int64, event: RunLogEvent) { self.seq = seq; self.event = event }
}

/// Events dropped by the backlog bound, not yet reported.
public struct MissedEvents: Sendable, Equatable {
    public var count = 0
    public var firstSeq: Int64 = 0
    public var lastSeq: Int64 = 0
}

/// The events waiting for the broker, in run-log order, with the ones handed to the
/// MQTT client but not yet acknowledged (PUBACK).
///
/// Bounded: at most `bound` events are held, waiting and in flight together. When a
/// new event would exceed it, the oldest *waiting* event is dropped and counted in
/// ``missed``, which the publisher reports as one `missed` event once connected. An
/// event leaves only when the broker acknowledged it; on a lost connection every
/// unacknowledged event goes back to the front, so it is sent again (a QoS 1
/// redelivery: consumers dedupe by `seq`).
public struct EventBacklog: Sendable {
    public let bound: Int
    public private(set) var waiting: [SequencedEvent] = []
    /// Handed to the client, by message id.
    public private(set) var inflight: [Int32: SequencedEvent] = [:]
    public private(set) var missed = MissedEvents()

    public init(bound: Int) { self.bound = bound }

    public var count: Int { waiting.count + inflight.count }

    public mutating func add(_ events: [SequencedEvent]) {
        waiting.append(contentsOf: events)
        let over = count - bound
        guard over > 0 else { return }
        let drop = min(over, waiting.count)
        if missed.count == 0 { missed.firstSeq = waiting[0].seq }
        missed.count += drop
        missed.lastSeq = waiting[drop - 1].seq
        waiting.removeFirst(drop)
    }

    /// Takes up to `max` waiting events to send; pair each with its message id via ``sent(_:mid:)``.
    public mutating func next(max: Int) -> [SequencedEvent] {
        let n = Swift.min(max, waiting.count)
        defer { waiting.removeFirst(n) }
        return Array(waiting.prefix(n))
    }

    /// The client took `e` with message id `mid`.
    public mutating func sent(_ e: SequencedEvent, mid: Int32) { inflight[mid] = e }

    /// The client could not take `e`: it waits again, first.
    public mutating func unsent(_ e: [SequencedEvent]) { waiting.insert(contentsOf: e, at: 0) }

    /// The broker acknowledged message `mid`.
    public mutating func acknowledged(mid: Int32) { inflight[mid] = nil }

    /// The connection is gone: everything unacknowledged waits again, in seq order.
    public mutating func connectionLost() {
        waiting.insert(contentsOf: inflight.values.sorted { $0.seq < $1.seq }, at: 0)
        inflight = [:]
    }

    /// A report that could not be sent: counted again, merged with any newer drops.
    public mutating func putBack(missed m: MissedEvents) {
        if missed.count == 0 { missed = m } else { missed.count += m.count; missed.firstSeq = m.firstSeq }
    }

    /// Takes the count of dropped events for reporting.
    public mutating func takeMissed() -> MissedEvents? {
        guard missed.count > 0 else { return nil }
        defer { missed = MissedEvents() }
        return missed
    }
}
