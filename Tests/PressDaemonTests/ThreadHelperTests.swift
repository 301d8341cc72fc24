import Foundation
import Logging
import Testing
import PressCore
@testable import PressDrivers
@testable import PressDaemon

/// The names this process's threads carry at the OS level (`/proc/self/task/*/comm`: what
/// `top -H` and `ps -L` show).
func osThreadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// Issue 23: "pressd-mqtt is not named at OS level; stepper threads truncate to one name".
@Suite("Thread names at the OS level", .serialized)
struct ThreadHelperTests {
    @Test("two steppers and two valve pairs on one GPIO device: each thread has a name of its own at the OS level")
    func stepperThreadsAreDistinguishable() throws {
        let chip = TimingChip()
        func stepper(_ ch: String, _ base: Int) -> StepperOutput {
            StepperOutput(id: "\(ch).stepper", step: LineSpec(offset: base), dir: LineSpec(offset: base + 1), enable: nil,
                          micronsPerStep: 1.25, maxRate: 2000, acceleration: 8000)
        }
        func valves(_ ch: String, _ base: Int) -> ValvePairOutput {
            ValvePairOutput(id: "\(ch).valves", inlet: LineSpec(offset: base), exhaust: LineSpec(offset: base + 1), frequency: 5, minPulse: 0.02)
        }
        let poller = GPIODevicePoller(name: "tnchip", provider: chip, hx711s: [], inputs: [],
                                      steppers: [stepper("tnA", 30), stepper("tnB", 32)], valves: [valves("tnA", 34), valves("tnB", 36)], clock: { 0 })
        try poller.start()
        defer { poller.stop() }
        let wanted = ["pd-stepper-tnA", "pd-stepper-tnB", "pd-valves-tnA", "pd-valves-tnB", "pd-gpio-tnchip"]
        let seen = waitFor(5) { Set(wanted).isSubset(of: osThreadNames()) }
        #expect(seen, "threads: \(osThreadNames().filter { $0.hasPrefix("p") }.sorted())")
    }

    @Test("the MQTT publisher's thread is named pressd-mqtt at the OS level")
    func mqttThreadIsNamed() throws {
        // A broker that is not there (port 9 on loopback): the thread runs and retries.
        let text = try defaultConfigText().replacingOccurrences(of: "# [mqtt]\n# host = \"broker.lab\"", with: "[mqtt]\nhost = \"127.0.0.1\"\nport = 9")
        let cfg = try DaemonConfig.parse(text, file: "mqtt.toml")
        let mqttConfig = try #require(cfg.mqtt)
        let loop = ControlLoop(core: RigBuilder.simulated(cfg), rate: cfg.loopRate, clock: .simulated)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let publisher = MQTTPublisher(config: mqttConfig, loop: loop, channels: cfg.channels.map(\.name), version: "test", logger: logger)
        publisher.start()
        defer { publisher.stop() }
        #expect(waitFor(5) { osThreadNames().contains("pressd-mqtt") }, "threads: \(osThreadNames().sorted())")
    }

    @Test("OS names: the full name when it fits, else pd-ROLE-INSTANCE, else the instance's ends around ~; never over 15 bytes nor cut inside a character")
    func osNameScheme() {
        #expect(ThreadName("control").osName == "pressd-control")
        #expect(ThreadName("modbus", instance: "p").osName == "pressd-modbus-p")
        #expect(ThreadName("modbus", instance: "plc").osName == "pd-modbus-plc")
        #expect(ThreadName("stepper", instance: "A").osName == "pd-stepper-A")
        #expect(ThreadName("stepper", instance: "left-1").osName == "pd-stepper-le~1")
        #expect(ThreadName("stepper", instance: "left-2").osName == "pd-stepper-le~2")
        #expect(ThreadName("modbus", instance: "loadcells-east").osName == "pd-modbus-lo~st")
        for name in [ThreadName("gpio", instance: "gpiochip-with-a-long-name"), ThreadName("stepper", instance: "Zelle-Ä-ü"),
                     ThreadName("a-very-long-role-name"), ThreadName("valves", instance: "通道一"), ThreadName("x", instance: "ÄÄÄÄÄÄÄÄÄÄÄ")] {
            let os = name.osName
            #expect(os.utf8.count <= 15 && !os.isEmpty, "\(name.full) → \(os) (\(os.utf8.count) bytes)")
            #expect(String(validatingCString: os) == os, "\(os) is not whole characters")
        }
    }

    @Test("two live threads with the same name get distinct OS names; a name is free again once its thread ended")
    func osNamesAreUnique() {
        let gate = DispatchSemaphore(value: 0)
        let a = DaemonThread(ThreadName("tnuniq")) { t in while !t.isStopping { usleep(1000) } }
        let b = DaemonThread(ThreadName("tnuniq")) { _ in gate.wait() }
        a.start(); b.start()
        #expect(waitFor(5) { a.osName != nil && b.osName != nil })
        #expect(a.osName != b.osName && Set([a.osName, b.osName]) == Set(["pressd-tnuniq", "pressd-tnuniq~2"]), "\(String(describing: a.osName)), \(String(describing: b.osName))")
        #expect(waitFor(5) { osThreadNames().filter { $0.hasPrefix("pressd-tnuniq") }.count == 2 })
        gate.signal()
        #expect(b.join(timeout: 10) && b.join(timeout: 0)) // a second join returns at once
        #expect(a.stop(timeout: 10))
        let c = DaemonThread(ThreadName("tnuniq")) { _ in }
        c.start()
        #expect(c.join(timeout: 10))
        #expect(DaemonThread(ThreadName("tnuniq")) { _ in }.join(timeout: 0), "a thread never started is not waited for")
    }
}
