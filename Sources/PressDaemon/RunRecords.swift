import Foundation
import PressLog
import PressProtocol
import Synchronization

/// Every channel's run metadata (cell id, chemistry, note, preparation) as pressd last
/// recorded it, whether or not the run log has written it yet.
///
/// `run_set` changes only the fields it names (``RunSetParams``): the change is merged
/// here, under one lock, into the newest record — the one kept in memory, else the run
/// log's — so two changes at once never lose each other's fields. The merged record is
/// then written by the run-log writer in order; when the disk is full it stays here, is
/// what `run_get` answers, and is written when the run log can write again.
final class RunRecords: Sendable {
    private let newest = Mutex<[String: RunMetadata]>([:])

    /// One field's change, for the run log's `run` event.
    struct Change: Equatable {
        var field: String
        var old: String?
        var new: String?
        /// `operator_note "old" → "new"`; `(none)` for a field that had no value,
        /// `(cleared)` for one cleared.
        var text: String { "\(field) \(old ?? "(none)") → \(new ?? "(cleared)")" }
    }

    /// Merges `p` into the channel's newest record (read from `log` the first time) and
    /// keeps the result: (the new record, the fields that changed).
    func apply(_ p: RunSetParams, log: RunLog) throws -> (record: RunMetadata, changes: [Change]) {
        try newest.withLock { m in
            let old = try m[p.channel] ?? log.metadata(channel: p.channel) ?? RunMetadata()
            let new = Self.merged(old, set: p.metadata ?? RunMetadataInfo(), clear: Set(p.clear ?? []))
            m[p.channel] = new
            return (new, Self.changes(from: old, to: new))
        }
    }

    /// The channel's newest record: the one kept in memory, else the run log's.
    func record(channel: String, log: RunLog) throws -> RunMetadata? {
        if let r = newest.withLock({ $0[channel] }) { return r }
        return try log.metadata(channel: channel)
    }

    /// `old` with the fields given in `set` replaced and those named in `clear` removed.
    static func merged(_ old: RunMetadata, set: RunMetadataInfo, clear: Set<String>) -> RunMetadata {
        var r = old
        if clear.contains("cell_id") { r.cellId = nil }
        if clear.contains("chemistry") { r.chemistry = nil }
        if clear.contains("operator_note") { r.operatorNote = nil }
        if clear.contains("preparation_pressure_mpa") { r.preparationPressureMpa = nil }
        if clear.contains("preparation") { r.preparation = nil }
        if let v = set.cellId { r.cellId = v }
        if let v = set.chemistry { r.chemistry = v }
        if let v = set.operatorNote { r.operatorNote = v }
        if let v = set.preparationPressureMpa { r.preparationPressureMpa = v }
        if let v = set.preparation { r.preparation = v }
        return r
    }

    /// The fields that differ between `old` and `new`, with both values as text.
    static func changes(from old: RunMetadata, to new: RunMetadata) -> [Change] {
        func quoted(_ s: String?) -> String? { s.map { "\"\($0)\"" } }
        func steps(_ p: [PreparationStepInfo]?) -> String? {
            p.map { $0.map { s in "\(s.component) \(s.pressureMpa) MPa" + (s.holdS.map { " \($0) s" } ?? "") + (s.temperatureC.map { " \($0) °C" } ?? "") }.joined(separator: "; ") }
                .map { "[\($0)]" }
        }
        let pairs: [(String, String?, String?)] = [
            ("cell_id", quoted(old.cellId), quoted(new.cellId)),
            ("chemistry", quoted(old.chemistry), quoted(new.chemistry)),
            ("operator_note", quoted(old.operatorNote), quoted(new.operatorNote)),
            ("preparation_pressure_mpa", old.preparationPressureMpa.map { "\($0)" }, new.preparationPressureMpa.map { "\($0)" }),
            ("preparation", steps(old.preparation), steps(new.preparation)),
        ]
        return pairs.filter { $0.1 != $0.2 }.map { Change(field: $0.0, old: $0.1, new: $0.2) }
    }
}
