import Foundation
import NIOCore
import PressCore
import PressProtocol

/// Builds subscription events for many subscribers without encoding the same snapshot
/// for each of them.
///
/// Every subscriber whose event falls due on the same loop snapshot, with the same
/// channel filter, gets the same channel list; only `subscription` and `dropped`
/// differ. The channel list is encoded once per (snapshot, filter) and the event line
/// is assembled around it, byte for byte what `JSONEncoder` with
/// ``ControlProtocol/encoder()`` writes for a ``SampleEvent`` (sorted keys:
/// `channels`, `dropped`, `event`, `subscription`).
///
/// With 150 subscribers at 10 Hz on a 100 Hz loop, about 15 of them share each
/// snapshot: the event loop encodes a fifteenth of what it did.
final class SampleFanout: @unchecked Sendable {
    private struct Entry { var time: Double; var json: [UInt8] }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let encoder = ControlProtocol.encoder()
    /// Distinct filters kept at once; more (a client cycling through filters) only
    /// costs re-encoding.
    static let maxFilters = 64

    /// The JSON array of channel statuses for `snap`, restricted to `only`.
    func channelsJSON(_ snap: RigSnapshot, configs: [ChannelConfig], only: Set<String>?) -> [UInt8] {
        let key = only.map { $0.sorted().joined(separator: "\u{0}") } ?? "*"
        return lock.withLock {
            if let e = entries[key], e.time == snap.time { return e.json }
            let channels = StatusMapping.channels(snap, configs: configs, only: only, compact: true)
            let json = (try? encoder.encode(channels)).map(Array.init) ?? Array("[]".utf8)
            if entries.count >= Self.maxFilters, entries[key] == nil { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(time: snap.time, json: json)
            return json
        }
    }

    /// One event line (with its newline) around an encoded channel list.
    static func eventLine(channelsJSON: [UInt8], subscription: Int, dropped: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: channelsJSON.count + 64)
        b.writeString("{\"channels\":")
        b.writeBytes(channelsJSON)
        b.writeString(",\"dropped\":\(dropped),\"event\":\"sample\",\"subscription\":\(subscription)}\n")
        return b
    }
}
