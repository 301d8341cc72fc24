import Foundation
import Testing
@testable import PressDrivers

@Suite("Device driver wrappers")
struct DriverTests {
    @Test("register codec: a 32-bit float in every word order", arguments: [
        (WordOrder.abcd, [UInt16(0x42F6), 0xE979]), (.cdab, [0xE979, 0x42F6]),
        (.badc, [0xF642, 0x79E9]), (.dcba, [0x79E9, 0xF642]),
    ])
    func floatOrders(order: WordOrder, regs: [UInt16]) {
        let c = RegisterCodec(type: .f32, order: order)
        #expect(abs(c.decode(regs[...]) - 123.456) < 1e-4)
        #expect(c.encode(123.456) == regs)
    }

    @Test("register codec: every type and order round-trips with scale and offset")
    func roundTrip() {
        let samples: [RegisterType: [Double]] = [
            .u16: [0, 1, 65535], .i16: [-32768, -1, 0, 32767],
            .u32: [0, 70000, 4_294_967_295], .i32: [-2_147_483_648, -70000, 2_147_483_647], .f32: [-1.5, 0, 3.25e6],
        ]
        for (type, values) in samples {
            for order in WordOrder.allCases {
                let c = RegisterCodec(type: type, order: order, scale: 0.5, offset: -10)
                for raw in values {
                    let eng = raw * 0.5 - 10
                    let regs = c.encode(eng)
                    #expect(regs.count == type.count)
                    #expect(c.decode(regs[...]) == eng, "\(type) \(order) \(raw)")
                }
            }
        }
    }

    @Test("register codec: integers saturate instead of wrapping")
    func saturation() {
        #expect(RegisterCodec(type: .u16).encode(70000) == [65535])
        #expect(RegisterCodec(type: .u16).encode(-5) == [0])
        #expect(RegisterCodec(type: .i16).encode(-40000) == [UInt16(bitPattern: -32768)])
    }

    @Test("Modbus TCP: a refused connection names the device and the call")
    func modbusRefused() throws {
        // Find a port nobody listens on: bind, read the port, close.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in(); a.sin_family = sa_family_t(AF_INET); a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        let port = Int(UInt16(bigEndian: a.sin_port))
        close(s)
        do {
            _ = try ModbusConnection.tcp(host: "127.0.0.1", port: port, unit: 3)
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.device == "tcp://127.0.0.1:\(port)/unit 3")
            #expect(error.function == "connect")
            #expect(error.description.contains("127.0.0.1:\(port)"))
            #expect(error.description.lowercased().contains("refused"))
        }
    }

    @Test("Modbus RTU: a missing serial device is named")
    func modbusMissingSerial() {
        #expect {
            _ = try ModbusConnection.rtu(device: "/dev/ttyPRESSD-none", baud: 19200, parity: "E")
        } throws: { e in
            (e as? ModbusError)?.description.contains("/dev/ttyPRESSD-none@19200-8E1") == true
        }
    }

    @Test("GPIO: opening a missing chip gives an error naming it")
    func missingChip() {
        #expect {
            _ = try GPIOChip("gpiochip-pressd-missing")
        } throws: { e in
            guard let g = e as? GPIOError else { return false }
            return g.chip == "gpiochip-pressd-missing" && g.description.hasPrefix("gpio gpiochip-pressd-missing: open chip:")
        }
    }
}
