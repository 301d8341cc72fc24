import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a spectrum file was not read. The messages name the problem and never quote the file.
enum SpectrumFileReadError: Error, Equatable, CustomStringConvertible {
    /// The name is a symbolic link (never followed).
    case symbolicLink
    /// Not a regular file: a FIFO, a device, a socket, a directory.
    case notRegular(kind: String)
    /// Larger than the limit (by `fstat` on the opened file, or it grew while read).
    case tooLarge(bytes: Int, limit: Int)
    /// Gone between the directory's event and the open (renamed or deleted).
    case vanished
    /// `open` or `read` failed otherwise.
    case unreadable(String)

    var description: String {
        switch self {
        case .symbolicLink: return "is a symbolic link; only regular files are read (copy the spectrum instead)"
        case .notRegular(let kind): return "is not a regular file (\(kind)); only regular files are read"
        case .tooLarge(let bytes, let limit):
            return bytes > limit ? "\(bytes) bytes is too large for a spectrum (limit \(limit >> 20) MiB)"
                                 : "grew beyond \(limit >> 20) MiB while it was read: too large for a spectrum"
        case .vanished: return "was gone before it could be read (renamed or deleted)"
        case .unreadable(let why): return "cannot be read by the pressd user: \(why) (check its permissions)"
        }
    }
}

/// A spectrum file's bytes with what `fstat` said about the file that was read.
struct SpectrumFileContent: Equatable {
    var data: Data
    var size: Int
    var modified: Date
}

/// Reads a file from a watched directory without ever following a name twice: opened once,
/// relative to the directory's descriptor (`openat`), with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`
/// (a symbolic link fails the open, a FIFO does not block it); its type and size are checked
/// with `fstat` on that descriptor; at most `limit + 1` bytes are read, so a file swapped for a
/// larger one, or growing, is refused without being read whole.
enum SpectrumFileReader {
    /// The bytes of `name` in the directory open as `directory`, or why not.
    static func read(directory: Int32, name: String, limit: Int) -> Result<SpectrumFileContent, SpectrumFileReadError> {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let e = errno
            switch e {
            case ELOOP: return .failure(.symbolicLink)
            case ENOENT: return .failure(.vanished)
            case ENXIO: return .failure(.notRegular(kind: "a FIFO or socket without a writer"))
            default: return .failure(.unreadable(String(cString: strerror(e))))
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else { return .failure(.notRegular(kind: Self.kind(type))) }
        let size = Int(st.st_size)
        guard size <= limit else { return .failure(.tooLarge(bytes: size, limit: limit)) }
        var data = Data(count: min(size, limit) + 1)
        var total = 0
        while total < data.count {
            let n = data.withUnsafeMutableBytes { raw in Glibc.read(fd, raw.baseAddress! + total, raw.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { break }
                return .failure(.unreadable(String(cString: strerror(errno))))
            }
            if n == 0 { break }
            total += n
            if total == data.count, total <= limit { data.count += min(64 << 10, limit + 1 - total) }
        }
        guard total <= limit else { return .failure(.tooLarge(bytes: total, limit: limit)) }
        data.count = total
        let modified = Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
        return .success(SpectrumFileContent(data: data, size: total, modified: modified))
    }

    static func kind(_ type: mode_t) -> String {
        switch type {
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFDIR: return "a directory"
        default: return "type \(String(type, radix: 8))"
        }
    }
}
