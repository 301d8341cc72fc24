import Foundation
import Testing
import PressCore
import PressLog
@testable import PressDaemon

/// The `[mqtt]` table, the topic layout, the payloads and the backlog bound, without a
/// broker (the broker tests are in MQTTBrokerTests.swift).
@Suite("MQTT mapping, config and backlog (no broker)")
struct MQTTMappingTests {
    static let table = "\n[mqtt]\nhost = \"127.0.0.1\"\nport = 18830\nsite = \"lab1\"\nrig = \"rig7\"\nsample_rate_hz = 5\nbacklog_events = 10\n"

    func json(_ m: MQTTMessage) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(m.payload)) as? [String: Any])
    }

    @Test("[mqtt] is parsed; errors name file, line and key")
    func config() throws {
        let c = try #require(try DaemonConfig.parse(try defaultConfigText() + Self.table, file: "t.toml").mqtt)
        #expect(c.host == "127.0.0.1" && c.port == 18830 && c.site == "lab1" && c.rig == "rig7")
        #expect(c.sampleRate == 5 && c.backlogEvents == 10 && c.clientID == "pressd-lab1-rig7" && c.prefix == "pressd")
        #expect(try DaemonConfig.parse(try defaultConfigText(), file: "t.toml").mqtt == nil)

        func expectError(_ extra: String, key: String, contains: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let text = try defaultConfigText() + extra
            do {
                _ = try DaemonConfig.parse(text, file: "/etc/pressd/t.toml")
                Issue.record("accepted: \(extra)", sourceLocation: sourceLocation)
            } catch {
                #expect(error.key == key, "\(error)", sourceLocation: sourceLocation)
                // The key's own line in the [mqtt] table, else the table's header line.
                let keyName = String(key.split(separator: ".").last!)
                let header = try! #require(text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0 == "[mqtt]" }) + 1
                let below = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(header).joined(separator: "\n")
                let expected = line(of: keyName + " =", in: below).map { $0 + header } ?? header
                #expect(error.line == expected, "\(error)", sourceLocation: sourceLocation)
                #expect(error.description.hasPrefix("/etc/pressd/t.toml:\(expected): \(key): "), "\(error)", sourceLocation: sourceLocation)
                #expect(error.message.contains(contains), "\(error)", sourceLocation: sourceLocation)
            }
        }
        try expectError("\n[mqtt]\nsite = \"x\"\n", key: "mqtt.host", contains: "is required")
        try expectError("\n[mqtt]\nhost = \"b\"\nsite = \"a/b\"\n", key: "mqtt.site", contains: "one MQTT topic level")
        try expectError("\n[mqtt]\nhost = \"b\"\nprefix = \"lab/#\"\n", key: "mqtt.prefix", contains: "without '+', '#'")
        try expectError("\n[mqtt]\nhost = \"b\"\nport = 70000\n", key: "mqtt.port", contains: "1 … 65535")
        try expectError("\n[mqtt]\nhost = \"b\"\nsample_rate_hz = -1\n", key: "mqtt.sample_rate_hz", contains: "≥ 0")
        try expectError("\n[mqtt]\nhost = \"b\"\npassword = \"x\"\n", key: "mqtt.username", contains: "required when a password")
        try expectError("\n[mqtt]\nhost = \"b\"\ntls_ca_file = \"/nonexistent/ca.pem\"\n", key: "mqtt.tls_ca_file", contains: "cannot read")
        try expectError("\n[mqtt]\nhost = \"b\"\ntls_ca_file = \"/etc/hostname\"\ntls_cert_file = \"/etc/hostname\"\n", key: "mqtt.tls_key_file", contains: "go together")
        try expectError("\n[mqtt]\nhost = \"b\"\nqos = 2\n", key: "mqtt.qos", contains: "unknown key")
        // TLS moves the default port to 8883.
        let tls = try #require(try DaemonConfig.parse(try defaultConfigText() + "\n[mqtt]\nhost = \"b\"\ntls_ca_file = \"/etc/hostname\"\n", file: "t.toml").mqtt)
        #expect(tls.port == 8883 && tls.caFile == "/etc/hostname")
    }

    @Test("topics {prefix}/{site}/{rig}/{channel}/status|samples|events and /state; payloads, QoS and retain per topic")
    func mapping() throws {
        let cfg = try DaemonConfig.parse(try defaultConfigText() + Self.table, file: "t.toml")
        let m = MQTTMapping(config: try #require(cfg.mqtt), version: "9.9", channels: ["A", "B"])
        var core = RigBuilder.simulated(cfg)
        _ = core.apply(.set(channel: 0, mpa: 5, ramp: nil))
        core.tick(now: 0.01)
        let a = core.states[0]

        let status = m.status(a, time: 1_700_000_000.1234)
        #expect(status.topic == "pressd/lab1/rig7/A/status" && status.qos == 1 && status.retain)
        let s = try json(status)
        #expect(s["channel"] as? String == "A" && s["mode"] as? String == a.mode.rawValue)
        #expect(s["setpoint_mpa"] as? Double == 5 && s["time_unix"] as? Double == 1_700_000_000.123)
        #expect(s["faults"] as? [String] == [] && s["in_band"] is Bool && s["output"] is Double)

        let sample = m.sample(a, time: 1_700_000_000.5)
        #expect(sample.topic == "pressd/lab1/rig7/A/samples" && sample.qos == 0 && !sample.retain)
        #expect(try json(sample)["pressure_mpa"] is Double && json(sample)["time_unix"] as? Double == 1_700_000_000.5)

        let ev = m.event(SequencedEvent(seq: 42, event: RunLogEvent(time: 1_700_000_001.25, channel: "B", kind: "setpoint", detail: "5 MPa", uid: 1000, pid: 77)))
        #expect(ev.topic == "pressd/lab1/rig7/B/events" && ev.qos == 1 && !ev.retain)
        let e = try json(ev)
        #expect(e["seq"] as? Int == 42 && e["kind"] as? String == "setpoint" && e["detail"] as? String == "5 MPa")
        #expect(e["uid"] as? Int == 1000 && e["pid"] as? Int == 77 && e["channel"] as? String == "B" && e["time_unix"] as? Double == 1_700_000_001.25)
        // Daemon-wide events go to the rig's events topic.
        #expect(m.event(SequencedEvent(seq: 1, event: RunLogEvent(time: 0, channel: "", kind: "daemon", detail: "x"))).topic == "pressd/lab1/rig7/events")

        let online = m.state(online: true, reason: "started", time: 5)
        #expect(online.topic == "pressd/lab1/rig7/state" && online.qos == 1 && online.retain)
        #expect(try json(online)["state"] as? String == "online" && json(online)["channels"] as? [String] == ["A", "B"])
        let will = m.lastWill()
        #expect(will.topic == online.topic && will.retain && will.qos == 1)
        #expect(try json(will)["state"] as? String == "offline" && json(will)["reason"] as? String == "connection lost")

        let missed = m.missed(MissedEvents(count: 3, firstSeq: 10, lastSeq: 12), time: 7)
        #expect(missed.topic == "pressd/lab1/rig7/events" && missed.qos == 1)
        let mj = try json(missed)
        #expect(mj["kind"] as? String == "missed" && mj["missed"] as? Int == 3 && mj["first_seq"] as? Int == 10 && mj["last_seq"] as? Int == 12 && mj["bound"] as? Int == 10)
        #expect(mj["seq"] == nil) // not a run-log event

        // A prefix of several levels.
        var c2 = try #require(cfg.mqtt)
        c2.prefix = "acme/batt"
        #expect(MQTTMapping(config: c2, version: "1", channels: ["A"]).statusTopic("A") == "acme/batt/lab1/rig7/A/status")
    }

    func events(_ r: ClosedRange<Int64>) -> [SequencedEvent] {
        r.map { SequencedEvent(seq: $0, event: RunLogEvent(time: Double($0), channel: "A", kind: "k", detail: "\($0)")) }
    }

    @Test("the backlog holds at most its bound, drops the oldest waiting events and counts them; unacknowledged events go back first")
    func backlog() {
        var b = EventBacklog(bound: 10)
        b.add(events(1...4))
        let sent = b.next(max: 3)
        #expect(sent.map(\.seq) == [1, 2, 3])
        for (i, e) in sent.enumerated() { b.sent(e, mid: Int32(100 + i)) }
        b.acknowledged(mid: 100) // seq 1 delivered
        #expect(b.count == 3)
        // Broker gone: 2 and 3 were not acknowledged; 20 more arrive meanwhile.
        b.connectionLost()
        #expect(b.waiting.map(\.seq) == [2, 3, 4] && b.inflight.isEmpty)
        b.add(events(5...24))
        #expect(b.count == 10)
        #expect(b.waiting.map(\.seq) == Array(15...24))
        let m = b.takeMissed()
        #expect(m == MissedEvents(count: 13, firstSeq: 2, lastSeq: 14))
        #expect(b.takeMissed() == nil)
        // The bound counts in-flight events too; in-flight ones are never dropped.
        for e in b.next(max: 10) { b.sent(e, mid: Int32(e.seq)) }
        b.add(events(25...26))
        #expect(b.count == 10 && b.inflight.count == 10 && b.waiting.isEmpty)
        #expect(b.takeMissed() == MissedEvents(count: 2, firstSeq: 25, lastSeq: 26))
        // A report that could not be sent is kept.
        b.putBack(missed: MissedEvents(count: 2, firstSeq: 25, lastSeq: 26))
        #expect(b.takeMissed()?.count == 2)
        // Unsent events wait again at the front.
        var c = EventBacklog(bound: 5)
        c.add(events(1...3))
        let batch = c.next(max: 3)
        c.unsent(Array(batch[1...]))
        #expect(c.waiting.map(\.seq) == [2, 3])
    }
}
