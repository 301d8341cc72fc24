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
