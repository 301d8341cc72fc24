import Foundation
import Testing
import PressLog
import PressProtocol
@testable import PressDaemon

/// Issue 25, finding 5: text from users reached files raw. A cell id with `ESC ]52;…BEL`
/// (a terminal clipboard write) and a chemistry with `\r\n` and a forged line ended up
/// verbatim in the report; text from peers was printed raw to the journal. Wherever such
/// text lands — report Markdown and SVG, CSV, journal lines, MQTT payloads — control
/// characters and bidi overrides are escaped and each field stays on one line.
@Suite("Text from users is data wherever it lands", .serialized)
struct TextEscapingTests {
    static let osc52 = "\u{1B}]52;c;ZXZpbA==\u{07}"
    static let forgedLine = "- 2026-01-01T00:00:00Z request: **root (uid 0)** release the pressure (actuator to its safe output)"

    /// Scalars that must never reach a file or a terminal raw (line feeds of the file's
    /// own lines and tabs excepted).
    static func rawControls(_ s: String) -> [String] {
        s.unicodeScalars.filter { u in
            u != "\n" && u != "\t" && (u.value < 0x20 || (0x7F...0x9F).contains(u.value) || [0x2028, 0x2029].contains(u.value)
                                       || (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value))
        }.map { String(format: "U+%04X", $0.value) }
    }

    @Test("report: a clipboard-writing cell id, a chemistry with CR LF and a forged line, a bidi override and a program name with ESC: escaped in the Markdown and the SVG, no forged line")
    func report() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        let meta = RunMetadataInfo(cellId: "SSB-1" + Self.osc52, chemistry: "sulfide\r\n" + Self.forgedLine,
                                   operatorNote: "\u{202E}gnp.exe\u{202C} | **bold** [link](http://x) \u{2028}" + Self.forgedLine)
        _ = try c.call("run_set", RunSetParams(channel: "A", metadata: meta), as: RunResult.self)
        let program = "name = \"p\\u001b[2J\\nforged program line\"\n[[steps]]\ntype = \"hold\"\nmpa = 3\nduration_s = 600\n"
        let started = try c.rawCall(String(decoding: try JSONSerialization.data(withJSONObject: [
            "id": 1, "method": "program_start", "params": ["channel": "A", "program": program, "source": "evil\u{1B}.toml"]]), as: UTF8.self))
        #expect(started.errorCode == nil, "\(started)")
        sleep(seconds: 1.5)
        let stem = d.dir + "/rep"
        let r = try runProcess(binDir + "/pressctl", ["report", "-c", "A", "--since", "1h", "--until", String(Int(Date().timeIntervalSince1970 + 3600)),
                                                      "-o", stem, "--socket", d.socket])
        #expect(r.status == 0, "\(r.stderr)")
        let md = try String(contentsOfFile: stem + ".md", encoding: .utf8)
        let svg = try String(contentsOfFile: stem + ".svg", encoding: .utf8)
        #expect(Self.rawControls(md).isEmpty, "raw in the Markdown: \(Self.rawControls(md))")
        #expect(Self.rawControls(svg).isEmpty, "raw in the SVG: \(Self.rawControls(svg))")
        #expect(md.contains(#"SSB-1\\u{1B}\]52;c;ZXZpbA==\\u{7}"#), "the cell id is shown, escaped")
        let lines = md.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(!lines.contains { $0.hasPrefix("- 2026-01-01T00:00:00Z") }, "a forged intervention line")
        #expect(!lines.contains { $0.hasPrefix("forged program line") })
        // Markdown structure in user text stays text: no bold, no link, one table cell.
        let note = try #require(lines.first { $0.hasPrefix("| operator note |") })
        #expect(note.contains("\\*\\*bold\\*\\*") && note.contains("\\[link\\]") && note.contains("\\|"), "\(note)")
        #expect(note.components(separatedBy: " | ").count == 2 || !note.dropFirst(2).dropLast(2).contains(" | "), "\(note)")
        // The SVG is well-formed XML.
        let xml = try runProcess("/usr/bin/python3", ["-c", "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])", stem + ".svg"])
        #expect(xml.status == 0, "\(xml.stderr)")
    }

    @Test("journal lines: a request id with ESC and a newline from a peer is logged escaped, on one line")
    func journal() throws {
        let d = try DaemonProcess(timeScale: 5)
        defer { d.cleanup() }
        let c = try d.client()
        let line = String(decoding: try JSONSerialization.data(withJSONObject: [
            "id": "x\u{1B}[2J\nforged journal line", "method": "hold", "params": ["channel": "A"]]), as: UTF8.self)
        _ = try c.rawCall(line)
        sleep(seconds: 0.5)
        d.stop()
        let log = String(decoding: d.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("command accepted"), "\(log.suffix(400))")
        #expect(Self.rawControls(log).isEmpty, "raw in the journal: \(Self.rawControls(log))")
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("forged journal line") }, "a forged journal line")
        // The journal handler's fields: message and every metadata value.
        let f = JournalLogHandler.fields(level: .notice, message: "file \u{1B}]0;x\u{07}\nMESSAGE=forged", metadata: ["file": "a\nb\u{202E}"], identifier: "pressd")
        #expect(f.allSatisfy { Self.rawControls($0).isEmpty && !$0.contains("\n") }, "\(f)")
    }

    @Test("MQTT payloads: an event's detail and a program name are escaped")
    func mqtt() throws {
        let cfg = try DaemonConfig.parse(try defaultConfigText() + "\n[mqtt]\nhost = \"127.0.0.1\"\nsite = \"lab1\"\nrig = \"rig7\"\n", file: "t.toml")
        let m = MQTTMapping(config: try #require(cfg.mqtt), version: "1", channels: ["A"])
        let ev = m.event(SequencedEvent(seq: 1, event: RunLogEvent(time: 0, channel: "A", kind: "run", detail: "cell_id (none) → \"x\(Self.osc52)\r\nforged\u{202E}")))
        let detail = try #require((try JSONSerialization.jsonObject(with: Data(ev.payload)) as? [String: Any])?["detail"] as? String)
        #expect(Self.rawControls(detail).isEmpty && detail.contains("u{1B}]52"), "\(detail)")
    }

    @Test("CSV export: a run log whose channel and mode hold a comma, a newline and a formula stays one row of the header's fields")
    func csv() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-csv-\(UUID().uuidString.prefix(6))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try RunLog(path: dir + "/runlog.sqlite")
        let t = Date().timeIntervalSince1970 - 10
        _ = try log.append(samples: [LogSample(time: t, channel: "A,\nB\u{1B}[2J", mode: "=HYPERLINK(\"http://x\")", setpoint: 5, pressure: 5,
                                               pressureMin: 4.9, pressureMax: 5.1, pressureMean: 5, force: 1000, output: 1, temperature: nil,
                                               current: nil, resistance: nil, count: 100)], events: [])
        let r = try runProcess(binDir + "/pressctl", ["log", "export", "--state-dir", dir, "--since", "1h", "--until", "now"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.rawControls(r.stdout).isEmpty, "\(Self.rawControls(r.stdout))")
        let parsed = try runProcess("/usr/bin/python3", ["-c", "import csv, sys; rows = list(csv.reader(open(sys.argv[1]))); print(len(rows), [len(r) for r in rows], rows[1][2], rows[1][3])", try {
            let f = dir + "/out.csv"; try r.stdout.write(toFile: f, atomically: true, encoding: .utf8); return f }()])
        let fields = RunLog.csvHeader.split(separator: ",").count
        #expect(parsed.stdout.hasPrefix("2 [\(fields), \(fields)]"), "\(parsed.stdout)\(parsed.stderr)")
        #expect(parsed.stdout.contains("'=HYPERLINK"), "a formula is not left for a spreadsheet to run: \(parsed.stdout)")
    }
}
