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
    /// The server's budget for refused requests of unprivileged peers (per uid, global).
    let throttle: AuditThrottle

    /// Admits `command` or returns why not (the message of a `permission_denied`
    /// error, which is audited here). An admitted audited request is recorded later,
    /// with its outcome (``record(_:channel:request:outcome:)``).
    mutating func admit(_ spec: MethodSpec, _ command: Command, request bytes: Data) -> String? {
        let role = peer.flatMap { p in access.role(uid: p.uid, gids: p.groups) }
        guard let role, role >= spec.role else {
            let who = peer.map { "uid \($0.uid)" } ?? "unknown peer"
            let why = "\(spec.name) needs the \(spec.role) role; \(who) is \(role.map { "an \($0)" } ?? "not allowed") (see [access] in the configuration)"
            record(spec, channel: command.channel, request: bytes, outcome: ErrorBody(.permissionDenied, why))
            return why
        }
        return nil
    }

    /// Writes one audit record: the request, and how it ended when it was refused
    /// (`REFUSED (permission)`, `REFUSED (out_of_range: …)`) or timed out
    /// (`TIMEOUT`: the loop may still carry it out).
    mutating func record(_ spec: MethodSpec, channel: String?, request bytes: Data, outcome: ErrorBody?) {
        let refused = outcome.map { $0.code != .timeout } ?? false
        if refused, let p = peer {
            // A peer can send refused requests as fast as it likes, on as many connections
            // as it likes: unless it is an operator, admin or root, its uid has a budget
            // per interval (AuditLimiter); the rest are counted in one summary record.
            guard throttle.admit(uid: p.uid, pid: p.pid, method: spec.name, privileged: access.isPrivileged(p)) else { return }
        }
        var request = String(decoding: bytes.prefix(refused ? 256 : 2048), as: UTF8.self)
        if spec.name == "program_start" { request = "program_start (program text not repeated)" }
        if let e = outcome {
            switch e.code {
            case .permissionDenied: request = "REFUSED (permission) " + request
            case .timeout: request = "TIMEOUT (no answer from the control loop within the command timeout; it may still be carried out) " + request
            default: request = "REFUSED (\(e.code.rawValue): \(e.message.prefix(200))) " + request
            }
        }
        let uid = peer.map { Int($0.uid) }, pid = peer.map { Int($0.pid) }
        logger.notice(refused ? "request refused" : "request", metadata: ["method": "\(spec.name)", "uid": "\(uid.map(String.init) ?? "?")", "pid": "\(pid.map(String.init) ?? "?")"])
        sink(RunLogEvent(time: Date().timeIntervalSince1970, channel: channel ?? "", kind: "request", detail: request, uid: uid, pid: pid))
    }
}

/// A request being answered: its wire id and, for an audited method, the audit record
/// that is written with the outcome when the reply goes out.
struct RequestRef: Sendable {
    let id: RequestID?
    var audit: AuditTicket? = nil
    /// Counts the request in flight until its reply is written.
    var flight: FlightTicket? = nil
    /// No request to name (a line too long to read its id).
    static let anonymous = RequestRef(id: nil)
}

/// An audited request's record, written once with its outcome. Used on the
/// connection's event loop only.
final class AuditTicket: @unchecked Sendable {
    let spec: MethodSpec
    let channel: String?
    let bytes: Data
    private var done = false
    init(spec: MethodSpec, channel: String?, bytes: Data) { self.spec = spec; self.channel = channel; self.bytes = bytes }
    /// True the first time only.
    func settle() -> Bool { if done { return false }; done = true; return true }
}

extension AccessPolicy {
    /// Operators, admins and root: they keep the reserved connection slots, are served
    /// first and have no per-uid budget (of requests in flight, of audited refusals).
    func isPrivileged(_ peer: PeerCredentials) -> Bool {
        peer.uid == 0 || (role(uid: peer.uid, gids: peer.groups) ?? .observer) >= .operator
    }
}
