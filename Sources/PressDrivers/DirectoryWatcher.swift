import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a directory cannot be watched.
public struct DirectoryWatchError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Watches directories for files that are complete: written and closed
/// (`IN_CLOSE_WRITE`) or moved in whole (`IN_MOVED_TO`, the way careful writers and
/// `rsync` publish a file). One thread for all directories; the handler runs on it, in
/// the order the kernel reports the files, so a slow handler delays the next file, never
/// the control loop.
///
/// A file closed several times (an SMB copy, an editor) is offered again each time; the
/// handler decides whether it has seen it (by name, size and modification time).
public final class DirectoryWatcher: @unchecked Sendable {
    public struct Directory: Sendable {
        public var path: String
        /// The caller's tag for files found here (a channel index).
        public var tag: Int
        public init(path: String, tag: Int) { self.path = path; self.tag = tag }
    }

    public let directories: [Directory]
    private let handler: @Sendable (_ tag: Int, _ path: String) -> Void
    private var fd: Int32 = -1
    private var watches: [Int32: Directory] = [:]
    private let stopFlag = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)
    private var thread: Thread?

    public init(directories: [Directory], handler: @escaping @Sendable (_ tag: Int, _ path: String) -> Void) {
        self.directories = directories; self.handler = handler
    }

    /// Opens the watches and starts the thread. A directory that cannot be watched (it
    /// does not exist yet, a share not mounted) does not stop the others: it is returned
    /// with the reason, and tried again every few seconds by the thread. Files already in
    /// a directory whose modification time is within `existingWithin` seconds of now are
    /// offered first, oldest first, so a restart does not lose the latest spectrum.
    /// Throws only when inotify itself is unavailable.
    @discardableResult
    public func start(existingWithin: Double = 0) throws(DirectoryWatchError) -> [(Directory, DirectoryWatchError)] {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw DirectoryWatchError(path: "inotify", reason: String(cString: strerror(errno))) }
        var failed: [(Directory, DirectoryWatchError)] = []
        for d in directories {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: d.path, isDirectory: &isDir), isDir.boolValue else {
                failed.append((d, DirectoryWatchError(path: d.path, reason: "is not a directory (create it, readable by the pressd user); watched as soon as it exists")))
                lost.append(d)
                continue
            }
            let wd = inotify_add_watch(fd, d.path, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO))
            guard wd >= 0 else {
                failed.append((d, DirectoryWatchError(path: d.path, reason: "cannot be watched: \(String(cString: strerror(errno))); tried again every 5 s")))
                lost.append(d)
                continue
            }
            watches[wd] = d
        }
        let existing = existingWithin > 0 ? recentFiles(within: existingWithin) : []
        let t = Thread { [self] in nameThreadForOS("pressd-spectra");
            for (tag, path) in existing { handler(tag, path) }
            run()
        }
        t.name = "pressd-spectra"
        thread = t
        t.start()
        return failed
    }

    /// Called on the watcher's thread when a directory that could not be watched is
    /// watched at last.
    public var onWatched: (@Sendable (Directory) -> Void)?

    /// Stops the thread and closes the watches; returns when the thread has ended.
    public func stop() {
        stopFlag.lock(); let wasRunning = !stopping && thread != nil; stopping = true; stopFlag.unlock()
        if wasRunning { done.wait() }
        if fd >= 0 { close(fd); fd = -1 }
    }

    private var isStopping: Bool { stopFlag.lock(); defer { stopFlag.unlock() }; return stopping }

    private func recentFiles(within: Double) -> [(Int, String)] {
        let now = Date()
        var found: [(Date, Int, String)] = []
        for d in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: d.path) else { continue }
            for n in names where !n.hasPrefix(".") {
                let p = d.path + "/" + n
                guard let a = try? FileManager.default.attributesOfItem(atPath: p), (a[.type] as? FileAttributeType) == .typeRegular,
                      let m = a[.modificationDate] as? Date, now.timeIntervalSince(m) <= within else { continue }
                found.append((m, d.tag, p))
            }
        }
        return found.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
    }

    /// Directories whose watch the kernel dropped (deleted, unmounted), retried every
    /// few seconds: an SMB share that comes back is watched again.
    private var lost: [Directory] = []
    private var lastRetry = Date.distantPast

    private func rewatchLost() {
        guard !lost.isEmpty, Date().timeIntervalSince(lastRetry) >= 5 else { return }
        lastRetry = Date()
        lost.removeAll { d in
            let wd = inotify_add_watch(fd, d.path, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO))
            guard wd >= 0 else { return false }
            watches[wd] = d
            onWatched?(d)
            return true
        }
    }

    private func run() {
        defer { done.signal() }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !isStopping {
            rewatchLost()
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, 200)
            if r <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { continue }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let (wd, mask, len) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                    let e = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (e.wd, e.mask, Int(e.len))
                }
                let nameStart = offset + MemoryLayout<inotify_event>.size
                let nameBytes = buffer[nameStart..<min(n, nameStart + len)].prefix { $0 != 0 }
                offset = nameStart + len
                if mask & UInt32(IN_IGNORED) != 0, let d = watches.removeValue(forKey: wd) { lost.append(d); continue }
                guard mask & UInt32(IN_ISDIR) == 0, let d = watches[wd], !nameBytes.isEmpty else { continue }
                let name = String(decoding: nameBytes, as: UTF8.self)
                if name.hasPrefix(".") { continue } // a writer's temporary file
                handler(d.tag, d.path + "/" + name)
            }
        }
    }
}
