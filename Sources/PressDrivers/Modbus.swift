import CModbus
#if canImport(Glibc)
import Glibc
#endif

/// A Modbus error that names the device, the function and the register address.
public struct ModbusError: Error, CustomStringConvertible, Equatable {
    /// `tcp://host:port` or `rtu:///dev/ttyUSB0@19200-8N1`, with the unit id.
    public var device: String
    /// The Modbus function or library call that failed.
    public var function: String
    public var address: Int?
    /// libmodbus' text for the error (modbus_strerror).
    public var reason: String

    public var description: String {
        "\(device): \(function)" + (address.map { " at register \($0)" } ?? "") + ": \(reason)"
    }
}

/// One libmodbus connection (TCP or RTU). Not thread-safe: it belongs to one thread,
/// the one that polls its devices (see docs/architecture.md).
public final class ModbusConnection {
    public let device: String
    private let ctx: OpaquePointer

    private init(ctx: OpaquePointer, device: String) { self.ctx = ctx; self.device = device }

    deinit {
        modbus_close(ctx)
        modbus_free(ctx)
    }

    private static func lastError() -> String { String(cString: modbus_strerror(errno)) }

    /// Opens a Modbus TCP connection (modbus_new_tcp + modbus_connect).
    public static func tcp(host: String, port: Int, unit: Int = 1, timeout: Double = 0.5) throws(ModbusError) -> ModbusConnection {
        let name = "tcp://\(host):\(port)/unit \(unit)"
        guard let ctx = modbus_new_tcp(host, Int32(port)) else {
            throw ModbusError(device: name, function: "modbus_new_tcp", address: nil, reason: lastError())
        }
        return try open(ctx, name: name, unit: unit, timeout: timeout)
    }

    /// Opens a Modbus RTU connection on a serial device (modbus_new_rtu + modbus_connect).
    /// - Parameter parity: "N", "E" or "O".
    public static func rtu(device path: String, baud: Int, parity: Character = "N", dataBits: Int = 8, stopBits: Int = 1,
                           unit: Int = 1, timeout: Double = 0.5) throws(ModbusError) -> ModbusConnection {
        let name = "rtu://\(path)@\(baud)-\(dataBits)\(parity)\(stopBits)/unit \(unit)"
        guard "NEO".contains(parity), let p = parity.asciiValue,
              let ctx = modbus_new_rtu(path, Int32(baud), CChar(bitPattern: p), Int32(dataBits), Int32(stopBits)) else {
            throw ModbusError(device: name, function: "modbus_new_rtu", address: nil, reason: lastError())
        }
        return try open(ctx, name: name, unit: unit, timeout: timeout)
    }

    private static func open(_ ctx: OpaquePointer, name: String, unit: Int, timeout: Double) throws(ModbusError) -> ModbusConnection {
        modbus_set_slave(ctx, Int32(unit))
        modbus_set_response_timeout(ctx, UInt32(timeout), UInt32((timeout - Double(Int(timeout))) * 1e6))
        guard modbus_connect(ctx) == 0 else {
            let reason = lastError()
            modbus_free(ctx)
            throw ModbusError(device: name, function: "connect", address: nil, reason: reason)
        }
        return ModbusConnection(ctx: ctx, device: name)
    }

    /// Reads `count` registers or bits of `table` from `unit` (modbus_set_slave, then
    /// modbus_read_registers / _input_registers / _bits / _input_bits). Bits come back
    /// as 0 or 1.
    public func read(unit: Int, table: ModbusTable, address: Int, count: Int) throws(ModbusError) -> [UInt16] {
        modbus_set_slave(ctx, Int32(unit))
        let dev = "\(device.split(separator: "/unit").first ?? "")/unit \(unit)"
        switch table {
        case .holding, .input:
            var out = [UInt16](repeating: 0, count: count)
            let n = table == .holding ? modbus_read_registers(ctx, Int32(address), Int32(count), &out)
                                      : modbus_read_input_registers(ctx, Int32(address), Int32(count), &out)
            guard n == count else { throw ModbusError(device: dev, function: table.readFunction, address: address, reason: Self.lastError()) }
            return out
        case .coil, .discrete:
            var bits = [UInt8](repeating: 0, count: count)
            let n = table == .coil ? modbus_read_bits(ctx, Int32(address), Int32(count), &bits)
                                   : modbus_read_input_bits(ctx, Int32(address), Int32(count), &bits)
            guard n == count else { throw ModbusError(device: dev, function: table.readFunction, address: address, reason: Self.lastError()) }
            return bits.map { UInt16($0) }
        }
    }

    /// Writes registers to `unit`: one with function 0x06, several with 0x10
    /// (modbus_write_register / modbus_write_registers).
    public func writeRegisters(unit: Int, address: Int, values: [UInt16]) throws(ModbusError) {
        modbus_set_slave(ctx, Int32(unit))
        let dev = "\(device.split(separator: "/unit").first ?? "")/unit \(unit)"
        if values.count == 1 {
            guard modbus_write_register(ctx, Int32(address), values[0]) == 1 else {
                throw ModbusError(device: dev, function: "write single register (0x06)", address: address, reason: Self.lastError())
            }
        } else {
            var v = values
            guard modbus_write_registers(ctx, Int32(address), Int32(v.count), &v) == v.count else {
                throw ModbusError(device: dev, function: "write multiple registers (0x10)", address: address, reason: Self.lastError())
            }
        }
    }

    /// Writes one coil of `unit` (function 0x05).
    public func writeCoil(unit: Int, address: Int, on: Bool) throws(ModbusError) {
        modbus_set_slave(ctx, Int32(unit))
        try writeCoil(address: address, on: on)
    }

    /// Puts an RTU connection's serial port in RS-485 mode (modbus_rtu_set_serial_mode).
    /// Returns false when the port cannot do it (USB adapters that switch direction in
    /// hardware, pseudo-terminals).
    @discardableResult
    public func enableRS485() -> Bool { modbus_rtu_set_serial_mode(ctx, Int32(MODBUS_RTU_RS485)) == 0 }

    /// Writes one coil (function 0x05, modbus_write_bit).
    public func writeCoil(address: Int, on: Bool) throws(ModbusError) {
        guard modbus_write_bit(ctx, Int32(address), on ? 1 : 0) == 1 else {
            throw ModbusError(device: device, function: "write single coil (0x05)", address: address, reason: Self.lastError())
        }
    }
}
