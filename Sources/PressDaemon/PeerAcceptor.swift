import Foundation
import PressDrivers
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a connection, read once from the kernel when the
/// connection is accepted and never again: the uid, gid and pid from `SO_PEERCRED`
/// and the supplementary groups from `SO_PEERGROUPS` (Linux ≥ 4.13). Both describe the
/// process as it was when it called `connect(2)`, so a client that forks, exits or is
/// replaced by a recycled PID cannot change them; nothing is read from `/proc`.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// The primary and every supplementary group.
    public var groups: Set<UInt32>

    public init(pid: Int32, uid: UInt32, gid: UInt32, groups: Set<UInt32>) {
        self.pid = pid; self.uid = uid; self.gid = gid; self.groups = groups.union([gid])
    }

    /// Glibc's `struct ucred` (pid_t, uid_t, gid_t), which Swift's Glibc does not export.
    private struct UCred { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }

    /// Reads the credentials of the peer of the connected Unix socket `fd`.
    /// - Throws: `PeerCredentialError` naming the `getsockopt(2)` option that failed.
    public static func read(fd: Int32) throws(PeerCredentialError) -> PeerCredentials {
        var cred = UCred()
        var len = socklen_t(MemoryLayout<UCred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else {
            throw PeerCredentialError(option: "SO_PEERCRED", errno: errno)
        }
        return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid,
                               groups: Set(try supplementaryGroups(fd: fd, uid: cred.uid, gid: cred.gid)))
    }

    /// `SO_PEERGROUPS`, growing the buffer when the kernel says it is too small
    /// (ERANGE sets the needed length). On a kernel without it (ENOPROTOOPT, < 4.13)
    /// the groups the user database gives the uid, as a login would.
    static func supplementaryGroups(fd: Int32, uid: UInt32, gid: UInt32) throws(PeerCredentialError) -> [UInt32] {
        var capacity = 64
        while true {
            var buf = [UInt32](repeating: 0, count: capacity)
            var len = socklen_t(capacity * MemoryLayout<UInt32>.size)
            let rc = buf.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, $0.baseAddress, &len) }
            if rc == 0 { return Array(buf.prefix(Int(len) / MemoryLayout<UInt32>.size)) }
            let e = errno
            if e == ERANGE, Int(len) > capacity * MemoryLayout<UInt32>.size, capacity < 1 << 17 {
                capacity = Int(len) / MemoryLayout<UInt32>.size + 1
                continue
            }
            if e == ENOPROTOOPT { return userDatabaseGroups(uid: uid, gid: gid) }
            throw PeerCredentialError(option: "SO_PEERGROUPS", errno: e)
        }
    }

    static func userDatabaseGroups(uid: UInt32, gid: UInt32) -> [UInt32] {
        guard let pw = getpwuid(uid) else { return [gid] }
        var n: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(n))
        if getgrouplist(pw.pointee.pw_name, gid, &groups, &n) < 0 {
            groups = [gid_t](repeating: 0, count: Int(n))
            _ = getgrouplist(pw.pointee.pw_name, gid, &groups, &n)
        }
        return Array(groups.prefix(Int(max(n, 0))))
    }
}

/// A `getsockopt(2)` on an accepted connection failed.
public struct PeerCredentialError: Error, CustomStringConvertible, Equatable {
    public var option: String
    public var errno: Int32
    public var description: String { "getsockopt(\(option)): \(String(cString: strerror(errno)))" }
}

/// Accepts connections on the control socket on a thread of its own.
///
/// NIO's server channel cannot tell us a connection's descriptor, and the peer's
/// groups need one (`SO_PEERGROUPS` is a variable-length option). So this thread
/// accepts, reads the credentials once, applies the connection cap, and only then
/// hands the connected descriptor to NIO (`ClientBootstrap.withConnectedSocket`).
///
/// - A connection over the cap gets one `busy` error line and is closed; the cap is
///   the configured `daemon.max_connections`, lowered if needed so that descriptors
///   stay free for the devices, the run log and reconnects.
/// - When the process is out of descriptors (EMFILE, ENFILE) or memory, accepting
///   backs off for 100 ms instead of spinning on a listening socket that stays readable.
/// - The listening descriptor is never closed or shut down here: under socket
///   activation it belongs to systemd, which keeps it across restarts.
public final class PeerAcceptor: @unchecked Sendable {
    public let listenFD: Int32
    public let maxConnections: Int
    /// Most connections one uid may hold (root and privileged peers excepted).
    public let maxPerUser: Int
    /// Slots only peers for which `privileged` is true may take: an observer flooding
    /// the socket cannot lock an operator out of `release`.
    public let reserved: Int
    private let privileged: @Sendable (PeerCredentials) -> Bool
    private let perUser = Mutex<[UInt32: Int]>([:])
    private let onAccept: @Sendable (Int32, PeerCredentials) -> Void
    private let logger: Logger
    private let open = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)
    /// A self-pipe that wakes the accept thread for ``stop()``: read end, write end.
    private let wake: (read: Int32, write: Int32)
    /// The accept thread, once started.
    private var thread: DaemonThread?

    /// - Parameters:
    ///   - onAccept: takes ownership of the connected descriptor; it must call
    ///     ``connectionClosed()`` once that connection is gone.
    public init(listenFD: Int32, maxConnections: Int, maxPerUser: Int = .max, reserved: Int = 0,
                privileged: @escaping @Sendable (PeerCredentials) -> Bool = { _ in true }, logger: Logger,
                onAccept: @escaping @Sendable (Int32, PeerCredentials) -> Void) {
        self.listenFD = listenFD
        self.maxConnections = max(1, maxConnections)
        self.maxPerUser = max(1, maxPerUser)
        self.reserved = min(max(0, reserved), max(0, maxConnections - 1))
        self.privileged = privileged
        self.logger = logger
        self.onAccept = onAccept
        var p: [Int32] = [-1, -1]
        _ = pipe(&p)
        for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        self.wake = (p[0], p[1])
        let flags = fcntl(listenFD, F_GETFL)
        _ = fcntl(listenFD, F_SETFL, flags | O_NONBLOCK)
    }

    deinit { close(wake.read); close(wake.write) }

    /// Connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }
    /// Connections refused because the cap was reached, since start.
    public var refusedConnections: Int { refusedCount.load(ordering: .relaxed) }

    public func start() {
        let t = DaemonThread(ThreadName("accept")) { [self] t in runLoop(t) }
        thread = t
        t.start()
    }

    /// Stops accepting and waits for the thread to end. The listening descriptor stays open.
    public func stop() {
        guard let t = thread else { return }
        if !t.isStopping {
            t.requestStop()
            var one: UInt8 = 1
            _ = write(wake.write, &one, 1)
        }
        t.join()
    }

    /// Called by the connection's owner when it closes.
    public func connectionClosed(uid: UInt32) {
        open.subtract(1, ordering: .relaxed)
        perUser.withLock { m in
            let n = (m[uid] ?? 1) - 1
            m[uid] = n > 0 ? n : nil
        }
    }

    private func runLoop(_ thread: DaemonThread) {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        var lastResourceLog = -Double.infinity
        while !thread.isStopping {
            fds[0].revents = 0; fds[1].revents = 0
            let n = poll(&fds, 2, 1000)
            if n < 0 && errno != EINTR { logger.error("control socket poll failed: \(String(cString: strerror(errno)))"); usleep(100_000) }
            if fds[1].revents != 0 { break }
            guard n > 0, fds[0].revents != 0 else { continue }
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED { continue }
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    let now = Date().timeIntervalSince1970
                    if now - lastResourceLog > 60 {
                        logger.error("control socket: cannot accept: \(String(cString: strerror(e))); backing off", metadata: ["open_connections": "\(openConnections)"])
                        lastResourceLog = now
                    }
                    usleep(100_000)
                    continue
                }
                logger.error("control socket: accept failed: \(String(cString: strerror(e)))")
                usleep(100_000)
                continue
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let cred: PeerCredentials
            do { cred = try PeerCredentials.read(fd: fd) } catch {
                logger.warning("control socket: connection refused, peer unknown: \(error)")
                close(fd)
                continue
            }
            if let why = refusal(cred) {
                refusedCount.add(1, ordering: .relaxed)
                refuse(fd, cred, why)
                continue
            }
            open.add(1, ordering: .relaxed)
            perUser.withLock { $0[cred.uid, default: 0] += 1 }
            onAccept(fd, cred)
        }
    }

    /// Why `cred` may not have another connection now, nil when it may.
    func refusal(_ cred: PeerCredentials) -> String? {
        let total = open.load(ordering: .relaxed)
        if total >= maxConnections {
            return "pressd has \(maxConnections) connections open, its limit (daemon.max_connections); try again later"
        }
        let isPrivileged = cred.uid == 0 || privileged(cred)
        if !isPrivileged && total >= maxConnections - reserved {
            return "pressd has \(total) connections open; the last \(reserved) are kept for operators and admins; try again later"
        }
        if !isPrivileged, perUser.withLock({ $0[cred.uid] ?? 0 }) >= maxPerUser {
            return "uid \(cred.uid) already has \(maxPerUser) connections open (daemon.max_connections_per_user); close some"
        }
        return nil
    }

    /// One error line, then close. Never blocks: the socket is non-blocking and the
    /// line is far smaller than a socket buffer.
    private func refuse(_ fd: Int32, _ cred: PeerCredentials, _ why: String) {
        let line = "{\"id\":null,\"error\":{\"code\":\"busy\",\"message\":\"\(why)\"}}\n"
        _ = line.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        close(fd)
        let total = refusedConnections
        if total == 1 || total % 100 == 0 {
            logger.warning("control socket: connection refused: \(why)", metadata: [
                "uid": "\(cred.uid)", "pid": "\(cred.pid)", "limit": "\(maxConnections)", "refused_total": "\(total)"])
        }
    }

    /// The cap that leaves `reserve` descriptors of the soft RLIMIT_NOFILE for everything
    /// else (devices, the run log, reconnects, the metrics endpoint).
    public static func effectiveCap(configured: Int, reserve: Int) -> Int {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max else { return configured }
        return max(1, min(configured, Int(rl.rlim_cur) - reserve))
    }
}
