import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the control socket lives when nobody says otherwise. pressd and pressctl
/// compute it the same way, so they meet without configuration:
/// 1. `$PRESSD_SOCKET` if set;
/// 2. `/run/pressd/pressd.sock` for root (and under systemd);
/// 3. `$XDG_RUNTIME_DIR/pressd/pressd.sock`, else `/tmp/pressd-<uid>/pressd.sock`.
public enum SocketPath {
    public static let systemPath = "/run/pressd/pressd.sock"

    public static func resolveDefault(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let p = env["PRESSD_SOCKET"], !p.isEmpty { return p }
        if geteuid() == 0 { return systemPath }
        if let x = env["XDG_RUNTIME_DIR"], !x.isEmpty { return x + "/pressd/pressd.sock" }
        return "/tmp/pressd-\(geteuid())/pressd.sock"
    }
}
