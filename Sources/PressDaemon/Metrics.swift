import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PressCore
import PressProtocol

/// Renders the Prometheus text exposition format (version 0.0.4) from a snapshot.
/// Base SI units with a `pressd_` prefix; rig identity belongs in the scrape config.
public enum MetricsRenderer {
    public static func render(_ snap: RigSnapshot, configs: [ChannelConfig], version: String, uptime: Double,
                              storage: [StorageInfo] = []) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
            let l = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
            out += "\(name)\(l) \(value.isFinite ? "\(value)" : (value.isNaN ? "NaN" : (value > 0 ? "+Inf" : "-Inf")))\n"
        }
        family("pressd_build_info", "gauge", "Version of the running pressd.")
        sample("pressd_build_info", [("version", version)], 1)
        family("pressd_storage_writing", "gauge", "1 while the store (run_log, state_file) is being written; 0 is an alarm.")
        for st in storage { sample("pressd_storage_writing", [("store", st.name)], st.writing ? 1 : 0) }
        family("pressd_storage_write_failures_total", "counter", "Failed writes of the store.")
        for st in storage { sample("pressd_storage_write_failures_total", [("store", st.name)], Double(st.failures)) }
        family("pressd_uptime_seconds", "gauge", "Seconds since pressd started.")
        sample("pressd_uptime_seconds", [], uptime)

        let chans = zip(snap.channels, configs)
        family("pressd_stack_pressure_pascals", "gauge", "Measured stack pressure (force / cell area).")
        for (c, _) in chans { if let p = c.pressure { sample("pressd_stack_pressure_pascals", [("channel", c.name)], p * 1e6) } }
        family("pressd_setpoint_pascals", "gauge", "Operator's target stack pressure.")
        for (c, _) in chans { if let t = c.target { sample("pressd_setpoint_pascals", [("channel", c.name)], t * 1e6) } }
        family("pressd_control_error_ratio", "gauge", "(pressure - setpoint) / setpoint while regulating.")
        for (c, _) in chans where c.mode == .regulating {
            if let t = c.target, let p = c.pressure, t > 0 { sample("pressd_control_error_ratio", [("channel", c.name)], (p - t) / t) }
        }
        // Every measured signal with a metric, from the signal table (base SI units).
        for signal in Signal.allCases {
            let d = signal.descriptor
            guard let name = d.metric else { continue }
            family(name, "gauge", "Measured \(d.label) (register, gauge or pushed), in base SI units (the table's \(d.unit) × \(d.metricScale)).")
            for (c, _) in chans { if let v = c.readings[signal]?.value { sample(name, [("channel", c.name)], v * d.metricScale) } }
        }
        family("pressd_actuator_output", "gauge", "Actuator output in its own unit (label unit).")
        for (c, cfg) in chans { sample("pressd_actuator_output", [("channel", c.name), ("unit", cfg.actuator.outputUnit)], c.output) }
        family("pressd_channel_mode", "gauge", "1 for the channel's present mode.")
        for (c, _) in chans {
            for m in ["released", "holding", "regulating", "tripped"] {
                sample("pressd_channel_mode", [("channel", c.name), ("mode", m)], c.mode.rawValue == m ? 1 : 0)
            }
        }
        family("pressd_fault_active", "gauge", "1 while a fault of this code is latched (active or unacknowledged).")
        for (c, _) in chans {
            for code in FaultCode.allCases {
                sample("pressd_fault_active", [("channel", c.name), ("code", code.rawValue)], c.faults.contains { $0.code == code } ? 1 : 0)
            }
        }
        family("pressd_excursions_total", "counter", "Finished excursions of the regulated pressure out of its band.")
        for (c, _) in chans { sample("pressd_excursions_total", [("channel", c.name)], Double(c.excursions.count)) }
        family("pressd_out_of_band_seconds_total", "counter", "Seconds out of band in finished excursions.")
        for (c, _) in chans { sample("pressd_out_of_band_seconds_total", [("channel", c.name)], c.excursions.timeOutOfBand) }
        family("pressd_excursion_active", "gauge", "1 while the settled, regulated pressure is out of its band.")
        for (c, _) in chans { sample("pressd_excursion_active", [("channel", c.name)], c.excursion != nil ? 1 : 0) }
        family("pressd_recoveries_total", "counter", "Automatic recoveries from faults that cleared by themselves (sensor_stale, sensor_frozen).")
        for (c, _) in chans { sample("pressd_recoveries_total", [("channel", c.name)], Double(c.recoveries)) }
        family("pressd_authority_lost", "gauge", "1 while the pressure does not answer the output and the output is capped.")
        for (c, _) in chans { sample("pressd_authority_lost", [("channel", c.name)], c.authorityLost ? 1 : 0) }
        family("pressd_in_band", "gauge", "1 while regulating inside the configured band.")
        for (c, _) in chans { sample("pressd_in_band", [("channel", c.name)], c.inBand ? 1 : 0) }
        family("pressd_autotune_running", "gauge", "1 while a relay autotune runs on the channel.")
        for (c, _) in chans { sample("pressd_autotune_running", [("channel", c.name)], c.control.autotune != nil ? 1 : 0) }
        family("pressd_adaptive_gain_scale", "gauge", "Scale applied to the tuned gains by the adaptive schedule.")
        for (c, _) in chans { if let m = c.control.memory { sample("pressd_adaptive_gain_scale", [("channel", c.name)], m.scale) } }
        family("pressd_learned_confidence_ratio", "gauge", "Confidence of the learned disturbance model (0-1).")
        for (c, _) in chans where c.control.strategy == .learned { if let m = c.control.memory { sample("pressd_learned_confidence_ratio", [("channel", c.name)], m.confidence) } }
        family("pressd_learned_feedforward_active", "gauge", "1 while the learned disturbance feedforward is on.")
        for (c, _) in chans where c.control.strategy == .learned { sample("pressd_learned_feedforward_active", [("channel", c.name)], c.control.memory?.learnedActive == true ? 1 : 0) }
        family("pressd_critical_stack_pressure_pascals", "gauge", "Critical stack pressure of the channel's last sweep.")
        for (c, _) in chans { if let f = c.control.lastSweep?.fit { sample("pressd_critical_stack_pressure_pascals", [("channel", c.name)], f.csp * 1e6) } }
        family("pressd_supervisor_locked", "gauge", "1 while the impedance-aware supervisor is locked.")
        for (c, _) in chans { if let v = c.control.supervisor { sample("pressd_supervisor_locked", [("channel", c.name)], v.locked ? 1 : 0) } }
        let s = snap.stats
        family("pressd_control_loop_ticks_total", "counter", "Control-loop ticks completed.")
        sample("pressd_control_loop_ticks_total", [], Double(s.ticks))
        family("pressd_control_loop_overruns_total", "counter", "Ticks that woke more than one period late.")
        sample("pressd_control_loop_overruns_total", [], Double(s.overruns))
        family("pressd_control_loop_jitter_seconds", "gauge", "Wake-up lateness of the last tick.")
        sample("pressd_control_loop_jitter_seconds", [], s.lastJitter)
        family("pressd_control_loop_jitter_max_seconds", "gauge", "Largest wake-up lateness since start.")
        sample("pressd_control_loop_jitter_max_seconds", [], s.maxJitter)
        family("pressd_control_loop_duration_max_seconds", "gauge", "Longest tick body since start.")
        sample("pressd_control_loop_duration_max_seconds", [], s.maxTickDuration)
        return out
    }
}

/// Serves `GET /metrics` on a loopback TCP address.
final class MetricsServer: @unchecked Sendable {
    let host: String
    let port: Int
    let render: @Sendable () -> String
    let group: EventLoopGroup
    private var channel: Channel?

    init(address: String, group: EventLoopGroup, render: @escaping @Sendable () -> String) {
        let colon = address.lastIndex(of: ":")!
        host = String(address[..<colon]); port = Int(address[address.index(after: colon)...])!
        self.group = group; self.render = render
    }

    /// The bound port (useful with port 0 in tests).
    var boundPort: Int? { channel?.localAddress?.port }

    func start() async throws {
        let render = self.render
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.pipeline.configureHTTPServerPipeline().flatMap { ch.pipeline.addHandler(MetricsHandler(render: render)) }
            }
            .bind(host: host, port: port).get()
    }

    func stop() async { try? await channel?.close() }
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let render: @Sendable () -> String
    private var path = ""

    init(render: @escaping @Sendable () -> String) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): path = h.method == .GET ? h.uri : ""
        case .body: break
        case .end:
            let ok = path == "/metrics"
            let body = ok ? render() : "not found: try /metrics\n"
            var head = HTTPResponseHead(version: .http1_1, status: ok ? .ok : .notFound)
            head.headers.add(name: "Content-Type", value: ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
