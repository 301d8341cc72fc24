import Foundation
import Testing

/// Found by a tester: completions covered subcommands and flags only: no channel names,
/// no unit hints, no file names for `program start`. This drives the generated bash
/// script the way bash does (COMP_WORDS, COMP_CWORD, the function's three arguments)
/// against a running daemon.
@Suite("Shell completions know the rig", .serialized)
struct CompletionTests {
    @Test("bash: channel names from the daemon, units after a number, .toml files for program start, event kinds")
    func bash() throws {
        let d = try DaemonProcess(timeScale: 1)
        defer { d.cleanup() }
        _ = try d.client()
        let script = try runProcess(binDir + "/pressctl", ["--generate-completion-script", "bash"])
        try script.stdout.write(toFile: d.dir + "/comp.bash", atomically: true, encoding: .utf8)
        let harness = """
        source "$1"; shift
        for line in "$@"; do
            COMP_LINE="$line"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$line"
            [[ "$line" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=()
            _pressctl pressctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            echo "${COMPREPLY[*]}"
        done
        """
        try harness.write(toFile: d.dir + "/harness.sh", atomically: true, encoding: .utf8)
        let lines = ["pressctl set -c ", "pressctl watch --socket \(d.socket) --channel ", "pressctl set 5", "pressctl calibrate span --known 1.2",
                     "pressctl program start \(repoRoot)/config/programs/", "pressctl log events --kind fa", "pressctl sta"]
        let r = try runProcess("/bin/bash", [d.dir + "/harness.sh", d.dir + "/comp.bash"] + lines,
                               env: ["PATH": binDir + ":/usr/bin:/bin", "PRESSD_SOCKET": d.socket])
        let out = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(out.count >= lines.count, "\(r.stdout)\(r.stderr)")
        guard out.count >= lines.count else { return }
        #expect(out[0] == "A B", "channels from the daemon: '\(out[0])'")
        #expect(out[1] == "A B", "channels from --socket: '\(out[1])'")
        #expect(out[2].split(separator: " ").contains("5MPa") && out[2].contains("5kN") && !out[2].contains("5mpa"), "units: '\(out[2])'")
        #expect(out[3].contains("1.2kN"), "'\(out[3])'")
        #expect(out[4] == "\(repoRoot)/config/programs/pulsed.toml", "program files: '\(out[4])'")
        #expect(out[5] == "fault", "'\(out[5])'")
        #expect(out[6] == "status", "'\(out[6])'")
        // No daemon: channel completion is empty, and quick.
        let start = Date()
        let none = try runProcess("/bin/bash", [d.dir + "/harness.sh", d.dir + "/comp.bash", "pressctl set -c "],
                                  env: ["PATH": binDir + ":/usr/bin:/bin", "PRESSD_SOCKET": d.dir + "/nothing.sock"])
        #expect(none.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && Date().timeIntervalSince(start) < 10)
    }
}

/// Found by a tester: `pressctl set -1MPa` said "Missing expected argument" (the value
/// was taken for an option).
@Suite("pressctl explains a negative value")
struct NegativeValueTests {
    @Test("set -1MPa: exit 64, the value named and why it is refused, before any connection", arguments: [["set", "-1MPa", "-c", "A"], ["set", "-c", "A", "-0.5kN"], ["-c", "A", "set", "-2bar"]])
    func negative(_ args: [String]) throws {
        let r = try runProcess(binDir + "/pressctl", args + ["--socket", "/nonexistent/pressd.sock"])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("is negative") && r.stderr.contains("pressctl release") && r.stderr.contains("Usage: pressctl set"), "\(r.stderr)")
    }

    @Test("a negative ramp is still the ramp's value, refused by name")
    func negativeRamp() throws {
        let r = try runProcess(binDir + "/pressctl", ["set", "5MPa", "--ramp", "-1", "-c", "A", "--socket", "/nonexistent/pressd.sock"])
        #expect(r.status != 0 && !r.stderr.contains("is negative: a stack pressure"), "\(r.stderr)")
    }
}
