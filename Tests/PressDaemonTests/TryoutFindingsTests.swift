import Foundation
import Testing
import PressCore
import PressProtocol
@testable import PressDaemon

/// Found by a tester trying pressd from its docs as a technician, then as an attacker.
@Suite("Findings of the try-out", .serialized)
struct TryoutFindingsTests {
    @Test("control characters sent by a socket peer are shown as escapes by log events, never sent to the terminal")
    func controlCodesEscaped() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        _ = try c.rawCall(#"{"id": 1, "method": "set", "params": {"channel": "A\u001b[2J\u001b[32mALL OK", "value": 5, "unit": "MPa"}}"#)
        usleep(1_500_000) // the run-log writer commits the audit record
        let r = try runProcess(binDir + "/pressctl", ["log", "events", "--kind", "request", "--socket", d.socket])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.unicodeScalars.contains { $0.value == 0x1B }, "an ESC reached the terminal")
        #expect(r.stdout.contains("\\u{1B}[2J"), "\(r.stdout)")
    }

    @Test("a loop of steps that take no time is refused (it flooded the run log); so is a count over a million")
    func spinningLoop() throws {
        let limits = PressureLimits(minSetpoint: 0.1, maxSetpoint: 12, trip: 15)
        let spin = PressureProgram(name: "p", steps: [.set(mpa: 5, ramp: nil), .loop(toStep: 0, count: 1_000_000)])
        #expect(spin.validationErrors(limits: limits).first?.message.contains("take no time") == true)
        let huge = PressureProgram(name: "p", steps: [.hold(mpa: 5, duration: 1), .loop(toStep: 0, count: 1_000_000_000_000)])
        #expect(huge.validationErrors(limits: limits).first?.message.contains("more than 1 000 000") == true)
        let fine = PressureProgram(name: "p", steps: [.set(mpa: 5, ramp: nil), .hold(mpa: nil, duration: 10), .loop(toStep: 0, count: 100)])
        #expect(fine.validationErrors(limits: limits).isEmpty)
    }

    @Test("a ramp of 1e-300 MPa/s (it froze a channel with no fault) or 1e308 is refused, on the socket and in a program")
    func rampBounds() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        _ = try d.client()
        for ramp in ["1e-300", "1e308"] {
            let r = try runProcess(binDir + "/pressctl", ["set", "8MPa", "-c", "B", "--ramp", ramp, "--socket", d.socket])
            #expect(r.status == 1 && r.stderr.contains("is outside 0.0001…1000.0 MPa/s"), "\(ramp): \(r.stderr)")
        }
        let ok = try runProcess(binDir + "/pressctl", ["set", "8MPa", "-c", "B", "--ramp", "0.5", "--socket", d.socket])
        #expect(ok.status == 0, "\(ok.stderr)")
        let limits = PressureLimits(minSetpoint: 0.1, maxSetpoint: 12, trip: 15)
        #expect(!PressureProgram(name: "p", steps: [.ramp(to: 5, rate: 1e-300)]).validationErrors(limits: limits).isEmpty)
    }

    @Test("a request over 64 KiB gets the daemon's own refusal, not 'pressd is not running'")
    func oversizeRequest() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        _ = try d.client()
        let big = String(repeating: "x", count: 100_000)
        let r = try runProcess(binDir + "/pressctl", ["run", "set", "-c", "A", "--cell-id", big, "--socket", d.socket])
        #expect(r.status == 1 && r.stderr.contains("exceeds the limit of 65536 bytes"), "\(r.status): \(r.stderr.prefix(300))")
    }

    @Test("a mirror on the actuator's own register, or a unit id over 247, is refused by key and line; --check-config prints the warnings")
    func configChecks() throws {
        let base = try hardwareConfig(transport: .tcp(host: "127.0.0.1", port: 1502))
        let onActuator = base + "\n[[channels.B.mirror]]\nquantity = \"pressure_mpa\"\ndevice = \"gateway\"\nunit = 2\naddress = 0\n"
        do { _ = try DaemonConfig.parse(onActuator, file: "m.toml"); Issue.record("a mirror onto the actuator was accepted") }
        catch { #expect(error.key == "channels.B.mirror[0].address" && error.message.contains("the actuator"), "\(error)") }
        let badUnit = base.replacingOccurrences(of: "unit = 2\n", with: "unit = 999\n")
        do { _ = try DaemonConfig.parse(badUnit, file: "m.toml"); Issue.record("unit 999 was accepted") }
        catch { #expect(error.message.contains("0…247") && error.line != nil, "\(error)") }
        let old = try String(contentsOfFile: defaultConfigPath, encoding: .utf8)
            .replacingOccurrences(of: "# preset = \"sulfide/li-metal\"", with: "preset = \"oxide\" #")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("old-\(getpid()).toml").path
        try old.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try runProcess(binDir + "/pressd", ["--config", path, "--check-config"])
        #expect(r.status == 0 && r.stdout.contains("warning: ") && r.stdout.contains("old preset name"), "\(r.stdout)\(r.stderr)")
    }

    @Test("-c A -c B is refused instead of acting on B")
    func twoChannels() throws {
        let r = try runProcess(binDir + "/pressctl", ["set", "3MPa", "-c", "A", "-c", "B", "--socket", "/nonexistent/s"])
        #expect(r.status == 64 && r.stderr.contains("--channel given more than once"), "\(r.stderr)")
    }
}
