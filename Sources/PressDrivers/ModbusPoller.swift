import CModbus
import CGPIOD
import Foundation
import PressCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Which Modbus table a signal lives in.
public enum ModbusTable: String, Sendable, CaseIterable {
    case holding, input, coil, discrete
    var isBit: Bool { self == .coil || self == .discrete }
    var readFunction: String {
        switch self {
        case .holding: return "read holding registers (0x03)"
        case .input: return "read input registers (0x04)"
        case .coil: return "read coils (0x01)"
        case .discrete: return "read discrete inputs (0x02)"
        }
    }
}

/// One value in a device's register map: where it is and how to turn it into an
/// engineering value (raw × scale + offset).
public struct ModbusSignal: Sendable, Equatable {
    public var id: String
    public var unit: Int
    public var table: ModbusTable
    public var address: Int
    public var codec: RegisterCodec
    public init(id: String, unit: Int, table: ModbusTable, address: Int, codec: RegisterCodec) {
        self.id = id; self.unit = unit; self.table = table; self.address = address; self.codec = codec
    }
    /// Registers (or bits) the signal occupies.
    public var count: Int { table.isBit ? 1 : codec.type.count }
}

/// How to reach a Modbus device or bus.
public enum ModbusTransport: Sendable, Equatable {
    case tcp(host: String, port: Int)
    case rtu(device: String, baud: Int, parity: Character, dataBits: Int, stopBits: Int, rs485: Bool)

    public var description: String {
        switch self {
        case .tcp(let h, let p): return "tcp://\(h):\(p)"
        case .rtu(let d, let b, let p, let db, let sb, _): return "rtu://\(d)@\(b)-\(db)\(p)\(sb)"
        }
    }
}

/// A contiguous read covering one or more signals of one unit and table.
struct ReadBlock: Equatable {
    var unit: Int
    var table: ModbusTable
    var start: Int
    var count: Int
}

/// Groups signals into the fewest reads: same unit and table, sorted by address,
/// merged when the gap is at most `maxGap` registers and the block stays within
/// Modbus' limits (125 registers, 2000 bits).
func planReads(_ signals: [ModbusSignal], maxGap: Int = 8) -> [ReadBlock] {
    var blocks: [ReadBlock] = []
    let groups = Dictionary(grouping: signals) { "\($0.unit)/\($0.table.rawValue)" }
    for key in groups.keys.sorted() {
        let sorted = groups[key]!.sorted { $0.address < $1.address }
        let limit = sorted[0].table.isBit ? 2000 : 125
        var cur: ReadBlock?
        for s in sorted {
            if var c = cur, s.address <= c.start + c.count + maxGap, s.address + s.count - c.start <= limit {
                c.count = max(c.count, s.address + s.count - c.start)
                cur = c
            } else {
                if let c = cur { blocks.append(c) }
                cur = ReadBlock(unit: s.unit, table: s.table, start: s.address, count: s.count)
            }
        }
        if let c = cur { blocks.append(c) }
    }
    return blocks
}

/// Health of one connection, for status and logs.
public struct ModbusHealth: Sendable, Equatable {
    public var name: String
    public var endpoint: String
    public var connected: Bool
    /// Successful reads (one per request), writes, and failed requests or connection
    /// attempts (one each, after its retries).
    public var reads: UInt64
    public var writes: UInt64
    public var errors: UInt64
    /// Errors that left the connection in step: Modbus exception replies (DEVICE_BUSY,
    /// illegal address, …). They are also counted in `errors`.
    public var exceptions: UInt64 = 0
    /// Times the connection was dropped after an error that put it out of step or lost it
    /// (garbled reply, wrong unit or transaction id, CRC, timeout, reset), to be reopened.
    public var resyncs: UInt64 = 0
    public var lastError: String?
    public var lastErrorTime: Double?
    /// Writes not sent because the register already holds that value (see
    /// ``ModbusPoller``), and read-backs of the output registers.
    public var unchangedWritesSkipped: UInt64 = 0
    public var readbacks: UInt64 = 0
}

/// Polls one Modbus connection (a TCP device or gateway, or an RS-485 bus with several
/// units) from its own thread, so that no libmodbus call ever runs on the control
/// thread. Reads are batched into the fewest requests; writes are queued (the newest
/// value per signal wins) and sent first in each cycle. Errors name the device, the
/// unit, the function and the register address.
///
/// Every reply is validated before it is used (``ModbusConnection/transact``). A Modbus
/// exception (DEVICE_BUSY, illegal address, …) is the device saying no: an error for that
/// request, retried up to `retries` times, and the next cycle polls as usual. Any other
/// error — a garbled or unasked-for reply, the wrong unit or transaction id, a CRC error,
/// a timeout, a lost link — means replies can no longer be paired with requests: the
/// connection is dropped at once (flushed and closed) and reopened after a backoff of
/// 0.1 s doubling to 5 s (on RTU at least the response timeout, so that a late reply is
/// over before the port reopens), reset by the next successful request. Readers get the
/// last good value with its monotonic timestamp, the time the request that read it was
/// sent, so staleness is judged by the channel.
///
/// Output registers cost one request each only when it matters: a write whose register
/// value (after encoding) equals the last one written is not sent, unless
/// `rewriteInterval` has passed since (a periodic re-assertion); and the output
/// registers (`readbackSignals`) are read back at start, every `readbackInterval`, and
/// after any error or reconnect, not every cycle. Between read-backs the cache holds the
/// value last written. A read-back that differs from what was written (a module reset
/// behind a gateway) makes the next write go out at once.
public final class ModbusPoller: @unchecked Sendable {
    public let name: String
    public let transport: ModbusTransport
    public let defaultUnit: Int
    public let timeout: Double
    public let retries: Int
    public let period: Double
    private let readSignals: [ModbusSignal]
    private let blocks: [ReadBlock]
    private let readbackSignals: [ModbusSignal]
    private let readbackBlocks: [ReadBlock]
    public let readbackInterval: Double
    public let rewriteInterval: Double
    /// Poller thread only: the words last written per signal and when; when the next
    /// read-back is due.
    private var lastWritten: [String: (words: [UInt16], time: Double)] = [:]
    private var readbackDue = -Double.infinity
    private let values = Mutex<[String: Sample]>([:])
    private let pendingWrites = Mutex<[String: (ModbusSignal, Double)]>([:])
    private let health: Mutex<ModbusHealth>
    /// The poller's thread, while it runs.
    private var worker: DaemonThread?
    private var isStopping: Bool { worker?.isStopping ?? true }
    private var conn: ModbusConnection?
    /// The next reconnect's wait; doubles per failure up to 5 s, back to 0.1 s after a
    /// successful request.
    private var backoff = 0.1
    /// Loop-clock time before which no reconnect is tried.
    private var reconnectAt = -Double.infinity
    private let clock: @Sendable () -> Double
    /// Called (on the poller's thread) with each new error message, for the log.
    public var onError: (@Sendable (String) -> Void)?

    public static let minBackoff = 0.1
    public static let maxBackoff = 5.0

    public init(name: String, transport: ModbusTransport, defaultUnit: Int = 1, timeout: Double = 0.2, retries: Int = 1,
                pollRate: Double = 50, readSignals: [ModbusSignal], readbackSignals: [ModbusSignal] = [],
                readbackInterval: Double = 1, rewriteInterval: Double = 1, clock: @escaping @Sendable () -> Double) {
        self.name = name; self.transport = transport; self.defaultUnit = defaultUnit; self.timeout = timeout
        self.retries = retries; self.period = 1 / pollRate; self.readSignals = readSignals
        self.blocks = planReads(readSignals)
        let regular = Set(readSignals.map(\.id))
        self.readbackSignals = readbackSignals.filter { !regular.contains($0.id) }
        self.readbackBlocks = planReads(self.readbackSignals)
        self.readbackInterval = readbackInterval; self.rewriteInterval = rewriteInterval
        self.clock = clock
        self.health = Mutex(ModbusHealth(name: name, endpoint: transport.description, connected: false, reads: 0, writes: 0, errors: 0))
    }

    /// Reads per cycle (the batching result), read-backs not counted.
    public var readsPerCycle: Int { blocks.count }

    /// The latest value of a signal and when it was read (monotonic loop time: when the
    /// request that returned it was sent).
    public func value(_ id: String) -> Sample? { values.withLock { $0[id] } }

    public func snapshotHealth() -> ModbusHealth { health.withLock { $0 } }

    /// Queues a write; the newest value per signal is sent at the start of the next cycle.
    public func write(_ signal: ModbusSignal, _ value: Double) {
        pendingWrites.withLock { $0[signal.id] = (signal, value) }
    }

    public func start() {
        let t = DaemonThread(ThreadName("modbus", instance: name)) { [self] _ in run() }
        worker = t
        t.start()
    }

    /// Stops after flushing pending writes once more.
    public func stop() {
        guard let t = worker else { return }
        t.stop()
        worker = nil
    }

    private func recordError(_ error: ModbusError) {
        let now = clock()
        let message = error.description
        readbackDue = -Double.infinity
        health.withLock { h in
            h.errors += 1
            if case .exception = error.kind { h.exceptions += 1 }
            h.lastError = message; h.lastErrorTime = now
        }
        onError?(message)
    }

    private func connect() -> Bool {
        if conn != nil { return true }
        do {
            switch transport {
            case .tcp(let h, let p): conn = try ModbusConnection.tcp(host: h, port: p, unit: defaultUnit, timeout: timeout)
            case .rtu(let d, let b, let p, let db, let sb, let rs485):
                conn = try ModbusConnection.rtu(device: d, baud: b, parity: p, dataBits: db, stopBits: sb, unit: defaultUnit, timeout: timeout)
                if rs485 { conn?.enableRS485() }
            }
            health.withLock { $0.connected = true }
            readbackDue = -Double.infinity
            lastWritten.removeAll()
            return true
        } catch {
            recordError(error)
            health.withLock { $0.connected = false }
            scheduleReconnect()
            return false
        }
    }

    private func scheduleReconnect() {
        var wait = backoff
        if case .rtu = transport { wait = max(wait, timeout) }
        reconnectAt = clock() + wait
        backoff = min(Self.maxBackoff, backoff * 2)
    }

    /// Drops an out-of-step or lost connection (flush, close) and schedules its reopening.
    private func resync() {
        conn?.close()
        conn = nil
        lastWritten.removeAll()
        health.withLock { $0.connected = false; $0.resyncs += 1 }
        scheduleReconnect()
    }

    /// Runs `op` with retries (only after an exception reply: any other error drops the
    /// connection at once). Returns its result and the time the successful request was sent.
    private func attempt<T>(_ op: (ModbusConnection) throws(ModbusError) -> T) -> (T, Double)? {
        guard let c = conn else { return nil }
        var lastError: ModbusError?
        for _ in 0...retries {
            let sent = clock()
            do {
                let r = try op(c)
                backoff = Self.minBackoff
                return (r, sent)
            } catch {
                lastError = error
                if error.needsResync { break }
            }
        }
        if let e = lastError {
            recordError(e)
            if e.needsResync { resync() }
        }
        return nil
    }

    /// Sleeps until `time` (loop clock) in slices, so that `stop` is not held up.
    private func sleep(until time: Double) {
        while !isStopping {
            let wait = time - clock()
            if wait <= 0 { return }
            Thread.sleep(forTimeInterval: min(wait, 0.05))
        }
    }

    private func run() {
        var next = clock()
        while !isStopping {
            if conn == nil {
                if clock() < reconnectAt { sleep(until: reconnectAt); continue }
                guard connect() else { continue }
                next = clock()
            }
            flushWrites()
            read(blocks, readSignals)
            if !readbackBlocks.isEmpty, clock() >= readbackDue {
                readbackDue = clock() + readbackInterval
                read(readbackBlocks, readbackSignals, readback: true)
            }
            next += period
            if next > clock() { sleep(until: next) } else { next = clock() }
        }
        if connect() { flushWrites() }
        conn = nil
    }

    /// Reads `blocks` and caches the `signals` in them. A read-back that differs from the
    /// value last written forgets that write, so the next one goes out.
    private func read(_ blocks: [ReadBlock], _ signals: [ModbusSignal], readback: Bool = false) {
        for b in blocks {
            guard let (words, sent) = attempt({ c throws(ModbusError) in try c.read(unit: b.unit, table: b.table, address: b.start, count: b.count) }) else { continue }
            // Decoded straight into the cache: nothing allocated per poll but the reply.
            values.withLock { cache in
                for s in signals where s.unit == b.unit && s.table == b.table && s.address >= b.start && s.address + s.count <= b.start + b.count {
                    let slice = words[(s.address - b.start)..<(s.address - b.start + s.count)]
                    let v = s.table.isBit ? (slice.first == 0 ? 0.0 : 1.0) * s.codec.scale + s.codec.offset : s.codec.decode(slice)
                    cache[s.id] = Sample(value: v, time: sent)
                }
            }
            if readback {
                for s in signals where s.unit == b.unit && s.table == b.table && s.address >= b.start && s.address + s.count <= b.start + b.count {
                    let slice = Array(words[(s.address - b.start)..<(s.address - b.start + s.count)])
                    if let w = lastWritten[s.id], w.words != (s.table.isBit ? [slice.first == 0 ? 0 : 1] : slice) { lastWritten[s.id] = nil }
                }
            }
            health.withLock { $0.reads += 1; if readback { $0.readbacks += 1 } }
        }
    }

    private func flushWrites() {
        let writes = pendingWrites.withLock { w -> [(ModbusSignal, Double)] in
            guard !w.isEmpty else { return [] }
            defer { w.removeAll(keepingCapacity: true) }
            return Array(w.values)
        }
        for (s, v) in writes {
            let words: [UInt16] = s.table.isBit ? [v >= 0.5 ? 1 : 0] : s.codec.encode(v)
            if let w = lastWritten[s.id], w.words == words, clock() - w.time < rewriteInterval {
                health.withLock { $0.unchangedWritesSkipped += 1 }
                continue
            }
            let ok: (Void, Double)? = attempt { c throws(ModbusError) in
                switch s.table {
                case .holding: try c.writeRegisters(unit: s.unit, address: s.address, values: s.codec.encode(v))
                case .coil: try c.writeCoil(unit: s.unit, address: s.address, on: v >= 0.5)
                case .input, .discrete:
                    throw ModbusError(device: "\(transport.description)/unit \(s.unit)", unit: s.unit, function: "write", address: s.address,
                                      reason: "\(s.table.rawValue) is read-only", kind: .request)
                }
            }
            if let (_, sent) = ok {
                health.withLock { $0.writes += 1 }
                lastWritten[s.id] = (words, sent)
                // The register now holds what was written: the cache says so until the
                // next read-back.
                if readbackSignals.contains(where: { $0.id == s.id }) {
                    let held = s.table.isBit ? Double(words[0]) * s.codec.scale + s.codec.offset : s.codec.decode(words[...])
                    values.withLock { $0[s.id] = Sample(value: held, time: sent) }
                }
            } else { pendingWrites.withLock { w in if w[s.id] == nil { w[s.id] = (s, v) } } } // retry next cycle
        }
    }
}
