import Foundation
import Testing
import PressCore
@testable import PressDrivers
@testable import PressDaemon

/// Simulated lines for one chip: an HX711 that converts continuously (a new
/// conversion is ready as soon as the last frame's gain pulses end), counting step
/// lines, and settable inputs.
final class SimChip: LineProvider, @unchecked Sendable {
    let lock = NSLock()
    var counts: Int32 = 0
    var hxPulses = 0, hxFrameLength = 25, hxClockHigh = false, hxCurrent: UInt32 = 0
    var steps: [String: Int] = [:]
    var dirs: [String: Bool] = [:]
    var inputs: [String: Bool] = [:]
    var requested: [String] = []

    final class Line: DigitalLine {
        let chip: SimChip, key: String, output: Bool, activeLow: Bool
        init(_ c: SimChip, _ k: String, _ o: Bool, _ a: Bool) { chip = c; key = k; output = o; activeLow = a }
        func get() throws(GPIOError) -> Bool { chip.get(key) != activeLow }
        func set(_ v: Bool) throws(GPIOError) { chip.set(key, v != activeLow) }
    }

    func request(_ spec: LineSpec, output: Bool, consumer: String) throws(GPIOError) -> DigitalLine {
        let key = spec.name ?? "\(spec.offset!)"
        lock.lock(); requested.append(key); lock.unlock()
        return Line(self, key, output, spec.activeLow)
    }

    func get(_ key: String) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if key == "6" { // HX711 DOUT
            if hxPulses == 0 { return false } // always ready
            if hxPulses <= 24 { return (hxCurrent >> UInt32(24 - hxPulses)) & 1 == 1 }
            return true
        }
        return inputs[key] ?? false
    }

    func set(_ key: String, _ v: Bool) {
        lock.lock(); defer { lock.unlock() }
        switch key {
        case "5": // HX711 PD_SCK
            if v && !hxClockHigh {
                if hxPulses == 0 { hxCurrent = UInt32(bitPattern: counts) & 0xFF_FFFF }
                hxPulses += 1
            }
            if !v && hxClockHigh && hxPulses >= hxFrameLength { hxPulses = 0 }
            hxClockHigh = v
        case "20": if v { steps["A", default: 0] += dirs["A"] == false ? -1 : 1 }
        case "21": dirs["A"] = v
        default: inputs[key] = v
        }
    }
}

@Suite("GPIO devices in the hardware backend (simulated lines)", .serialized)
struct GPIOBackendTests {
    @Test("the example configs parse; GPIO keys on a Modbus device are refused with the key")
    func configs() throws {
        for f in ["rpi-hx711-stepper.toml", "modbus-rtu-bus.toml", "modbus-tcp-pneumatic.toml"] {
            _ = try DaemonConfig.load(path: repoRoot + "/config/examples/" + f)
        }
        let text = try String(contentsOfFile: repoRoot + "/config/examples/rpi-hx711-stepper.toml", encoding: .utf8)
            .replacingOccurrences(of: "[devices.pi]\ntype = \"gpio\"\nchip = \"gpiochip0\"", with: "[devices.pi]\ntype = \"modbus-tcp\"\nhost = \"127.0.0.1\"")
            .replacingOccurrences(of: "consumer = \"pressd\"\n", with: "")
        do { _ = try DaemonConfig.parse(text, file: "x.toml"); Issue.record("accepted") }
        catch { #expect(error.key == "channels.A.actuator.device" && error.line != nil && error.message.contains("no GPIO device 'pi'"), "\(error)") }
    }

    @Test("HX711 counts become newtons, the stepper follows the output, an active-low e-stop reads true when pulled low")
    func backend() throws {
        let cfg = try DaemonConfig.load(path: repoRoot + "/config/examples/rpi-hx711-stepper.toml")
        let chip = SimChip()
        chip.counts = 2_000_000 // × 0.00025 N/count = 500 N
        chip.inputs["GPIO27"] = true // button released: line high → not stopped (active-low)
        let start = Date()
        let (core, modbus, gpio) = try RigBuilder.hardware(cfg, clock: { Date().timeIntervalSince(start) }, lines: { _ throws(GPIOError) in chip })
        #expect(modbus.isEmpty && gpio.count == 1)
        try gpio[0].start()
        defer { gpio[0].stop() }
        #expect(Set(chip.requested).isSuperset(of: ["5", "6", "17", "GPIO27", "20", "21", "16"]))
        let backend = core.channels[0].backend
        usleep(100_000)
        var r = backend.read(now: Date().timeIntervalSince(start))
        #expect(abs((r.force?.value ?? 0) - 500) < 1e-9)
        #expect(r.emergencyStop == false)
        chip.lock.lock(); chip.inputs["GPIO27"] = false; chip.lock.unlock() // pressed
        usleep(50_000)
        r = backend.read(now: Date().timeIntervalSince(start))
        #expect(r.emergencyStop == true)
        // 250 µm at 1.25 µm/step: 200 steps.
        backend.apply(output: 250, now: 0)
        let deadline = Date().addingTimeInterval(3)
        while (backend.presentOutput ?? 0) < 249.9 && Date() < deadline { usleep(20_000) }
        #expect(abs((backend.presentOutput ?? 0) - 250) < 1e-9)
        chip.lock.lock(); let n = chip.steps["A"] ?? 0; chip.lock.unlock()
        #expect(n == 200)
    }

    @Test("a GPIO chip that does not exist stops pressd at start with a message naming it")
    func missingChip() throws {
        let text = try String(contentsOfFile: repoRoot + "/config/examples/rpi-hx711-stepper.toml", encoding: .utf8)
            .replacingOccurrences(of: "chip = \"gpiochip0\"", with: "chip = \"gpiochip-pressd-missing\"")
        let d = try DaemonProcess(configEdits: [], timeScale: 1, configOverride: text)
        d.process.waitUntilExit()
        defer { d.cleanup() }
        #expect(d.process.terminationStatus == 1)
        #expect(d.log.contains("gpio gpiochip-pressd-missing: open chip"))
    }
}

/// Lines that log how long they were high.
final class TimingChip: LineProvider, @unchecked Sendable {
    let lock = NSLock()
    var highSince: [String: Date] = [:]
    var highTotal: [String: Double] = [:]
    final class Line: DigitalLine {
        let chip: TimingChip, key: String
        init(_ c: TimingChip, _ k: String) { chip = c; key = k }
        func get() throws(GPIOError) -> Bool { false }
        func set(_ v: Bool) throws(GPIOError) { chip.set(key, v) }
    }
    func request(_ spec: LineSpec, output: Bool, consumer: String) throws(GPIOError) -> DigitalLine { Line(self, spec.name ?? "\(spec.offset!)") }
    func set(_ key: String, _ v: Bool) {
        lock.lock(); defer { lock.unlock() }
        if v, highSince[key] == nil { highSince[key] = Date() }
        if !v, let s = highSince.removeValue(forKey: key) { highTotal[key, default: 0] += Date().timeIntervalSince(s) }
    }
    func total(_ key: String) -> Double { lock.lock(); defer { lock.unlock() }; return highTotal[key] ?? 0 }
}

@Suite("Valve pair PWM on GPIO", .serialized)
struct ValveTests {
    @Test("+0.5 keeps the inlet open half the time and the exhaust shut; −0.3 pulses the exhaust; a too-short pulse keeps both shut")
    func valves() throws {
        let chip = TimingChip()
        let v = ValvePairOutput(id: "B.valves", inlet: LineSpec(offset: 22), exhaust: LineSpec(offset: 23), frequency: 10, minPulse: 0.02)
        let poller = GPIODevicePoller(name: "pi", provider: chip, hx711s: [], inputs: [], steppers: [], valves: [v], clock: { 0 })
        try poller.start()
        defer { poller.stop() }
        poller.setValves(v.id, command: 0.5)
        usleep(2_000_000)
        #expect(abs(chip.total("22") / 2 - 0.5) < 0.1, "inlet duty \(chip.total("22") / 2)")
        #expect(chip.total("23") == 0)
        poller.setValves(v.id, command: -0.3)
        let before = chip.total("23")
        usleep(2_000_000)
        #expect(abs((chip.total("23") - before) / 2 - 0.3) < 0.1)
        poller.setValves(v.id, command: 0.1) // 10 ms at 10 Hz: shorter than a valve can open
        let (i0, e0) = (chip.total("22"), chip.total("23"))
        usleep(1_000_000)
        #expect(chip.total("22") - i0 < 0.02)
        #expect(chip.total("23") - e0 < 0.02)
    }
}
