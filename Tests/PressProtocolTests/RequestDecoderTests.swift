import Foundation
import Testing
@testable import PressProtocol

@Suite("Request decoder")
struct RequestDecoderTests {
    let d = RequestDecoder()
    func decode(_ s: String) -> (id: RequestID?, method: String?, result: Result<Command, ErrorBody>) { d.decode(Data(s.utf8)) }
    func code(_ s: String) -> ErrorCode? { if case .failure(let e) = decode(s).result { return e.code }; return nil }
    func message(_ s: String) -> String { if case .failure(let e) = decode(s).result { return e.message }; return "" }

    @Test("valid requests decode to typed commands, ids echo")
    func valid() {
        let r = decode(#"{"id":7,"method":"set","params":{"channel":"A","value":5,"unit":"MPa","ramp_mpa_per_s":0.5}}"#)
        #expect(r.id == .int(7))
        guard case .success(.set(let p)) = r.result else { Issue.record("not a set"); return }
        #expect(p.channel == "A" && p.value == 5 && p.rampMpaPerS == 0.5)
        #expect(decode(#"{"id":"x","method":"status"}"#).id == .string("x"))
        if case .success(.hello) = decode(#"{"method":"hello","params":null}"#).result {} else { Issue.record("hello") }
    }

    @Test("sweep: direction, protocol (wire key `protocol`), margin and growth threshold decode; they encode back under the same keys")
    func sweepCriteria() throws {
        let r = decode(#"{"method":"sweep","params":{"channel":"A","action":"start","from_mpa":6,"to_mpa":1.5,"direction":"down_up","protocol":"dynamic","margin":0.3,"growth_threshold_per_h":0.1}}"#)
        guard case .success(.sweep(let p)) = r.result else { Issue.record("not a sweep: \(r.result)"); return }
        #expect(p.direction == "down_up" && p.sweepProtocol == "dynamic" && p.margin == 0.3 && p.growthThresholdPerH == 0.1)
        let json = String(decoding: try ControlProtocol.encoder().encode(p), as: UTF8.self)
        #expect(json.contains(#""protocol":"dynamic""#) && json.contains(#""growth_threshold_per_h":0.1"#) && json.contains(#""direction":"down_up""#), "\(json)")
        #expect(message(#"{"method":"sweep","params":{"channel":"A","action":"start","sweep_protocol":"dynamic"}}"#).contains("unknown parameter 'sweep_protocol'"))
    }

    @Test("structured errors name the problem")
    func errors() {
        #expect(code("nope") == .parseError)
        #expect(code("[1]") == .invalidRequest)
        #expect(code("42") == .invalidRequest)
        #expect(code(#"{"id":1}"#) == .invalidRequest)
        #expect(code(#"{"id":true,"method":"status"}"#) == .invalidRequest)
        #expect(code(#"{"id":1.5,"method":"status"}"#) == .invalidRequest)
        #expect(message(#"{"method":"status","extra":1}"#).contains("unknown field 'extra'"))
        #expect(code(#"{"method":"explode"}"#) == .unknownMethod)
        #expect(message(#"{"method":"set","params":{"channel":"A","value":5,"unit":"MPa","rmap":1}}"#).contains("unknown parameter 'rmap'"))
        #expect(message(#"{"method":"set","params":{"channel":"A","unit":"MPa"}}"#).contains("missing key 'value'"))
        #expect(message(#"{"method":"set","params":{"channel":"A","value":"5","unit":"MPa"}}"#).contains("'value' must be of type number"))
        #expect(code(#"{"method":"set","params":[1]}"#) == .invalidParams)
        #expect(message(#"{"method":"run_set","params":{"channel":"A","metadata":{"cell":"x"}}}"#).contains("unknown metadata field 'cell'"))
        #expect(message(#"{"method":"hello","params":{"x":1}}"#).contains("accepted: none"))
    }

    @Test("roles: reads are for observers, writes for operators, reload and simulation for admins")
    func roles() {
        #expect(RequestDecoder.role(for: "status") == .observer)
        #expect(RequestDecoder.role(for: "subscribe") == .observer)
        #expect(RequestDecoder.role(for: "set") == .operator)
        #expect(RequestDecoder.role(for: "program_start") == .operator)
        #expect(RequestDecoder.role(for: "ack") == .operator)
        #expect(RequestDecoder.role(for: "reload") == .admin)
        #expect(RequestDecoder.role(for: "sim_inject") == .admin)
        // Every method has a parameter list.
        for m in ControlProtocol.methods { #expect(RequestDecoder.parameterKeys[m] != nil, "\(m)") }
    }
}

/// A bounded fuzz run, deterministic by seed: random bytes, random JSON documents, and
/// mutations of valid requests. The decoder must answer every input with a command or
/// a structured error with a message, and never crash or hang.
@Suite("Request decoder fuzzing")
struct RequestDecoderFuzzTests {
    struct RNG {
        var s: UInt64
        mutating func next() -> UInt64 { s &+= 0x9E37_79B9_7F4A_7C15; var z = s; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB; return z ^ (z >> 31) }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let seeds: [String] = [
        #"{"id":1,"method":"set","params":{"channel":"A","value":5,"unit":"MPa"}}"#,
        #"{"id":"q","method":"subscribe","params":{"channels":["A","B"],"rate_hz":10}}"#,
        #"{"id":3,"method":"program_start","params":{"channel":"A","program":"[[steps]]\ntype=\"set\"\nmpa=5\n"}}"#,
        #"{"id":4,"method":"run_set","params":{"channel":"A","metadata":{"cell_id":"x","preparation_pressure_mpa":300}}}"#,
        #"{"id":5,"method":"log_export","params":{"since":0,"until":1e12}}"#,
        #"{"id":6,"method":"sim_inject","params":{"channel":"B","supply_mpa":0.2,"emergency_stop":true}}"#,
        #"{"method":"ack"}"#,
        #"{"id":7,"method":"tune","params":{"channel":"A","action":"start","rule":"amigo","excursion_mpa":0.25,"cycles":8}}"#,
        #"{"id":8,"method":"sweep","params":{"channel":"A","action":"start","from_mpa":8,"to_mpa":1,"steps":12,"dwell_s":60}}"#,
        #"{"id":9,"method":"supervisor","params":{"channel":"A","action":"lock"}}"#,
        #"{"id":10,"method":"push_signals","params":{"channel":"B","interfacial_resistance_ohm_cm2":23.4,"temperature_c":25}}"#,
        #"{"id":11,"method":"sweeps","params":{"since":0,"until":1e12,"channel":"A"}}"#,
    ]

    func check(_ bytes: [UInt8], _ d: RequestDecoder, _ stats: inout (ok: Int, err: Int)) {
        let (_, _, r) = d.decode(Data(bytes))
        switch r {
        case .success: stats.ok += 1
        case .failure(let e):
            stats.err += 1
            #expect(!e.message.isEmpty)
        }
    }

    @Test("every seed is a valid request (so the mutations start from the real protocol)")
    func seedsDecode() {
        let d = RequestDecoder()
        for seed in Self.seeds {
            if case .failure(let e) = d.decode(Data(seed.utf8)).result { Issue.record("\(seed): \(e.message)") }
        }
    }

    @Test("50 000 inputs: random bytes, random JSON, mutated requests")
    func fuzz() {
        let d = RequestDecoder()
        var rng = RNG(s: 0x5EED)
        var stats = (ok: 0, err: 0)
        let alphabet = Array(#"{}[]":,0123456789.-eE truefalsnul\abcdefghijklmnopqrstuvwxyz_ABMP"#.utf8)
        for _ in 0..<10_000 { // random bytes
            check((0..<rng.int(64)).map { _ in UInt8(rng.int(256)) }, d, &stats)
        }
        for _ in 0..<10_000 { // JSON-ish soup
            check((0..<rng.int(80)).map { _ in alphabet[rng.int(alphabet.count)] }, d, &stats)
        }
        for _ in 0..<30_000 { // mutations of valid requests
            var b = Array(Self.seeds[rng.int(Self.seeds.count)].utf8)
            for _ in 0..<(1 + rng.int(4)) {
                guard !b.isEmpty else { break }
                let i = rng.int(b.count)
                switch rng.int(5) {
                case 0: b[i] = UInt8(rng.int(256))
                case 1: b.remove(at: i)
                case 2: b.insert(alphabet[rng.int(alphabet.count)], at: i)
                case 3: b.insert(contentsOf: b[i..<min(b.count, i + rng.int(8))], at: i)
                default: b[i] = alphabet[rng.int(alphabet.count)]
                }
            }
            check(b, d, &stats)
        }
        #expect(stats.ok > 100)    // the mutator still produces some valid requests
        #expect(stats.err > 40_000)
    }
}
