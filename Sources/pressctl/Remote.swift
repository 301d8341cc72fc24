import ArgumentParser
import Foundation
import PressProtocol

// `pressctl -H`: rigs on other machines over SSH (transport in PressProtocol/Remote.swift).

extension Connection {
    /// The rigs named with `-H` (empty without it). A malformed list is a usage error.
    func rigs() throws -> [RigAddress] {
        guard let host else { return [] }
        do { return try RigAddress.list(host) } catch { throw ValidationError("-H \(error)") }
    }

    /// `-H a,b,…`: more than one rig.
    var isFleet: Bool { ((try? rigs()) ?? []).count > 1 }

    /// Connects to the one rig named with `-H` through ssh, or throws why not.
    func openRemote() throws -> ControlClient {
        let rigs = try rigs()
        guard rigs.count == 1 else { throw ValidationError("-H with several rigs works with 'status' only; name one rig for this command") }
        return try RemoteRig.connect(rigs[0], socket: socket, ssh: RemoteRig.sshCommand(sshCommand))
    }
}

/// `pressctl bridge`: run on the rig by `pressctl -H` through ssh. Connects to the
/// local pressd socket as the logged-in user and copies standard input and output to
/// and from it until either side closes.
struct Bridge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect standard input/output to pressd's socket (run by 'pressctl -H' through ssh).",
        shouldDisplay: false)
    @Option(name: .long, help: "Control socket path (default: as for every command).") var socket: String?

    func run() throws {
        let path = socket ?? SocketPath.resolveClient()
        if socket == nil, SocketPath.isPerUserDefault(path), let why = SocketPath.untrustedDirectoryReason(of: path) {
            let e = ClientError.untrustedDirectory(path: path, reason: why)
            SocketBridgeReport.failed(e)
        }
        if let e = SocketBridge.run(socketPath: path) { SocketBridgeReport.failed(e, reported: true) }
    }
}

enum SocketBridgeReport {
    /// Says why on standard error (ssh shows it to the person) and exits 3.
    static func failed(_ e: ClientError, reported: Bool = false) -> Never {
        if !reported, let data = try? ControlProtocol.encoder().encode(BridgeFailure(code: e.connectionCode, message: "\(e)")) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
        FileHandle.standardError.write(Data("pressctl bridge: \(e)\n".utf8))
        Foundation.exit(Exit.notRunning.rawValue)
    }
}

/// `pressctl -H rig1,rig2,… status`: every rig asked at once, one table (a row per rig
/// and channel), unreachable rigs marked in it. Exit 0 when at least one rig answered,
/// 3 when none did. With `--json`, `{"ok": {"rigs": [...]}}` with one object per rig:
/// `{"rig", "status"}` or `{"rig", "error": {"code", "message"}}`.
struct FleetStatus {
    let conn: Connection
    /// Seconds allowed per rig: ssh's connection and login, then pressd's answer.
    var timeout: Double = Double(ProcessInfo.processInfo.environment["PRESSCTL_FLEET_TIMEOUT"] ?? "") ?? 15

    struct Entry: Codable {
        struct Failure: Codable { var code: String; var message: String }
        var rig: String
        var status: StatusResult?
        var error: Failure?
    }

    /// Asks every rig concurrently, a thread each.
    func collect() throws -> [Entry] {
        let rigs = try conn.rigs()
        let ssh = RemoteRig.sshCommand(conn.sshCommand)
        let results = FleetResults(count: rigs.count)
        let group = DispatchGroup()
        let (socket, channel, timeout) = (conn.socket, conn.channel, self.timeout)
        for (i, rig) in rigs.enumerated() {
            group.enter()
            Thread.detachNewThread {
                var entry = Entry(rig: "\(rig)")
                do {
                    let c = try RemoteRig.connect(rig, socket: socket, ssh: ssh, batch: true, timeout: timeout,
                                                  connectTimeout: max(1, Int(timeout * 2 / 3)))
                    entry.status = try c.call("status", OptionalChannelParams(channel: channel), as: StatusResult.self)
                } catch let e as ClientError {
                    entry.error = Entry.Failure(code: e.connectionCode, message: "\(e)")
                } catch {
                    entry.error = Entry.Failure(code: "protocol_error", message: "\(error)")
                }
                results.set(i, entry)
                group.leave()
            }
        }
        group.wait()
        return results.all
    }

    func run() throws {
        let entries = try collect()
        if conn.json {
            printJSON(["rigs": entries])
        } else {
            let width = max(4, entries.map(\.rig.count).max() ?? 0) + 2
            print([pad("RIG", width), pad("CH", 4), pad("MODE", 11), pad("SETPOINT MPa", 13), pad("PRESSURE MPa", 13), pad("ERROR", 9), "FAULTS"].joined())
            for e in entries {
                guard let s = e.status else {
                    print(pad(e.rig, width) + pad("—", 4) + pad("UNREACHABLE", 11) + " " + (e.error?.message ?? ""))
                    continue
                }
                for ch in s.channels {
                    let faults = ch.faults.isEmpty ? "—" : ch.faults.map { $0.code + ($0.active ? "" : " (cleared, ack)") }.joined(separator: ", ")
                    print([pad(e.rig, width), pad(ch.name, 4), pad(ch.mode, 11), pad(ch.setpointText, 13),
                           pad(f(ch.pressureMpa) + (ch.stale ? "!" : ""), 13), pad(ch.errorText, 9), faults].joined())
                }
            }
            let down = entries.filter { $0.status == nil }.count
            if down > 0 { print("\(down) of \(entries.count) rigs unreachable") }
        }
        if entries.allSatisfy({ $0.status == nil }) { throw Exit.notRunning }
    }
}

/// The fleet's answers, filled in by one thread per rig.
final class FleetResults: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [FleetStatus.Entry?]
    init(count: Int) { entries = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ e: FleetStatus.Entry) { lock.lock(); entries[i] = e; lock.unlock() }
    var all: [FleetStatus.Entry] { lock.lock(); defer { lock.unlock() }; return entries.compactMap { $0 } }
}
