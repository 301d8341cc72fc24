import Foundation
import Testing
@testable import PressDaemon

/// The spectrum intake's file reading against a user who can write into the spectra directory
/// (issue 25): opened once relative to the directory's descriptor, never through a symbolic
/// link, never more than the limit read.
@Suite("Reading a spectrum file safely")
struct SpectrumFileReaderTests {
    final class Dir: Sendable {
        let path: String
        let fd: Int32
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("pressd-read-\(UUID().uuidString.prefix(6))").path
            try FileManager.default.createDirectory(atPath: path + "/spectra", withIntermediateDirectories: true)
            fd = open(path + "/spectra", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        deinit { close(fd); try? FileManager.default.removeItem(atPath: path) }
    }

    @Test("a regular file is read; a link, a FIFO, a directory, a file over the limit are refused by what they are")
    func kinds() throws {
        let d = try Dir()
        let s = d.path + "/spectra"
        try "frequency,Zreal,Zimag\n1,2,-3\n".write(toFile: s + "/ok.csv", atomically: false, encoding: .utf8)
        guard case .success(let c) = SpectrumFileReader.read(directory: d.fd, name: "ok.csv", limit: 100) else { Issue.record("ok.csv not read"); return }
        #expect(String(decoding: c.data, as: UTF8.self) == "frequency,Zreal,Zimag\n1,2,-3\n" && c.size == 29)
        try "secret".write(toFile: d.path + "/secret", atomically: false, encoding: .utf8)
        symlink(d.path + "/secret", s + "/link.csv")
        #expect(SpectrumFileReader.read(directory: d.fd, name: "link.csv", limit: 100) == .failure(.symbolicLink))
        mkfifo(s + "/fifo.csv", 0o600)
        #expect(SpectrumFileReader.read(directory: d.fd, name: "fifo.csv", limit: 100) == .failure(.notRegular(kind: "a FIFO")))
        mkdir(s + "/dir.csv", 0o700)
        #expect(SpectrumFileReader.read(directory: d.fd, name: "dir.csv", limit: 100) == .failure(.notRegular(kind: "a directory")))
        #expect(SpectrumFileReader.read(directory: d.fd, name: "ok.csv", limit: 10) == .failure(.tooLarge(bytes: 29, limit: 10)))
        #expect(SpectrumFileReader.read(directory: d.fd, name: "gone.csv", limit: 10) == .failure(.vanished))
        // The messages name the problem, never the content.
        #expect(SpectrumFileReadError.tooLarge(bytes: 70 << 20, limit: 4 << 20).description == "73400320 bytes is too large for a spectrum (limit 4 MiB)")
    }

    /// An attacker thread swaps the name between a regular file, a symbolic link to a secret and a
    /// 64 MB file, as fast as it can, while the reader reads it 20 000 times.
    @Test("a swapping attacker: 20 000 reads, none of the secret, none over the limit")
    func race() throws {
        let d = try Dir()
        let s = d.path + "/spectra"
        let marker = "TOPSECRET\(UUID().uuidString.prefix(8))"
        try "\(marker)\n".write(toFile: d.path + "/secret", atomically: false, encoding: .utf8)
        let huge = d.path + "/huge"
        FileManager.default.createFile(atPath: huge, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: huge)); try h.truncate(atOffset: 64 << 20); try h.close()
        let good = Data("frequency,Zreal,Zimag\n1,2,-3\n".utf8)
        let stop = SharedFlag(false)
        let secret = d.path + "/secret"
        let attacker = Thread {
            var i = 0
            while !stop.load() {
                FileManager.default.createFile(atPath: "\(s)/.r\(i)", contents: good)
                rename("\(s)/.r\(i)", "\(s)/x.csv")
                usleep(20)
                symlink(secret, "\(s)/.l\(i)")
                rename("\(s)/.l\(i)", "\(s)/x.csv")
                if link(huge, "\(s)/.h\(i)") == 0 { rename("\(s)/.h\(i)", "\(s)/x.csv") }
                i += 1
            }
        }
        attacker.start()
        defer { stop.store(true) }
        var read = 0, links = 0, large = 0, leaks = 0, over = 0
        let limit = 4 << 20
        for _ in 0..<20_000 {
            switch SpectrumFileReader.read(directory: d.fd, name: "x.csv", limit: limit) {
            case .success(let c):
                read += 1
                if c.data.count > limit { over += 1 }
                if String(decoding: c.data, as: UTF8.self).contains(marker) { leaks += 1 }
            case .failure(.symbolicLink): links += 1
            case .failure(.tooLarge): large += 1
            case .failure: break
            }
        }
        stop.store(true)
        print("race: \(read) read, \(links) refused as links, \(large) refused as too large, \(leaks) leaks, \(over) over the limit")
        #expect(leaks == 0 && over == 0)
        #expect(read > 10 && links > 100 && large > 100, "the race was run: each kind was met")
    }
}

/// The spectrum intake's per-channel rate limit, on a clock of its own.
@Suite("Spectrum intake rate limit")
struct IntakeRateLimitTests {
    @Test("a burst, then one a second; the skipped counted once each, the newest kept and taken when a token comes; a summary at most every 10 s")
    func bucket() {
        var l = IntakeRateLimit(now: 0, burst: 3, perSecond: 1, summaryInterval: 10)
        for k in 0..<3 { let ok = l.admit("f\(k)", now: 0); #expect(ok) }
        for k in 3..<6 { let ok = l.admit("f\(k)", now: 0); #expect(!ok) }
        #expect(l.deferred == "f5" && l.skipped == 2, "f3 and f4 counted, f5 kept")
        let early = l.summary(now: 5)
        #expect(early == nil, "not before 10 s")
        let none = l.takeDeferred(now: 0.5)
        #expect(none == nil, "no token yet")
        let taken = l.takeDeferred(now: 1.0)
        #expect(taken == "f5" && l.deferred == nil)
        let s = l.summary(now: 10)
        #expect(s?.count == 2 && s?.first == "f3" && s?.newest == nil && s?.seconds == 10)
        let later = l.summary(now: 30)
        #expect(later == nil, "nothing skipped since")
        // A file of many spectra takes the bucket below zero (at most to −burst): the next waits.
        let big = l.admit("big", now: 20)
        #expect(big)
        l.charge(100)
        #expect(l.tokens == -3)
        let tooSoon = l.admit("next", now: 22)
        #expect(!tooSoon)
        let again = l.admit("next", now: 24.5)
        #expect(again, "−3 + 4.5 s at 1/s: a token again")
    }
}
