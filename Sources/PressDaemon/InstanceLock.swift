import Foundation
import PressDrivers
import PressProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Why this pressd may not drive the rig: another process holds it.
public enum InstanceLockError: Error, CustomStringConvertible, Equatable {
    /// Another pressd runs on the same state directory (run log, restart state).
    case stateDirectoryInUse(directory: String, holderPID: Int32?)
    /// Another process drives the same device.
    case deviceInUse(device: String, resource: String, holderPID: Int32?, holderUID: UInt32?)
    /// The lock itself could not be made.
    case cannotLock(what: String, reason: String)

    public var description: String {
        switch self {
        case .stateDirectoryInUse(let d, let pid):
            return "another pressd (PID \(pid.map(String.init) ?? "unknown")) is running on state directory \(d); refusing to start so that two daemons never drive one rig (stop it first: systemctl stop pressd)"
        case .deviceInUse(let dev, let r, let pid, let uid):
            return "device \(dev) (\(r)) is in use by PID \(pid.map(String.init) ?? "unknown")\(uid.map { " (uid \($0))" } ?? ""); refusing to start so that two controllers never drive the same actuators"
        case .cannotLock(let w, let r): return "cannot lock \(w): \(r)"
        }
    }
}

/// The exclusive locks that make one pressd the only one on a rig. Taken before any
/// device is opened and before any state is read; a second instance fails at once,
/// naming the holder, and touches nothing. Released by the kernel when the process
/// ends, however it ends (`kill -9` included).
///
/// - The state directory: `flock(2)` on `<state_dir>/pressd.lock`, which holds the PID.
/// - Each device: an abstract Unix socket named after the device's identity (serial
///   line by its real path, Modbus TCP endpoint by its numeric address and port, GPIO
///   chip by name). Abstract names need no shared writable directory (the unit's file
///   system is read-only), are visible to every user of the host's network namespace,
///   and tell the holder's PID through `SO_PEERCRED`. The kernel already refuses a GPIO
///   line requested twice; the chip lock makes a second daemon refuse before it
///   requests any line.
public final class InstanceLocks: @unchecked Sendable {
    private var fds: [Int32] = []

    public init() {}
    deinit { release() }

    /// Releases every lock (the daemon does this after its graceful shutdown).
    public func release() {
        for fd in fds { close(fd) }
        fds.removeAll()
    }

    /// Locks `directory` (creating it 0750 if missing) and writes our PID into the lock file.
    public func lockStateDirectory(_ directory: String) throws(InstanceLockError) {
        do throws(LocalPathError) { try LocalPath.makeDirectories(directory, mode: 0o750) }
        catch { throw .cannotLock(what: directory, reason: "\(error)") }
        let path = directory + "/pressd.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .cannotLock(what: path, reason: String(cString: strerror(errno))) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, 31, 0)
            close(fd)
            guard e == EWOULDBLOCK else { throw .cannotLock(what: path, reason: String(cString: strerror(e))) }
            let pid = n > 0 ? Int32(String(decoding: buf[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) : nil
            throw .stateDirectoryInUse(directory: directory, holderPID: pid)
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, text, text.count, 0)
        fds.append(fd)
    }

    /// Locks the resource `key` (see ``resourceKey(for:)``) for device `device`.
    public func lockDevice(_ device: String, key: String) throws(InstanceLockError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .cannotLock(what: key, reason: String(cString: strerror(errno))) }
        var addr = Self.abstractAddress(key)
        let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + Self.abstractName(key).count)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        if rc != 0 {
            let e = errno
            close(fd)
            guard e == EADDRINUSE else { throw .cannotLock(what: key, reason: String(cString: strerror(e))) }
            let holder = Self.holder(of: key)
            throw .deviceInUse(device: device, resource: key, holderPID: holder?.pid, holderUID: holder?.uid)
        }
        guard listen(fd, 4) == 0 else {
            let e = errno
            close(fd)
            throw .cannotLock(what: key, reason: String(cString: strerror(e)))
        }
        fds.append(fd)
    }

    /// The locks every configured device needs; several devices behind one endpoint or
    /// on one bus share a lock (taken once).
    public func lockDevices(_ devices: [DeviceConfig]) throws(InstanceLockError) {
        var taken: Set<String> = []
        for d in devices {
            guard let key = Self.resourceKey(for: d), taken.insert(key).inserted else { continue }
            try lockDevice(d.name, key: key)
        }
    }

    /// A device's identity, the same however the configuration spells it.
    public static func resourceKey(for d: DeviceConfig) -> String? {
        if let t = d.transport {
            switch t {
            case .tcp(let host, let port): return "modbus-tcp:\(numericHost(host)):\(port)"
            case .rtu(let device, _, _, _, _, _):
                let real = realpath(device, nil).map { p in defer { free(p) }; return String(cString: p) } ?? device
                return "serial:\(real)"
            }
        }
        if let chip = d.gpioChip {
            if Int(chip) != nil { return "gpio:gpiochip\(chip)" }
            return "gpio:" + (chip as NSString).lastPathComponent
        }
        return nil
    }

    /// The first numeric address `host` resolves to (so `localhost` and `127.0.0.1`
    /// are one endpoint), else the name as given.
    static func numericHost(_ host: String) -> String {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else { return host.lowercased() }
        defer { freeaddrinfo(res) }
        var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST) == 0 else { return host.lowercased() }
        return String(cString: buf)
    }

    /// `pressd-lock:` and the key, or a hash of a key too long for `sun_path`.
    static func abstractName(_ key: String) -> [UInt8] {
        let full = Array("pressd-lock:\(key)".utf8)
        if full.count <= 100 { return full }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Array("pressd-lock:\(key.prefix(60)):\(String(h, radix: 16))".utf8)
    }

    static func abstractAddress(_ key: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let name = abstractName(key)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw[0] = 0
            for (i, b) in name.enumerated() { raw[i + 1] = b }
        }
        return addr
    }

    /// The PID and uid of whoever holds `key`, from `SO_PEERCRED` of a connection to it.
    static func holder(of key: String) -> (pid: Int32, uid: UInt32)? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = abstractAddress(key)
        let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + abstractName(key).count)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, len) } }
        guard rc == 0, let c = try? PeerCredentials.read(fd: fd) else { return nil }
        return (c.pid, c.uid)
    }
}
