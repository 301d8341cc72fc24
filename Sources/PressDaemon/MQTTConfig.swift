import Foundation

/// The opt-in MQTT publisher's settings (`[mqtt]`). Publishing is read-only: pressd
/// subscribes to nothing and takes no commands over MQTT.
public struct MQTTConfig: Sendable, Equatable {
    /// The broker's host name or address.
    public var host: String
    /// The broker's port (default 1883, or 8883 when a CA file is given).
    public var port: Int
    /// First topic level(s); may contain `/` (e.g. `"lab/pressd"`).
    public var prefix = "pressd"
    /// The site (lab, building) and the rig's name: the second and third topic levels.
    public var site: String
    public var rig: String
    /// MQTT client id (default `pressd-SITE-RIG`); must be unique on the broker.
    public var clientID: String
    public var username: String?
    public var password: String?
    /// TLS: the CA certificate(s) that signed the broker's certificate; setting it turns TLS on.
    public var caFile: String?
    /// TLS client certificate and key (both or neither), for brokers that want them.
    public var certFile: String?
    public var keyFile: String?
    /// Samples published per channel per second (QoS 0); 0 publishes none.
    public var sampleRate = 1.0
    /// The retained status is republished at least this often, s (and at once on a
    /// change of mode, setpoint or faults).
    public var statusInterval = 10.0
    /// MQTT keepalive, s: the broker publishes the last will this long (×1.5) after a
    /// silent network failure; at once when the TCP connection closes.
    public var keepalive = 30
    /// Events kept for the broker while it is unreachable; older ones beyond this are
    /// dropped from the MQTT backlog (never from the run log) and counted in a
    /// `missed` event.
    public var backlogEvents = 10_000
    /// Reconnect backoff: first wait and longest wait, s (doubling in between).
    public var reconnectMin = 0.5
    public var reconnectMax = 30.0

    /// The rig-level topic root: `{prefix}/{site}/{rig}`.
    public var rigTopic: String { "\(prefix)/\(site)/\(rig)" }

    public init(host: String, port: Int = 1883, site: String, rig: String) {
        self.host = host; self.port = port; self.site = site; self.rig = rig
        clientID = "pressd-\(site)-\(rig)"
    }

    /// Reads `[mqtt]`. Every error names the file, line and key.
    static func parse(_ m: TableReader) throws(ConfigError) -> MQTTConfig {
        guard let host = try m.string("host"), !host.isEmpty else {
            throw m.error("host", "is required: the broker's host name or address (e.g. \"broker.lab\" or \"127.0.0.1\")")
        }
        let site = try m.string("site") ?? "lab"
        let rig = try m.string("rig") ?? Self.hostName()
        for (key, v) in [("site", site), ("rig", rig)] {
            guard !v.isEmpty, v.count <= 64, v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                throw m.error(key, "'\(v)' must be 1…64 letters, digits, '_', '-' or '.' (it is one MQTT topic level)")
            }
        }
        var c = MQTTConfig(host: host, site: site, rig: rig)
        c.caFile = try m.string("tls_ca_file").flatMap { $0.isEmpty ? nil : $0 }
        if let p = try m.int("port") {
            guard (1...65535).contains(p) else { throw m.error("port", "must be 1 … 65535") }
            c.port = p
        } else if c.caFile != nil { c.port = 8883 }
        if let p = try m.string("prefix") {
            let levels = p.split(separator: "/", omittingEmptySubsequences: false)
            guard !p.isEmpty, levels.allSatisfy({ !$0.isEmpty && !$0.contains("+") && !$0.contains("#") && !$0.contains("\u{0}") }) else {
                throw m.error("prefix", "'\(p)' must be one or more non-empty topic levels separated by '/', without '+', '#' or a leading or trailing '/'")
            }
            c.prefix = p
        }
        c.clientID = try m.string("client_id") ?? "pressd-\(site)-\(rig)"
        guard !c.clientID.isEmpty, c.clientID.utf8.count <= 128 else { throw m.error("client_id", "must be 1 … 128 bytes") }
        c.username = try m.string("username").flatMap { $0.isEmpty ? nil : $0 }
        c.password = try m.string("password")
        if let f = try m.string("password_file") {
            guard c.password == nil else { throw m.error("password_file", "give password or password_file, not both") }
            do { c.password = try String(contentsOfFile: f, encoding: .utf8).trimmingCharacters(in: .newlines) }
            catch { throw m.error("password_file", "cannot read '\(f)': \(error.localizedDescription)") }
        }
        if c.password != nil && c.username == nil { throw m.error("username", "is required when a password is given") }
        c.certFile = try m.string("tls_cert_file").flatMap { $0.isEmpty ? nil : $0 }
        c.keyFile = try m.string("tls_key_file").flatMap { $0.isEmpty ? nil : $0 }
        if (c.certFile == nil) != (c.keyFile == nil) {
            throw m.error(c.certFile == nil ? "tls_cert_file" : "tls_key_file", "tls_cert_file and tls_key_file go together")
        }
        if c.certFile != nil && c.caFile == nil { throw m.error("tls_ca_file", "is required for a TLS client certificate") }
        for (key, f) in [("tls_ca_file", c.caFile), ("tls_cert_file", c.certFile), ("tls_key_file", c.keyFile)] {
            if let f, !FileManager.default.isReadableFile(atPath: f) { throw m.error(key, "cannot read '\(f)'") }
        }
        c.sampleRate = try m.nonNegative("sample_rate_hz", default: c.sampleRate)
        guard c.sampleRate <= 100 else { throw m.error("sample_rate_hz", "must be ≤ 100") }
        c.statusInterval = try m.positive("status_interval_s", default: c.statusInterval)
        if let k = try m.int("keepalive_s") {
            guard (5...3600).contains(k) else { throw m.error("keepalive_s", "must be 5 … 3600") }
            c.keepalive = k
        }
        if let b = try m.int("backlog_events") {
            guard (1...1_000_000).contains(b) else { throw m.error("backlog_events", "must be 1 … 1000000") }
            c.backlogEvents = b
        }
        c.reconnectMin = try m.positive("reconnect_min_s", default: c.reconnectMin)
        c.reconnectMax = try m.positive("reconnect_max_s", default: c.reconnectMax)
        guard c.reconnectMax >= c.reconnectMin else { throw m.error("reconnect_max_s", "must be ≥ reconnect_min_s (\(c.reconnectMin))") }
        try m.rejectUnknownKeys()
        return c
    }

    /// This machine's short host name (the default rig name).
    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "rig" }
        let h = String(cString: buf).split(separator: ".").first.map(String.init) ?? "rig"
        return h.isEmpty ? "rig" : h
    }
}
