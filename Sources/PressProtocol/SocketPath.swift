import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the control socket lives when nobody says otherwise.
///
/// pressd (``resolveDefault(environment:)``):
/// 1. `$PRESSD_SOCKET` if set;
/// 2. `/run/pressd/pressd.sock` for root (under systemd the unit passes it);
/// 3. `$XDG_RUNTIME_DIR/pressd/pressd.sock`, else `/tmp/pressd-<uid>/pressd.sock`.
///
/// pressctl (``resolveClient(environment:)``): `$PRESSD_SOCKET`; the system daemon's
/// socket whenever `/run/pressd` exists (an installed system), so that a technician
/// needs no option; else the same per-user path as pressd.
public enum SocketPath {
    public static let systemPath = "/run/pressd/pressd.sock"
    public static let systemDirectory = "/run/pressd"

    public static func resolveDefault(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let p = env["PRESSD_SOCKET"], !p.isEmpty { return p }
        if geteuid() == 0 { return systemPath }
        return perUser(environment: env)
    }

    /// The per-user socket path of a daemon run by hand.
    public static func perUser(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let x = env["XDG_RUNTIME_DIR"], !x.isEmpty { return x + "/pressd/pressd.sock" }
        return "/tmp/pressd-\(geteuid())/pressd.sock"
    }

    /// The path pressctl connects to. `systemDirectoryExists` is injectable for tests.
    public static func resolveClient(environment env: [String: String] = ProcessInfo.processInfo.environment,
                                     systemDirectoryExists: Bool? = nil) -> String {
        if let p = env["PRESSD_SOCKET"], !p.isEmpty { return p }
        var st = stat()
        // lstat of the directory needs no permission on it: a user outside group
        // pressctl still gets the system path, and then the permission error that says
        // how to join the group.
        let exists = systemDirectoryExists ?? (lstat(systemDirectory, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR)
        if exists || geteuid() == 0 { return systemPath }
        return perUser(environment: env)
    }

    /// True when `path` is one of the per-user default paths, whose directory lives in
    /// a place (`/tmp`) where another user could have made it first.
    public static func isPerUserDefault(_ path: String, environment env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        path == perUser(environment: env) || path == "/tmp/pressd-\(geteuid())/pressd.sock"
    }

    /// Checks that the directory holding `socketPath` can be trusted by the current
    /// user: owned by that user (or root) and writable by nobody else. Otherwise
    /// another user could have put a socket of their own there, and pressctl would
    /// report success for commands no daemon received.
    /// - Returns: nil when the directory is trusted or does not exist yet; else why not.
    public static func untrustedDirectoryReason(of socketPath: String) -> String? {
        let dir = LocalPath.directory(of: socketPath)
        var st = stat()
        guard lstat(dir, &st) == 0 else { return nil }
        let me = geteuid()
        if (st.st_mode & S_IFMT) != S_IFDIR { return "\(dir) is not a directory" }
        if st.st_uid != me && st.st_uid != 0 {
            let owner = getpwuid(st.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(st.st_uid)"
            return "\(dir) belongs to \(owner), not to you: another user may have made it to catch your commands; remove it (or set PRESSD_SOCKET / --socket to a socket you trust)"
        }
        if st.st_mode & (S_IWGRP | S_IWOTH) != 0 && st.st_mode & S_ISVTX == 0 {
            return "\(dir) is writable by other users (mode \(String(st.st_mode & 0o7777, radix: 8))): anyone could replace the socket; run chmod 700 \(dir)"
        }
        return nil
    }
}

/// Paths given on a command line or in the environment, made absolute by hand: no
/// Foundation path functions, which crashed on a one-character relative path
/// (`pressd --socket s`) and gave empty directory names for a bare file name.
public enum LocalPath {
    /// The process's working directory (`getcwd(3)`), or `/` when it cannot be read.
    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" }
        return String(cString: buf)
    }

    /// `path` made absolute against `cwd` and normalised: empty and `.` components
    /// dropped, `..` taking one off (never above `/`). Symbolic links are not resolved.
    public static func absolute(_ path: String, cwd: String = currentDirectory()) -> String {
        let joined = path.hasPrefix("/") ? path : cwd + "/" + path
        var parts: [Substring] = []
        for c in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { _ = parts.popLast(); continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The directory part of an absolute path: `/a/b` for `/a/b/s.sock`, `/` for `/s`.
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// Makes the directory `path` and any missing parents with `mode`, like `mkdir -p`.
    /// - Throws: ``LocalPathError`` naming the component that could not be made and why.
    public static func makeDirectories(_ path: String, mode: mode_t) throws(LocalPathError) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw LocalPathError(path: path, reason: "exists and is not a directory") }
            return
        }
        let parent = directory(of: path)
        if parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0, errno != EEXIST { throw LocalPathError(path: path, reason: "cannot make the directory: \(String(cString: strerror(errno)))") }
    }
}

/// A path that could not be used: the path and why.
public struct LocalPathError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path) \(reason)" }
}
