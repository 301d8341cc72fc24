import CSystemd
import Foundation
import Logging
import PressProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes to the systemd journal with structured fields
/// (sd_journal_sendv): `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER`, and every metadata
/// key upper-cased with a `PRESSD_` prefix (`PRESSD_CHANNEL=A`, `PRESSD_FAULT=…`), so
/// `journalctl -u pressd PRESSD_FAULT=over_pressure` finds every trip.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// True when stderr is connected to the journal (systemd sets `JOURNAL_STREAM` to
    /// the device and inode of that stream).
    public static func stderrIsJournal(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let js = env["JOURNAL_STREAM"] else { return false }
        let parts = js.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    static func priority(_ l: Logger.Level) -> Int {
        switch l {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// The journal fields of one message, in order. The message and every value are
    /// escaped (``SafeText``): text from peers (request ids, file and program names)
    /// cannot split a field, forge another one or drive a terminal that shows the journal.
    static func fields(level: Logger.Level, message: String, metadata: Logger.Metadata, identifier: String) -> [String] {
        var f = ["MESSAGE=\(SafeText.escaped(message))", "PRIORITY=\(priority(level))", "SYSLOG_IDENTIFIER=\(identifier)"]
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            let key = "PRESSD_" + k.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
            f.append("\(key)=\(SafeText.escaped("\(v)"))")
        }
        return f
    }

    public func log(event: Logging.LogEvent) {
        var md = metadata.merging(event.metadata ?? [:]) { $1 }
        if let e = event.error { md["error"] = "\(e)" }
        let fields = Self.fields(level: event.level, message: event.message.description, metadata: md, identifier: "pressd")
        let cstrings = fields.map { strdup($0)! }
        defer { cstrings.forEach { free($0) } }
        var iov = cstrings.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: strlen($0)) }
        _ = sd_journal_sendv(&iov, Int32(iov.count))
    }
}

/// Wraps a log handler (the plain stderr one when not under the journal) so that the
/// message and every metadata value are escaped (``SafeText``) before it writes them:
/// one event, one line, whatever text a peer put in it.
public struct SafeTextLogHandler<Wrapped: LogHandler>: LogHandler {
    public var wrapped: Wrapped
    public init(_ wrapped: Wrapped) { self.wrapped = wrapped }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }
    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(event: Logging.LogEvent) {
        var e = event
        e.message = "\(SafeText.escaped(event.message.description))"
        var md = event.metadata?.mapValues { Logger.MetadataValue.string(SafeText.escaped("\($0)")) }
        if let error = event.error {
            md = (md ?? [:]).merging(["error": .string(SafeText.escaped("\(error)"))]) { a, _ in a }
            e.error = nil
        }
        e.metadata = md
        wrapped.log(event: e)
    }
}
