import Foundation
import Testing
import PressProtocol
@testable import PressDaemon

/// Issue 25, finding 3: the limit on audited refusals counted per connection, so 300
/// connections × 10 refused `set` requests wrote 3000 audit rows and 3000 journal lines.
/// Refusals are now limited per uid and globally, with one summary record per interval
/// carrying the count; an operator's requests are never held back.
@Suite("The audit trail cannot be flooded by reconnecting", .serialized)
struct AuditFloodTests {
    @Test("300 connections × 10 refused requests from an observer: a bounded number of rows and journal lines, summaries carry the count, every operator request is recorded")
    func reconnectFlood() throws {
        guard InstallSecurityTests.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to act as another user"); return }
        let d = try DaemonProcess(configEdits: [("socket_mode = \"0660\"", "socket_mode = \"0666\""),
                                                ("[simulator]", "[access]\nobservers = [\"*\"]\noperators = [\"@4242\"]\n\n[simulator]")])
        defer { d.cleanup() }
        let journal = PipeDrain(d.stderr) // thousands of lines must not fill the pipe and block pressd
        _ = try d.client()
        chmod(d.dir, 0o755)
        let flood = """
        import socket, sys
        line = b'{"id":1,"method":"set","params":{"channel":"A","value":5,"unit":"MPa"}}\\n'
        for c in range(300):
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rwb'); f.readline()
            for i in range(10):
                f.write(line); f.flush(); f.readline()
            s.close()
        print("done", flush=True)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", flood, d.socket]
        let out = Pipe(); p.standardOutput = out
        try p.run()
        // Meanwhile an operator (uid 65533, group 4242): 5 refused and 5 accepted requests.
        var operatorFailures: [String] = []
        for k in 0..<10 {
            let value = k % 2 == 0 ? "40MPa" : "3MPa"
            let r = try runProcess("/usr/bin/setpriv", ["--reuid=65533", "--regid=65533", "--groups=4242", binDir + "/pressctl", "set", value, "-c", "A", "--socket", d.socket])
            if (value == "3MPa") != (r.status == 0) { operatorFailures.append("\(value): \(r.status) \(r.stderr)") }
        }
        p.waitUntilExit()
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("done"))
        #expect(operatorFailures.isEmpty, "\(operatorFailures)")
        d.stop()
        let log = journal.text()
        let requests = try PressLogProbe.events(dir: d.dir).filter { $0.kind == "request" }
        let observer = requests.filter { $0.uid == 65534 }
        let summaries = observer.filter { $0.detail.hasPrefix("SUMMARY") }
        let written = observer.count - summaries.count
        #expect(observer.count <= 40, "\(observer.count) audit rows for the flooding observer")
        #expect(!summaries.isEmpty, "no summary record")
        let suppressed = summaries.compactMap { e -> Int? in
            guard let r = e.detail.range(of: #"(\d+) refused requests"#, options: .regularExpression) else { return nil }
            return Int(e.detail[r].split(separator: " ")[0])
        }.reduce(0, +)
        #expect(written + suppressed == 3000, "\(written) written + \(suppressed) in summaries, of 3000 refused")
        // The journal likewise.
        let journalRefusals = log.split(separator: "\n").filter { $0.contains("request refused") && $0.contains("uid=65534") }.count
        #expect(journalRefusals <= 40, "\(journalRefusals) journal lines for the flooding observer")
        // Nothing of the operator's is lost: 5 refused (out of range) and 5 accepted.
        let op = requests.filter { $0.uid == 65533 }
        #expect(op.filter { $0.detail.hasPrefix("REFUSED (out_of_range") }.count == 5, "\(op.map(\.detail))")
        #expect(op.filter { !$0.detail.hasPrefix("REFUSED") && $0.detail.contains("\"set\"") }.count == 5, "\(op.map(\.detail))")
    }

    @Test("the limiter: per uid and global budgets per interval, privileged peers never limited, one summary per uid with the count")
    func limiter() {
        var l = AuditLimiter(perUid: 3, total: 5, interval: 60)
        var kept = 0
        for _ in 0..<10 where l.admit(uid: 1000, pid: 1, method: "set", privileged: false, now: 0) { kept += 1 }
        #expect(kept == 3)
        for _ in 0..<10 { let ok = l.admit(uid: 0, pid: 2, method: "set", privileged: true, now: 1); #expect(ok) }
        kept = 0
        for uid in UInt32(2000)..<2010 where l.admit(uid: uid, pid: 3, method: "ack", privileged: false, now: 2) { kept += 1 }
        #expect(kept == 2, "the global budget (5) was 3 used by uid 1000")
        let early = l.summaries(now: 30)
        #expect(early.isEmpty, "not before the interval ends")
        let s = l.summaries(now: 61)
        #expect(s.count == 9, "uid 1000 and 8 others: \(s)")
        #expect(s.first { $0.uid == 1000 }?.count == 7)
        #expect(s.first { $0.uid == 1000 }?.text.contains("7 refused requests") == true)
        let again = l.admit(uid: 1000, pid: 1, method: "set", privileged: false, now: 62)
        #expect(again, "a new interval")
        let none = l.summaries(now: 200)
        #expect(none.isEmpty)
    }
}

/// Reads a pipe to its end on a thread of its own, so the writer never blocks on it.
final class PipeDrain: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock(); data.append(chunk); lock.unlock()
            }
            done.signal()
        }.start()
    }
    /// Everything read, once the writer has closed the pipe (its process exited).
    func text() -> String {
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
