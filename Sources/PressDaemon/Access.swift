import Foundation
import PressProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Maps a peer's uid and groups to a role, from `[access]` in the configuration.
///
/// Entries: `"*"` (anyone who can open the socket), `"name"` or `"1000"` (a user),
/// `"@name"` or `"@1000"` (a group, primary or supplementary). root and the daemon's
/// own user are always admins.
public struct AccessPolicy: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var anyone = false
        public var uids: Set<UInt32> = []
        public var gids: Set<UInt32> = []
        func matches(uid: UInt32, gids g: Set<UInt32>) -> Bool { anyone || uids.contains(uid) || !gids.isDisjoint(with: g) }
    }
    public var observers = Entry(anyone: true)
    public var operators = Entry()
    public var admins = Entry()
    public var daemonUID: UInt32 = geteuid()

    public init() {}

    /// The highest role `uid` (with groups `gids`) holds, nil for none.
    public func role(uid: UInt32, gids: Set<UInt32>) -> Role? {
        if uid == 0 || uid == daemonUID || admins.matches(uid: uid, gids: gids) { return .admin }
        if operators.matches(uid: uid, gids: gids) { return .operator }
        if observers.matches(uid: uid, gids: gids) { return .observer }
        return nil
    }

    /// Resolves configuration entries; the error names the entry.
    public static func entry(_ list: [String]) -> Result<Entry, AccessError> {
        var e = Entry()
        for item in list {
            if item == "*" { e.anyone = true; continue }
            if item.hasPrefix("@") {
                let name = String(item.dropFirst())
                if let g = UInt32(name) { e.gids.insert(g); continue }
                guard let gr = getgrnam(name) else { return .failure(AccessError(message: "no group '\(name)' on this system")) }
                e.gids.insert(gr.pointee.gr_gid)
                continue
            }
            if let u = UInt32(item) { e.uids.insert(u); continue }
            guard let pw = getpwnam(item) else { return .failure(AccessError(message: "no user '\(item)' on this system")) }
            e.uids.insert(pw.pointee.pw_uid)
        }
        return .success(e)
    }
}

public struct AccessError: Error, Equatable { public var message: String }

extension AccessPolicy {
    /// Reads `[access]`. Without the table: anyone observes, the `pressctl` group (when the
    /// system has one) operates.
    static func parse(_ a: TableReader?) throws(ConfigError) -> AccessPolicy {
        var policy = AccessPolicy()
        guard let a else {
            if let g = getgrnam("pressctl") { policy.operators.gids.insert(g.pointee.gr_gid) }
            return policy
        }
        for (key, apply) in [("observers", { (p: inout AccessPolicy, e: AccessPolicy.Entry) in p.observers = e }),
                             ("operators", { (p: inout AccessPolicy, e: AccessPolicy.Entry) in p.operators = e }),
                             ("admins", { (p: inout AccessPolicy, e: AccessPolicy.Entry) in p.admins = e })] {
            guard let list = try a.stringList(key) else { continue }
            switch AccessPolicy.entry(list) {
            case .success(let e): apply(&policy, e)
            case .failure(let m): throw a.error(key, m.message)
            }
        }
        try a.rejectUnknownKeys()
        return policy
    }
}
