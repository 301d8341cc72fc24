import CModbus
#if canImport(Glibc)
import Glibc
#endif

/// A Modbus error that names the device, the unit, the function and the register address,
/// and says what kind of failure it was (so what the poller does about it).
public struct ModbusError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The device answered with a well-formed Modbus exception (0x01 illegal function …
        /// 0x0B gateway target failed to respond): it said no, and the connection is in step.
        case exception(code: UInt8)
        /// No complete reply within the response timeout: nothing came, or a frame was cut
        /// short. Whatever is still on its way would be taken for the next reply.
        case timeout
        /// A reply that cannot be trusted: garbage, a wrong MBAP length or protocol id, a
        /// CRC error, the wrong unit id or transaction id, the wrong function code or byte
        /// count, a malformed exception, or bytes that arrived unasked. The byte stream is
        /// out of step with the requests.
        case invalidReply
        /// The connection could not be opened or failed (refused, reset, closed by the peer,
        /// broken pipe: the errno).
        case connection(errno: Int32)
        /// A request pressd should not make (a read-only table, too many registers); nothing
        /// was sent.
        case request
    }

    /// `tcp://host:port/unit N` or `rtu:///dev/ttyUSB0@19200-8N1/unit N`.
    public var device: String
    /// The unit id the request was for (nil for connection-level failures).
    public var unit: Int?
    /// The Modbus function or library call that failed.
    public var function: String
    public var address: Int?
    /// What happened: libmodbus' text (modbus_strerror) or what our reply check found.
    public var reason: String
    public var kind: Kind

    public init(device: String, unit: Int? = nil, function: String, address: Int?, reason: String, kind: Kind) {
        self.device = device; self.unit = unit; self.function = function; self.address = address
        self.reason = reason; self.kind = kind
    }

    public var description: String {
        "\(device): \(function)" + (address.map { " at register \($0)" } ?? "") + ": \(reason)"
    }

    /// The connection can no longer be trusted to pair replies with requests, or is gone:
    /// close it, flush, and reopen it (with backoff). Only a well-formed exception reply
    /// and a request we refused to send leave the connection in step.
    public var needsResync: Bool {
        switch kind {
        case .exception, .request: return false
        case .timeout, .invalidReply, .connection: return true
        }
    }

    var isTimeout: Bool { kind == .timeout }
    var isConnectionLost: Bool { if case .connection = kind { return true } else { return false } }
}

/// One libmodbus connection (TCP or RTU). Not thread-safe: it belongs to one thread,
/// the one that polls its devices (see docs/architecture.md).
///
/// Every request goes through ``transact(unit:pdu:function:address:)``, which validates
/// the whole reply before any of it is used: libmodbus 3.1.6 frames a reply by its
/// function code and byte count, but over TCP it ignores the MBAP length field, checks the
/// protocol id only when both of its bytes are non-zero, and never looks at the unit id,
/// so a reply from another unit is taken as data (checked against a misbehaving peer,
/// Tests/peers/misbehaving_peer.py). Over RTU it checks the slave address (EMBBADSLAVE)
/// and the CRC (EMBBADCRC) itself.
public final class ModbusConnection {
    /// `tcp://host:port/unit N` (N: the default unit), as errors name it.
    public let device: String
    /// `tcp://host:port` or `rtu://…`, without the unit.
    public let endpoint: String
    private let ctx: OpaquePointer
    private let isTCP: Bool
    private let defaultUnit: Int
    /// Our own MBAP transaction id (requests over TCP are framed here, see `transact`).
    private var transactionID: UInt16 = 0

    private init(ctx: OpaquePointer, endpoint: String, unit: Int, isTCP: Bool) {
        self.ctx = ctx; self.endpoint = endpoint; self.defaultUnit = unit; self.isTCP = isTCP
        self.device = "\(endpoint)/unit \(unit)"
    }

    deinit {
        modbus_close(ctx)
        modbus_free(ctx)
    }

    /// Drops the connection: discards whatever is buffered (modbus_flush) and closes the
    /// socket or serial port (modbus_close). The object is unusable afterwards.
    public func close() {
        modbus_flush(ctx)
        modbus_close(ctx)
    }

    private static func text(_ code: Int32) -> String { String(cString: modbus_strerror(code)) }

    /// Opens a Modbus TCP connection (modbus_new_tcp + modbus_connect). The whole reply
    /// must arrive within `timeout` (modbus_set_response_timeout; the byte timeout is off).
    public static func tcp(host: String, port: Int, unit: Int = 1, timeout: Double = 0.5) throws(ModbusError) -> ModbusConnection {
        let endpoint = "tcp://\(host):\(port)"
        guard let ctx = modbus_new_tcp(host, Int32(port)) else {
            throw ModbusError(device: "\(endpoint)/unit \(unit)", function: "modbus_new_tcp", address: nil, reason: text(errno), kind: .connection(errno: errno))
        }
        modbus_set_byte_timeout(ctx, 0, 0)
        return try open(ctx, endpoint: endpoint, unit: unit, timeout: timeout, isTCP: true)
    }

    /// Opens a Modbus RTU connection on a serial device (modbus_new_rtu + modbus_connect).
    /// A reply must start within `timeout`, and no gap between its bytes may be longer
    /// (modbus_set_response_timeout, modbus_set_byte_timeout).
    /// - Parameter parity: "N", "E" or "O".
    public static func rtu(device path: String, baud: Int, parity: Character = "N", dataBits: Int = 8, stopBits: Int = 1,
                           unit: Int = 1, timeout: Double = 0.5) throws(ModbusError) -> ModbusConnection {
        let endpoint = "rtu://\(path)@\(baud)-\(dataBits)\(parity)\(stopBits)"
        guard "NEO".contains(parity), let p = parity.asciiValue,
              let ctx = modbus_new_rtu(path, Int32(baud), CChar(bitPattern: p), Int32(dataBits), Int32(stopBits)) else {
            throw ModbusError(device: "\(endpoint)/unit \(unit)", function: "modbus_new_rtu", address: nil, reason: text(errno), kind: .connection(errno: errno))
        }
        let (s, us) = split(timeout)
        modbus_set_byte_timeout(ctx, s, us)
        return try open(ctx, endpoint: endpoint, unit: unit, timeout: timeout, isTCP: false)
    }

    private static func split(_ t: Double) -> (UInt32, UInt32) {
        let s = max(0, t)
        return (UInt32(s), min(999_999, UInt32((s - Double(UInt32(s))) * 1e6)))
    }

    private static func open(_ ctx: OpaquePointer, endpoint: String, unit: Int, timeout: Double, isTCP: Bool) throws(ModbusError) -> ModbusConnection {
        modbus_set_slave(ctx, Int32(unit))
        let (s, us) = split(timeout)
        modbus_set_response_timeout(ctx, s, us)
        guard modbus_connect(ctx) == 0 else {
            let e = errno
            modbus_free(ctx)
            throw ModbusError(device: "\(endpoint)/unit \(unit)", function: "connect", address: nil, reason: text(e), kind: .connection(errno: e))
        }
        modbus_flush(ctx) // nothing left over from before (a serial line keeps what it got)
        return ModbusConnection(ctx: ctx, endpoint: endpoint, unit: unit, isTCP: isTCP)
    }

    /// Reads `count` registers or bits of `table` from `unit` (function 0x01 … 0x04).
    /// Bits come back as 0 or 1.
    public func read(unit: Int, table: ModbusTable, address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        let fc: UInt8 = switch table { case .coil: 0x01; case .discrete: 0x02; case .holding: 0x03; case .input: 0x04 }
        let limit = table.isBit ? 2000 : 125
        guard (1...limit).contains(count), (0...0xFFFF).contains(address), address + count <= 0x10000 else {
            throw ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: table.readFunction, address: address,
                              reason: "cannot read \(count) \(table.isBit ? "bits" : "registers") (1…\(limit))", kind: .request)
        }
        let pdu = [fc] + Self.be16(address) + Self.be16(count)
        let reply = try transact(unit: unit, pdu: pdu, function: table.readFunction, address: address)
        let bytes = table.isBit ? (count + 7) / 8 : 2 * count
        guard reply.count == 2 + bytes, Int(reply[1]) == bytes else {
            throw invalid(unit, table.readFunction, address, "byte count \(reply[1]) (\(reply.count - 2) bytes) for \(count) \(table.isBit ? "bits" : "registers")")
        }
        if table.isBit {
            return (0..<count).map { UInt16((reply[2 + $0 / 8] >> UInt8($0 % 8)) & 1) }
        }
        return (0..<count).map { UInt16(reply[2 + 2 * $0]) << 8 | UInt16(reply[3 + 2 * $0]) }
    }

    /// Writes registers to `unit`: one with function 0x06, several with 0x10. The reply
    /// must echo the request.
    public func writeRegisters(unit: Int, address: Int, values: [UInt16]) throws(ModbusError) {
        if values.count == 1 {
            let function = "write single register (0x06)"
            let pdu = [0x06] + Self.be16(address) + Self.be16(Int(values[0]))
            let reply = try transact(unit: unit, pdu: pdu, function: function, address: address)
            guard reply == pdu else { throw invalid(unit, function, address, "the reply does not echo the request") }
        } else {
            let function = "write multiple registers (0x10)"
            guard (1...123).contains(values.count) else {
                throw ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: function, address: address,
                                  reason: "cannot write \(values.count) registers (1…123)", kind: .request)
            }
            let pdu = [0x10] + Self.be16(address) + Self.be16(values.count) + [UInt8(2 * values.count)] + values.flatMap { Self.be16(Int($0)) }
            let reply = try transact(unit: unit, pdu: pdu, function: function, address: address)
            guard reply.count == 5, reply[1..<5] == pdu[1..<5] else {
                throw invalid(unit, function, address, "the reply does not echo the address and count")
            }
        }
    }

    /// Writes one coil of `unit` (function 0x05). The reply must echo the request.
    public func writeCoil(unit: Int, address: Int, on: Bool) throws(ModbusError) {
        let function = "write single coil (0x05)"
        let pdu: [UInt8] = [0x05] + Self.be16(address) + [on ? 0xFF : 0x00, 0x00]
        let reply = try transact(unit: unit, pdu: pdu, function: function, address: address)
        guard reply == pdu else { throw invalid(unit, function, address, "the reply does not echo the request") }
    }

    /// Writes one coil of the connection's default unit (function 0x05).
    public func writeCoil(address: Int, on: Bool) throws(ModbusError) {
        try writeCoil(unit: defaultUnit, address: address, on: on)
    }

    /// Puts an RTU connection's serial port in RS-485 mode (modbus_rtu_set_serial_mode).
    /// Returns false when the port cannot do it (USB adapters that switch direction in
    /// hardware, pseudo-terminals).
    @discardableResult
    public func enableRS485() -> Bool { modbus_rtu_set_serial_mode(ctx, Int32(MODBUS_RTU_RS485)) == 0 }

    // MARK: - One request, one validated reply

    private static func be16(_ v: Int) -> [UInt8] { [UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    private func invalid(_ unit: Int, _ function: String, _ address: Int?, _ why: String) -> ModbusError {
        ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: function, address: address,
                    reason: "invalid reply: \(why)", kind: .invalidReply)
    }

    /// An error from errno after a libmodbus call.
    private func libraryError(_ unit: Int, _ function: String, _ address: Int?, _ code: Int32) -> ModbusError {
        let kind: ModbusError.Kind
        let base = Int32(MODBUS_ENOBASE)
        switch code {
        case ETIMEDOUT: kind = .timeout
        case base + 1 ... base + 11: kind = .exception(code: UInt8(code - base))
        case base + 12 ... base + 15, base + 17: kind = .invalidReply   // EMBBADCRC, EMBBADDATA, EMBBADEXC, EMBUNKEXC, EMBBADSLAVE
        case base + 16: kind = .request                                 // EMBMDATA
        default: kind = .connection(errno: code)
        }
        let reason = kind == .invalidReply ? "invalid reply: \(Self.text(code))" : Self.text(code)
        return ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: function, address: address, reason: reason, kind: kind)
    }

    /// Sends the request `pdu` (function code first) to `unit` and returns the reply's PDU
    /// once it is known to answer this request: over TCP our own transaction id, protocol
    /// id 0, an MBAP length that matches the frame, and the unit id; over RTU the slave
    /// address and CRC (checked by libmodbus); on both the function code, or a well-formed
    /// exception, which is thrown as `.exception`. Bytes waiting before the request is sent
    /// (a late or duplicated reply, noise) are an invalid reply too: the stream is out of step.
    ///
    /// TCP requests are framed here and written to the socket (modbus_get_socket), since
    /// modbus_send_raw_request always sends transaction id 0; replies are read with
    /// modbus_receive_confirmation (framing by function code, response timeout). RTU
    /// requests go through modbus_send_raw_request (which adds the CRC).
    func transact(unit: Int, pdu: [UInt8], function: String, address: Int?) throws(ModbusError) -> [UInt8] {
        modbus_set_slave(ctx, Int32(unit)) // RTU: libmodbus filters replies on it
        let fd = modbus_get_socket(ctx)
        guard fd >= 0 else {
            throw ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: function, address: address,
                              reason: "not connected", kind: .connection(errno: EBADF))
        }
        try checkQuiet(fd, unit, function, address)

        let request: UInt16
        if isTCP {
            transactionID &+= 1
            request = transactionID
            let frame = Self.be16(Int(request)) + [0, 0] + Self.be16(pdu.count + 1) + [UInt8(unit)] + pdu
            var sent = 0
            while sent < frame.count {
                let n = frame[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw libraryError(unit, function, address, errno)
                }
                sent += n
            }
        } else {
            request = 0
            let raw = [UInt8(unit)] + pdu
            guard modbus_send_raw_request(ctx, raw, Int32(raw.count)) > 0 else {
                throw libraryError(unit, function, address, errno)
            }
        }

        var rsp = [UInt8](repeating: 0, count: Int(MODBUS_MAX_ADU_LENGTH) + 16)
        let n = Int(modbus_receive_confirmation(ctx, &rsp))
        if n < 0 { throw libraryError(unit, function, address, errno) }

        let reply: ArraySlice<UInt8>
        if isTCP {
            guard n >= 9 else { throw invalid(unit, function, address, "\(n) bytes") }
            let tid = UInt16(rsp[0]) << 8 | UInt16(rsp[1])
            let proto = Int(rsp[2]) << 8 | Int(rsp[3])
            let length = Int(rsp[4]) << 8 | Int(rsp[5])
            guard tid == request else { throw invalid(unit, function, address, "transaction id \(tid), expected \(request)") }
            guard proto == 0 else { throw invalid(unit, function, address, "protocol id \(proto), expected 0") }
            guard length == n - 6 else { throw invalid(unit, function, address, "MBAP length \(length) for a \(n - 6)-byte unit id and PDU") }
            guard Int(rsp[6]) == unit else { throw invalid(unit, function, address, "reply from unit \(rsp[6])") }
            reply = rsp[7..<n]
        } else {
            // libmodbus returns 0 (and skips the CRC) for a frame from another slave.
            guard Int(rsp[0]) == unit else { throw invalid(unit, function, address, "reply from unit \(rsp[0])") }
            guard n >= 5 else { throw invalid(unit, function, address, "\(n) bytes") }
            reply = rsp[1..<(n - 2)]
        }

        let fc = reply[reply.startIndex]
        if fc == pdu[0] | 0x80 {
            let code = reply.count == 2 ? reply[reply.startIndex + 1] : 0
            guard (1...11).contains(code) else {
                throw invalid(unit, function, address, "malformed exception (\(reply.count) bytes, code \(code))")
            }
            throw ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: function, address: address,
                              reason: Self.text(Int32(MODBUS_ENOBASE) + Int32(code)), kind: .exception(code: code))
        }
        guard fc == pdu[0] else {
            throw invalid(unit, function, address, "function 0x\(String(fc, radix: 16)) in reply to 0x\(String(pdu[0], radix: 16))")
        }
        return Array(reply)
    }

    /// Throws when bytes are waiting before a request is sent: nothing was asked for, so
    /// they are a late or duplicated reply, or noise, and the next reply could not be told
    /// from them. Also notices a TCP peer that has closed the connection.
    private func checkQuiet(_ fd: Int32, _ unit: Int, _ function: String, _ address: Int?) throws(ModbusError) {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return }
        var pending: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &pending)
        if pending > 0 {
            throw invalid(unit, function, address, "\(pending) bytes arrived that no request asked for")
        }
        if p.revents & Int16(POLLERR | POLLHUP | POLLIN) != 0 {
            // Readable with nothing to read: the peer closed the connection.
            throw ModbusError(device: "\(endpoint)/unit \(unit)", unit: unit, function: function, address: address,
                              reason: Self.text(ECONNRESET), kind: .connection(errno: ECONNRESET))
        }
    }
}
