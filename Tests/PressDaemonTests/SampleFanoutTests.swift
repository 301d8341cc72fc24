import Foundation
import NIOCore
import PressProtocol
import Testing
@testable import PressDaemon

@Suite("Subscription events encoded once per snapshot")
struct SampleFanoutTests {
    @Test("an assembled event line is byte for byte what JSONEncoder writes for a SampleEvent, for every filter")
    func sameBytes() async throws {
        try await withRig { rig in
            var snap = rig.loop.snapshots.latest()
            for _ in 0..<100 where snap == nil { usleep(10_000); snap = rig.loop.snapshots.latest() }
            let s = try #require(snap)
            let fanout = SampleFanout()
            for only: Set<String>? in [nil, ["A"], ["B"], ["A", "B"]] {
                let json = fanout.channelsJSON(s, configs: rig.config.channels, only: only)
                let line = SampleFanout.eventLine(channelsJSON: json, subscription: 7, dropped: 3, allocator: ByteBufferAllocator())
                var expected = try ControlProtocol.encoder().encode(
                    SampleEvent(subscription: 7, dropped: 3,
                                channels: StatusMapping.channels(s, configs: rig.config.channels, only: only, compact: true)))
                expected.append(UInt8(ascii: "\n"))
                #expect(Array(line.readableBytesView) == Array(expected), "filter \(String(describing: only))")
                // And a client decodes it.
                let event = try ControlProtocol.decoder().decode(SampleEvent.self, from: Data(line.readableBytesView.dropLast()))
                #expect(event.channels.map(\.name) == (only.map { Array($0).sorted() } ?? rig.config.channels.map(\.name)))
            }
        }
    }

    @Test("a newer snapshot is encoded afresh; the same one is not")
    func freshness() async throws {
        try await withRig { rig in
            var first = rig.loop.snapshots.latest()
            for _ in 0..<100 where first == nil { usleep(10_000); first = rig.loop.snapshots.latest() }
            let a = try #require(first)
            let fanout = SampleFanout()
            let j1 = fanout.channelsJSON(a, configs: rig.config.channels, only: nil)
            #expect(fanout.channelsJSON(a, configs: rig.config.channels, only: nil) == j1)
            var later = rig.loop.snapshots.latest()
            for _ in 0..<200 where later.map({ $0.time == a.time }) ?? true { usleep(10_000); later = rig.loop.snapshots.latest() }
            let b = try #require(later)
            #expect(b.time != a.time)
            let j2 = fanout.channelsJSON(b, configs: rig.config.channels, only: nil)
            let decoded = try ControlProtocol.decoder().decode([ChannelStatus].self, from: Data(j2))
            let direct = try ControlProtocol.decoder().decode([ChannelStatus].self, from: ControlProtocol.encoder().encode(
                StatusMapping.channels(b, configs: rig.config.channels, only: nil, compact: true)))
            #expect(decoded.map(\.timeS) == direct.map(\.timeS))
            #expect(decoded.first?.timeS != (try ControlProtocol.decoder().decode([ChannelStatus].self, from: Data(j1))).first?.timeS)
        }
    }
}
