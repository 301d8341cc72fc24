import PressCore

/// Reads a pressure program from TOML (see docs/programs.md). Errors name the source,
/// the line, the step and the key (`step 3: period_s`). Steps are numbered from 1, the
/// way `program status`, the run log and `to_step` number them.
public enum ProgramFile {
    public static func parse(_ text: String, source: String) throws(ConfigError) -> PressureProgram {
        let root = try parseTOML(text, file: source)
        let name = try root.string("name") ?? source
        var steps: [ProgramStep] = []
        let tables = try root.tables("steps")
        guard !tables.isEmpty else { throw root.error("steps", "a program needs at least one [[steps]] table") }
        for (i, t) in tables.enumerated() {
          do throws(ConfigError) {
            guard let type = try t.string("type") else { throw t.error("type", "is required (set, ramp, hold, square, sine, press_release, wait_input, loop)") }
            let step: ProgramStep
            switch type {
            case "set":
                step = .set(mpa: try t.requiredDouble("mpa"), ramp: try t.double("ramp_mpa_per_s"))
            case "ramp":
                step = .ramp(to: try t.requiredDouble("to_mpa"), rate: try t.requiredPositive("rate_mpa_per_s"))
            case "hold":
                step = .hold(mpa: try t.double("mpa"), duration: try t.requiredNonNegative("duration_s"))
            case "square":
                step = .square(low: try t.requiredDouble("low_mpa"), high: try t.requiredDouble("high_mpa"),
                               period: try t.requiredPositive("period_s"), duration: try t.requiredNonNegative("duration_s"),
                               ramp: try t.double("ramp_mpa_per_s"))
            case "sine":
                step = .sine(mean: try t.requiredDouble("mean_mpa"), amplitude: try t.requiredDouble("amplitude_mpa"),
                             period: try t.requiredPositive("period_s"), duration: try t.requiredNonNegative("duration_s"))
            case "press_release":
                step = .pressRelease(press: try t.requiredDouble("press_mpa"), pressTime: try t.requiredNonNegative("press_s"),
                                     release: try t.requiredDouble("release_mpa"), settleTime: try t.requiredNonNegative("settle_s"),
                                     ramp: try t.double("ramp_mpa_per_s"))
            case "wait_input":
                guard let input = try t.string("input") else { throw t.error("input", "is required (e.g. \"charging\")") }
                guard input == "charging" else { throw t.error("input", "'\(input)' is not an input pressd knows (charging)") }
                step = .waitInput(input: input, state: try t.bool("state") ?? true, timeout: try t.double("timeout_s"))
            case "loop":
                guard let to = try t.int("to_step"), let n = try t.int("count") else { throw t.error(nil, "loop needs to_step and count") }
                guard i > 0 else { throw t.error("to_step", "the first step cannot be a loop: there is no earlier step to go back to") }
                guard to >= 1, to <= i else { throw t.error("to_step", "must be the number of an earlier step (1…\(i)), found \(to)") }
                step = .loop(toStep: to - 1, count: n)
            default:
                throw t.error("type", "'\(type)' is not a step type (set, ramp, hold, square, sine, press_release, wait_input, loop)")
            }
            try t.rejectUnknownKeys()
            steps.append(step)
          } catch {
            // `steps[2].period_s` → `step 3: period_s` (the line is already found).
            var e = error
            let prefix = "steps[\(i)]"
            if let k = e.key, k.hasPrefix(prefix) {
                let rest = k.dropFirst(prefix.count).drop { $0 == "." }
                e.key = "step \(i + 1)" + (rest.isEmpty ? "" : ": " + rest)
            }
            throw e
          }
        }
        try root.rejectUnknownKeys()
        return PressureProgram(name: name, steps: steps)
    }
}
