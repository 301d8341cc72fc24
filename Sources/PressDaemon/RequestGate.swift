import Foundation
import Logging
import PressLog
import PressProtocol

/// Authorisation and audit for one connection's requests.
///
/// The peer's role comes from its credentials, read once by the kernel at connect
/// (``PeerCredentials``), against ``AccessPolicy``; the role each method needs and
/// whether it is audited come from its ``MethodTable`` row. Every audited request, and
/// every refusal, goes to the journal and the run log with the peer's uid and pid.
struct RequestGate {
    let peer: PeerCredentials?
    let access: AccessPolicy
    let logger: Logger
    /// Where audit records go (the run-log writer's queue).
    let sink: @Sendable (RunLogEvent) -> Void
    /// Refused requests on this connection so far.
    private(set) var refusals = 0

    /// Admits `command` or returns why not (the message of a `permission_denied`
    /// error). Audits it either way when its method is audited or it is refused.
    mutating func admit(_ spec: MethodSpec, _ command: Command, request bytes: Data) -> String? {
        let role = peer.flatMap { p in access.role(uid: p.uid, gids: p.groups) }
        guard let role, role >= spec.role else {
            audit(spec.name, command, bytes, refused: true)
            let who = peer.map { "uid \($0.uid)" } ?? "unknown peer"
            return "\(spec.name) needs the \(spec.role) role; \(who) is \(role.map { "an \($0)" } ?? "not allowed") (see [access] in the configuration)"
        }
        if spec.audited { audit(spec.name, command, bytes, refused: false) }
        return nil
    }

    private mutating func audit(_ method: String, _ command: Command, _ bytes: Data, refused: Bool) {
        if refused {
            // A peer that may not write can still send refused requests as fast as it
            // likes: the first 10 of a connection are written out (256 bytes each), then
            // one in a hundred with the count, so it cannot fill the disk or bury the log.
            refusals += 1
            guard refusals <= 10 || refusals % 100 == 0 else { return }
        }
        var request = String(decoding: bytes.prefix(refused ? 256 : 2048), as: UTF8.self)
        if refused && refusals > 10 { request = "(\(refusals) refused requests on this connection so far) " + request }
        if method == "program_start" { request = "program_start (program text not repeated)" }
        if refused { request = "REFUSED (permission) " + request }
        let uid = peer.map { Int($0.uid) }, pid = peer.map { Int($0.pid) }
        logger.notice(refused ? "request refused" : "request", metadata: ["method": "\(method)", "uid": "\(uid.map(String.init) ?? "?")", "pid": "\(pid.map(String.init) ?? "?")"])
        sink(RunLogEvent(time: Date().timeIntervalSince1970, channel: command.channel ?? "", kind: "request", detail: request, uid: uid, pid: pid))
    }
}
