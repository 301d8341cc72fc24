import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the state file, naming the path and the call that failed.
public struct StateJournalError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var operation: String
    public var reason: String
    public var description: String { "\(path): \(operation): \(reason)" }
}

/// The channels' restart state in a small file of its own that keeps working when the
/// disk is full and survives `kill -9` and power loss.
///
/// The file holds two fixed-size slots, allocated when it is created (`fallocate`), so
/// that later writes overwrite blocks the file already owns and need no free space.
/// Each write goes to the older slot — magic, sequence number, length, CRC-32 and the
/// JSON — and is made durable with `fdatasync` before it counts. A write torn by a power
/// cut fails its checksum, and the other slot, one write older, is read instead.
///
/// The SQLite run log keeps the history; this file answers one question after a
/// restart: what was every channel doing, which faults were latched, and when was that
/// last known to be true.
public final class StateJournal: @unchecked Sendable {
    public static let slotSize = 1 << 20
    static let magic: UInt32 = 0x5052_5344 // "PRSD"
    static let headerSize = 24

    public let path: String
    private let fd: Int32
    private var sequence: UInt64 = 0
    /// True when the file did not exist (or was empty) before: a first start, not a lost file.
    public let isNew: Bool

    /// What one slot holds.
    public struct Contents: Sendable, Codable, Equatable {
        /// Unix time of the write.
        public var written: Double
        /// The run log's clock at the write (plant time: ahead of the wall clock on a
        /// simulator run faster than real time), to compare with its last sample.
        public var logTime: Double?
        public var channels: [PersistedChannel]
        public init(written: Double, logTime: Double? = nil, channels: [PersistedChannel]) {
            self.written = written; self.logTime = logTime; self.channels = channels
        }
    }

    /// Opens `path`, creating and allocating it if needed.
    public init(path: String) throws(StateJournalError) {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw StateJournalError(path: path, operation: "open", reason: String(cString: strerror(errno))) }
        var st = stat()
        isNew = fstat(fd, &st) == 0 && st.st_size == 0
        let rc = posix_fallocate(fd, 0, off_t(2 * Self.slotSize))
        if rc != 0 {
            close(fd)
            throw StateJournalError(path: path, operation: "fallocate \(2 * Self.slotSize) bytes", reason: String(cString: strerror(rc)))
        }
        self.fd = fd
        sequence = (try? readSlots().map(\.seq).max()) ?? 0
    }

    deinit { close(fd) }

    /// Writes `contents` durably into the older slot.
    public func write(_ contents: Contents) throws(StateJournalError) {
        let payload: Data
        do { payload = try JSONEncoder().encode(contents) }
        catch { throw StateJournalError(path: path, operation: "encode", reason: "\(error)") }
        guard payload.count <= Self.slotSize - Self.headerSize else {
            throw StateJournalError(path: path, operation: "write", reason: "state of \(payload.count) bytes does not fit a slot of \(Self.slotSize)")
        }
        let seq = sequence + 1
        var header = [UInt8]()
        header.reserveCapacity(Self.headerSize)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        put(Self.magic); put(UInt32(1)); put(seq); put(UInt32(payload.count)); put(crc32(payload))
        let record = header + [UInt8](payload)
        let offset = off_t(Int(seq % 2) * Self.slotSize)
        var done = 0
        while done < record.count {
            let n = record[done...].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, offset + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StateJournalError(path: path, operation: "pwrite", reason: String(cString: strerror(errno)))
            }
            done += n
        }
        guard fdatasync(fd) == 0 else { throw StateJournalError(path: path, operation: "fdatasync", reason: String(cString: strerror(errno))) }
        sequence = seq
    }

    /// The newest valid slot, nil when neither is valid (a new file).
    public func read() -> Contents? {
        guard let best = (try? readSlots())?.max(by: { $0.seq < $1.seq }) else { return nil }
        return best.contents
    }

    private func readSlots() throws -> [(seq: UInt64, contents: Contents)] {
        var out: [(UInt64, Contents)] = []
        for slot in 0..<2 {
            var header = [UInt8](repeating: 0, count: Self.headerSize)
            guard pread(fd, &header, Self.headerSize, off_t(slot * Self.slotSize)) == Self.headerSize else { continue }
            func get<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
                header[at..<at + MemoryLayout<T>.size].withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
            }
            guard get(0, UInt32.self) == Self.magic, get(4, UInt32.self) == 1 else { continue }
            let seq = get(8, UInt64.self), length = Int(get(16, UInt32.self)), crc = get(20, UInt32.self)
            guard length > 0, length <= Self.slotSize - Self.headerSize else { continue }
            var body = [UInt8](repeating: 0, count: length)
            guard pread(fd, &body, length, off_t(slot * Self.slotSize + Self.headerSize)) == length else { continue }
            let data = Data(body)
            guard crc32(data) == crc, let c = try? JSONDecoder().decode(Contents.self, from: data) else { continue }
            out.append((seq, c))
        }
        return out
    }
}

/// CRC-32 (IEEE 802.3, as zlib), bitwise with a table.
func crc32(_ data: Data) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}

private let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}
