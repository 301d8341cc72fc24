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
/// Each directory is opened once (`open(O_DIRECTORY)`) and watched through that descriptor
/// (`/proc/self/fd/N`): the handler gets the descriptor and the file's name, and opens the
/// file relative to it (`openat`), so no path is resolved twice and a directory swapped for
/// another after it was opened is never read. A file closed several times (an SMB copy, an
/// editor) is offered again each time; the handler decides whether it has seen it.
public final class DirectoryWatcher: @unchecked Sendable {
    public struct Directory: Sendable {
        public var path: String
        /// The caller's tag for files found here (a channel index).
        public var tag: Int
        public init(path: String, tag: Int) { self.path = path; self.tag = tag }
    }

    public let directories: [Directory]
    private let handler: @Sendable (_ directory: Directory, _ descriptor: Int32, _ name: String) -> Void
    private var fd: Int32 = -1
    /// Watch descriptor → (directory, its open descriptor).
    private var watches: [Int32: (Directory, Int32)] = [:]
    /// The watcher's thread, once started.
    private var worker: DaemonThread?
    static let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR)

    public init(directories: [Directory], handler: @escaping @Sendable (_ directory: Directory, _ descriptor: Int32, _ name: String) -> Void) {
        self.directories = directories; self.handler = handler
    }

    /// Opens the directories and their watches and starts the thread. A directory that cannot be
    /// watched (it does not exist yet, a share not mounted) does not stop the others: it is
    /// returned with the reason, and tried again every few seconds by the thread. Files already in
    /// a directory whose modification time is within `existingWithin` seconds of now are offered
    /// first, oldest first, so a restart does not lose the latest spectrum.
    /// Throws only when inotify itself is unavailable.
    @discardableResult
    public func start(existingWithin: Double = 0) throws(DirectoryWatchError) -> [(Directory, DirectoryWatchError)] {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw DirectoryWatchError(path: "inotify", reason: String(cString: strerror(errno))) }
        var failed: [(Directory, DirectoryWatchError)] = []
        for d in directories {
            switch watch(d) {
            case .success: break
            case .failure(let e):
                failed.append((d, e))
                lost.append(d)
            }
        }
        let existing = existingWithin > 0 ? recentFiles(within: existingWithin) : []
        let t = DaemonThread(ThreadName("spectra")) { [self] _ in
            for (d, dirfd, name) in existing { handler(d, dirfd, name) }
            run()
        }
        worker = t
        t.start()
        return failed
    }

    /// Called on the watcher's thread when a directory that could not be watched is
    /// watched at last.
    public var onWatched: (@Sendable (Directory) -> Void)?

    /// Called on the watcher's thread about every 200 ms, with the open descriptor of each
    /// watched directory by tag (nil while it is not watched): for work that waits (a file
    /// deferred by a rate limit, a summary due).
    public var onTick: (@Sendable (_ descriptor: (Int) -> Int32?) -> Void)?

    /// Stops the thread and closes the watches and directories; returns when the thread has ended.
    public func stop() {
        worker?.stop()
        for (_, (_, dirfd)) in watches { close(dirfd) }
        watches.removeAll()
        if fd >= 0 { close(fd); fd = -1 }
    }

    private var isStopping: Bool { worker?.isStopping ?? true }

    /// Opens `d` and watches the opened directory (never its path again).
    private func watch(_ d: Directory) -> Result<Void, DirectoryWatchError> {
        let dirfd = open(d.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirfd >= 0 else {
            let e = errno
            return .failure(DirectoryWatchError(path: d.path, reason: e == ENOENT || e == ENOTDIR
                ? "is not a directory (create it, readable by the pressd user); watched as soon as it exists"
                : "cannot be opened: \(String(cString: strerror(e))); tried again every 5 s"))
        }
        var wd = inotify_add_watch(fd, "/proc/self/fd/\(dirfd)", Self.mask)
        if wd < 0 {
            // No /proc: watch the path, and make sure it is still the directory opened.
            wd = inotify_add_watch(fd, d.path, Self.mask)
            var a = stat(), b = stat()
            if wd >= 0, fstat(dirfd, &a) != 0 || stat(d.path, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino {
                inotify_rm_watch(fd, wd)
                wd = -1
                errno = ESTALE
            }
        }
        guard wd >= 0 else {
            let e = errno
            close(dirfd)
            return .failure(DirectoryWatchError(path: d.path, reason: "cannot be watched: \(String(cString: strerror(e))); tried again every 5 s"))
        }
        watches[wd] = (d, dirfd)
        return .success(())
    }

    /// Regular files (not followed if links) in the watched directories modified within `within`
    /// seconds, oldest first.
    private func recentFiles(within: Double) -> [(Directory, Int32, String)] {
        let now = Date().timeIntervalSince1970
        var found: [(Double, Directory, Int32, String)] = []
        for (_, (d, dirfd)) in watches {
            let copy = dup(dirfd)
            guard copy >= 0, let dir = fdopendir(copy) else { if copy >= 0 { close(copy) }; continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard !name.hasPrefix(".") else { continue }
                var st = stat()
                guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                let m = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
                if now - m <= within { found.append((m, d, dirfd, name)) }
            }
        }
        return found.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2, $0.3) }
    }

    /// Directories whose watch the kernel dropped (deleted, unmounted), retried every
    /// few seconds: an SMB share that comes back is watched again.
    private var lost: [Directory] = []
    private var lastRetry = Date.distantPast

    private func rewatchLost() {
        guard !lost.isEmpty, Date().timeIntervalSince(lastRetry) >= 5 else { return }
        lastRetry = Date()
        lost.removeAll { d in
            guard case .success = watch(d) else { return false }
            onWatched?(d)
            return true
        }
    }

    private func descriptor(tag: Int) -> Int32? {
        watches.values.first { $0.0.tag == tag }?.1
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !isStopping {
            rewatchLost()
            onTick?(descriptor(tag:))
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
                if mask & UInt32(IN_IGNORED) != 0, let (d, dirfd) = watches.removeValue(forKey: wd) {
                    close(dirfd)
                    lost.append(d)
                    continue
                }
                guard mask & UInt32(IN_ISDIR) == 0, let (d, dirfd) = watches[wd], !nameBytes.isEmpty else { continue }
                let name = String(decoding: nameBytes, as: UTF8.self)
                if name.hasPrefix(".") { continue } // a writer's temporary file
                handler(d, dirfd, name)
                if isStopping { break }
            }
        }
    }
}
