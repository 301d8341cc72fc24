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
        let res = try JSONDecoder().decode(FloodResult.self, from: Data(r.stdout.utf8))
        // Every operator request answered, none near the old 2 s command timeout; the
        // typical one within 100 ms. (pressbench flood prints the distribution; the
        // machine running the tests is shared, so the tail is not asserted tighter.)
        #expect(res.operatorErrors.isEmpty, "\(res.operatorErrors.prefix(3))")
        #expect(res.operatorRequests >= 80, "\(res.operatorRequests) operator requests in 10 s at 10 Hz")
        #expect(res.operatorMaxMs < 1000, "slowest operator request \(res.operatorMaxMs) ms")
        #expect(res.operatorP50Ms < 100, "median operator request \(res.operatorP50Ms) ms")
        // Memory: bounded buffers during the flood, handed back after it.
        #expect(res.rssPeakMB - res.rssBaselineMB < 40, "RSS \(res.rssBaselineMB) → peak \(res.rssPeakMB) MB")
        #expect(res.rssAfterMB - res.rssBaselineMB < 8, "RSS \(res.rssBaselineMB) → \(res.rssAfterMB) MB after the flood")
        // The loop keeps its deadlines.
        let ticks = try #require(res.ticks, "pressd did not answer status after the flood")
        #expect(Double(ticks) > 0.9 * res.expectedTicks, "\(ticks) ticks of \(res.expectedTicks)")
        #expect(Double(res.overruns ?? .max) <= 0.01 * Double(ticks), "\(res.overruns ?? 0) overruns in \(ticks) ticks")
        // The non-readers were paused, then dropped with one `overloaded` line each and a
        // journal record naming uid and pid.
        #expect(res.flood.overloaded == 12 && res.flood.closedByServer == 12, "\(res.flood)")
        #expect(res.droppedLogged >= 12, "\(res.droppedLogged) drops logged")
        #expect(res.droppedSample?.contains("uid=65534") == true && res.droppedSample?.contains("pid=") == true, "\(res.droppedSample ?? "-")")
    }

    /// The part of `pressbench flood --json` the test reads.
    struct FloodResult: Decodable {
        struct Flood: Decodable { var overloaded: Int; var closedByServer: Int; var connected: Int }
        var operatorRequests: Int
        var operatorErrors: [String]
        var operatorP50Ms: Double
        var operatorMaxMs: Double
        var rssBaselineMB: Double
        var rssPeakMB: Double
        var rssAfterMB: Double
        var ticks: UInt64?
        var expectedTicks: Double
        var overruns: UInt64?
        var flood: Flood
        var droppedLogged: Int
        var droppedSample: String?
    }

    @Test("a pipeliner that does not read is paused (not served further), then sent one 'overloaded' line after its replies and closed")
    func pausedThenDropped() async throws {
        let text = try editedConfig("socket_mode = \"0660\"\n", "socket_mode = \"0660\"\nclient_stall_timeout_s = 1\n")
        try await withRig(configText: text) { rig in
            let fd = try ControlClient.connectSocket(rig.socketPath)
            defer { close(fd) }
            // 5000 status requests, never reading: far more replies than the buffers hold.
            let line = Array(String(repeating: "{\"method\":\"status\"}\n", count: 5000).utf8)
            let sender = Thread {
                var off = 0
                while off < line.count {
                    let n = line[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n <= 0 { break }
                    off += n
                }
            }
            sender.start()
            sleep(seconds: 3) // paused within milliseconds; dropped after the 1 s stall timeout
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var all = [UInt8]()
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            var ended = false
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n == 0 || (n < 0 && errno == ECONNRESET) { ended = true; break }
                if n < 0 { break }
                all += buf[..<n]
            }
            let lines = String(decoding: all, as: UTF8.self).split(separator: "\n")
            #expect(ended, "the connection was not closed")
            let replies = lines.filter { $0.contains("\"result\"") }.count
            #expect(replies > 10 && replies < 1000, "\(replies) replies: it should be served until its output is full, then paused")
            #expect(lines.filter { $0.contains("\"overloaded\"") }.count == 1, "\(lines.suffix(2))")
            #expect(lines.last?.contains("\"overloaded\"") == true && lines.last?.contains("client_stall_timeout_s") == true, "\(lines.last ?? "")")
            // Other clients are served meanwhile and after.
            #expect(try rig.client().status().channels.count == 2)
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
