import Foundation
import Testing
import NIOCore
import NIOEmbedded
import PressProtocol
@testable import PressDaemon

/// Issue 25, finding 1: an observer starved everyone. 20 connections sending `status`
/// without reading the replies made every other client time out — an operator's `hold`
/// and `release` included — during the flood and for minutes after it, and pressd's
/// memory grew from 32 MB to 146–467 MB and stayed there. The same flood through
/// `pressbench flood` on the old code: 11 of 120 operator requests answered, 3 timed
/// out at 5 s, RSS 44 → 122 MB (117 MB after), `status` unanswered 30 s after the flood.
@Suite("An observer flooding the socket cannot starve an operator", .serialized)
struct SocketFloodTests {
    @Test("pipelining, non-reading subscribers, slow-loris and many connections from an observer while an operator holds/releases every 100 ms: every operator request answered, memory bounded and back after, the loop on time, non-readers dropped with 'overloaded'")
    func floodWhileOperating() throws {
        guard InstallSecurityTests.canActAsOthers else { Issue.record("needs root and setpriv (util-linux) to run the peers as other users"); return }
        let r = try runProcess(binDir + "/pressbench", ["flood", "--duration", "8", "--stall-timeout", "2", "--config", defaultConfigPath, "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let res = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        func num(_ k: String) -> Double { (res[k] as? NSNumber)?.doubleValue ?? .nan }
        let flood = res["flood"] as? [String: Any] ?? [:]
        let errors = res["operatorErrors"] as? [String] ?? ["no report"]
        // Every operator request answered, none near the old 2 s command timeout; the
        // typical one within 100 ms. (pressbench flood prints the distribution; the
        // machine running the tests is shared, so the tail is not asserted tighter.)
        #expect(errors.isEmpty, "\(errors.prefix(3))")
        #expect(num("operatorRequests") >= 80, "\(num("operatorRequests")) operator requests in 10 s at 10 Hz")
        #expect(num("operatorMaxMs") < 1000, "slowest operator request \(num("operatorMaxMs")) ms")
        #expect(num("operatorP50Ms") < 100, "median operator request \(num("operatorP50Ms")) ms")
        // Memory: bounded buffers during the flood, handed back after it.
        #expect(num("rssPeakMB") - num("rssBaselineMB") < 40, "RSS \(num("rssBaselineMB")) → peak \(num("rssPeakMB")) MB")
        #expect(num("rssAfterMB") - num("rssBaselineMB") < 8, "RSS \(num("rssBaselineMB")) → \(num("rssAfterMB")) MB after the flood")
        // The loop keeps its deadlines.
        let ticks = num("ticks")
        #expect(ticks > 0.9 * num("expectedTicks"), "\(ticks) ticks of \(num("expectedTicks")) (nan: pressd did not answer status after the flood)")
        #expect(num("overruns") <= 0.01 * ticks, "\(num("overruns")) overruns in \(ticks) ticks")
        // The non-readers were paused, then dropped with one `overloaded` line each and a
        // journal record naming uid and pid.
        #expect(flood["overloaded"] as? Int == 12 && flood["closedByServer"] as? Int == 12, "\(flood)")
        #expect(num("droppedLogged") >= 12, "\(num("droppedLogged")) drops logged")
        let sample = res["droppedSample"] as? String ?? "-"
        #expect(sample.contains("uid=65534") && sample.contains("pid="), "\(sample)")
    }

    @Test("a pipeliner that does not read is paused (not served further), then sent one 'overloaded' line after its replies and closed")
    func pausedThenDropped() async throws {
        let text = try editedConfig("socket_mode = \"0660\"\n", "socket_mode = \"0660\"\nclient_stall_timeout_s = 1\n")
        try await withRig(configText: text) { rig in
            let fd = try ControlClient.connectSocket(rig.socketPath)
            let sendFD = dup(fd)
            defer { close(sendFD) }
            let c = try ControlClient(connected: fd, path: rig.socketPath, timeout: 5)
            // 5000 status requests, never reading: far more replies than the buffers hold.
            let line = Array(String(repeating: "{\"method\":\"status\"}\n", count: 5000).utf8)
            let sender = Thread {
                var off = 0
                while off < line.count {
                    let n = line[off...].withUnsafeBytes { send(sendFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n <= 0 { break }
                    off += n
                }
            }
            sender.start()
            sleep(seconds: 3) // paused within milliseconds; dropped after the 1 s stall timeout
            var lines: [String] = []
            var ended = false
            while true {
                do { lines.append(String(decoding: try c.readLine(), as: UTF8.self)) } catch {
                    ended = "\(error)".contains("closed by pressd") || "\(error)".contains("reset")
                    break
                }
            }
            #expect(ended, "the connection was not closed")
            let replies = lines.filter { $0.contains("\"result\"") }.count
            #expect(replies > 10 && replies < 1000, "\(replies) replies: it should be served until its output is full, then paused")
            #expect(lines.filter { $0.contains("\"overloaded\"") }.count == 1, "\(lines.suffix(2))")
            #expect(lines.last?.contains("\"overloaded\"") == true && lines.last?.contains("client_stall_timeout_s") == true, "\(lines.last ?? "")")
            // Other clients are served meanwhile and after.
            #expect(try rig.client().status().channels.count == 2)
        }
    }

    @Test("a subscriber that stops reading is dropped after the stall timeout, and its client says 'overloaded', not just 'closed'")
    func stalledSubscriber() async throws {
        let text = try editedConfig("socket_mode = \"0660\"\n", "socket_mode = \"0660\"\nclient_stall_timeout_s = 1\n")
        try await withRig(configText: text) { rig in
            let c = try rig.client()
            _ = try c.call("subscribe", SubscribeParams(rateHz: 100), as: SubscribeResult.self)
            sleep(seconds: 6) // ~300 KB/s of events fill the socket and the 256 KiB mark in ~2 s; dropped 1 s later
            var events = 0
            do {
                while true { _ = try c.nextEvent(); events += 1 }
            } catch {
                guard case .remote(let e)? = error as? ClientError else { Issue.record("ended with \(error) after \(events) events, not overloaded"); return }
                #expect(e.code == .overloaded && e.message.contains("client_stall_timeout_s"), "\(e)")
            }
            #expect(events > 0, "the events sent before the drop are delivered first")
        }
    }

    @Test("fair queue: round robin over uids, first in first out within one")
    func fairQueue() {
        var q = FairQueue<String>()
        for i in 0..<5 { q.push(1, "a\(i)") }
        q.push(2, "b0")
        q.push(3, "c0")
        q.push(2, "b1")
        var out: [String] = []
        while let x = q.pop() { out.append(x) }
        #expect(out == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4"])
        #expect(q.isEmpty)
    }

    @Test("requests in flight per uid: an observer's uid stops at the limit, a privileged one does not; a connection held back by its uid's budget is served once a request of the uid ends")
    func inFlightPerUid() {
        final class Peer: ScheduledPeer {
            let uid: UInt32; let privileged: Bool; var queued = false
            var work = 0, served = 0
            let scheduler: () -> PeerScheduler?
            init(_ uid: UInt32, _ p: Bool, _ s: @escaping () -> PeerScheduler?) { self.uid = uid; privileged = p; scheduler = s }
            var servable: Bool { work > 0 && (scheduler()?.mayStart(self) ?? false) }
            func serveOne() { work -= 1; served += 1 }
        }
        var limits = PeerLimits()
        limits.inFlightPerUser = 3
        let loop = EmbeddedEventLoop()
        let s = PeerScheduler(eventLoop: loop, limits: limits)
        let observer = Peer(1000, false, { s }), op = Peer(1001, true, { s })
        for _ in 0..<3 { s.started(uid: 1000); s.started(uid: 1001) }
        #expect(!s.mayStart(observer) && s.mayStart(op))
        observer.work = 2
        s.ready(observer)
        loop.run()
        #expect(observer.served == 0 && !observer.queued, "served beyond its uid's budget")
        s.finished(uid: 1000)
        loop.run()
        #expect(observer.served == 2 && s.inFlight(uid: 1000) == 2, "held back after its uid's request ended: \(observer.served)")
    }

    @Test("the line framer: lines, CR LF, over-long lines skipped and reported once, partial lines kept")
    func framer() {
        var f = LineFramer(maxLength: 8)
        var b = ByteBufferAllocator().buffer(string: "ab\r\n0123456789abc\nxy")
        guard case .line(let l1)? = f.next(&b) else { Issue.record("no first line"); return }
        #expect(String(buffer: l1) == "ab")
        guard case .tooLong(let n)? = f.next(&b) else { Issue.record("no too-long frame"); return }
        #expect(n == 13)
        #expect(f.next(&b) == nil, "xy is not a line yet")
        b.writeString("z\n")
        guard case .line(let l3)? = f.next(&b) else { Issue.record("no last line"); return }
        #expect(String(buffer: l3) == "xyz")
    }
}
