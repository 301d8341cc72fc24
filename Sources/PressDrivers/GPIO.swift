import CGPIOD
#if canImport(Glibc)
import Glibc
#endif

/// A GPIO error that names the chip and line.
public struct GPIOError: Error, CustomStringConvertible, Equatable {
    public var chip: String
    public var line: Int?
    public var operation: String
    public var reason: String
    public var description: String {
        "gpio \(chip)" + (line.map { " line \($0)" } ?? "") + ": \(operation): \(reason)"
    }
}

/// Our own view of a GPIO line, so that drivers (HX711, stepper, valves) do not depend
/// on libgpiod's API generation: a libgpiod 2 backend, or the simulated lines the tests
/// use, implement the same protocol.
public protocol DigitalLine: AnyObject {
    func get() throws(GPIOError) -> Bool
    func set(_ value: Bool) throws(GPIOError)
}

/// A GPIO chip opened through libgpiod 1.6 (gpiod_chip_open_lookup).
public final class GPIOChip {
    public let name: String
    let chip: OpaquePointer

    /// Opens a chip by name (`gpiochip0`), path (`/dev/gpiochip0`), label or number.
    public init(_ name: String) throws(GPIOError) {
        guard let c = gpiod_chip_open_lookup(name) else {
            throw GPIOError(chip: name, line: nil, operation: "open chip", reason: String(cString: strerror(errno)))
        }
        self.name = name
        self.chip = c
    }

    deinit { gpiod_chip_close(chip) }

    /// Requests `offset` as an output (gpiod_line_request_output) or input.
    public func line(_ offset: Int, output: Bool, initial: Bool = false, consumer: String = "pressd") throws(GPIOError) -> GPIOLine {
        guard let l = gpiod_chip_get_line(chip, UInt32(offset)) else {
            throw GPIOError(chip: name, line: offset, operation: "get line", reason: String(cString: strerror(errno)))
        }
        let rc = output ? gpiod_line_request_output(l, consumer, initial ? 1 : 0) : gpiod_line_request_input(l, consumer)
        guard rc == 0 else {
            throw GPIOError(chip: name, line: offset, operation: output ? "request output" : "request input", reason: String(cString: strerror(errno)))
        }
        return GPIOLine(chip: self, line: l, offset: offset)
    }
}

/// A requested libgpiod line. Released when dropped.
public final class GPIOLine: DigitalLine {
    let chip: GPIOChip
    let line: OpaquePointer
    public let offset: Int

    init(chip: GPIOChip, line: OpaquePointer, offset: Int) { self.chip = chip; self.line = line; self.offset = offset }
    deinit { gpiod_line_release(line) }

    public func get() throws(GPIOError) -> Bool {
        let v = gpiod_line_get_value(line)
        guard v >= 0 else { throw GPIOError(chip: chip.name, line: offset, operation: "get value", reason: String(cString: strerror(errno))) }
        return v == 1
    }

    public func set(_ value: Bool) throws(GPIOError) {
        guard gpiod_line_set_value(line, value ? 1 : 0) == 0 else {
            throw GPIOError(chip: chip.name, line: offset, operation: "set value", reason: String(cString: strerror(errno)))
        }
    }
}

