import Foundation
import Logging
import PressCore
import PressDrivers
import PressEIS
import PressLog
import PressProtocol

/// Turns an impedance analyser's spectrum files into the channel's resistance signals.
///
/// Each channel with `[channels.NAME.impedance] spectra_dir` has its directory watched
/// (inotify, on the ``DirectoryWatcher`` thread, through the directory's open descriptor).
/// A new file is opened safely (``SpectrumFileReader``), read by the reader its content
/// calls for, and every spectrum it holds — each loop of a multi-loop file — is a
/// measurement of its own: checked for Kramers–Kronig consistency and fitted (R_b + (R_int ‖
/// CPE) [+ W], or R_b alone for blocking electrodes), dated by its own start. Every spectrum
/// gives one `impedance` event in the run log and the journal (names escaped, one line each,
/// never quoting a rejected file's content); the newest accepted one per file goes to the
/// loop as a pushed signal stamped with its acquisition time. A file that grows (re-exported
/// with more loops) adds only its new loops. A flood of files is rate-limited per channel
/// (``IntakeRateLimit``) with a summary event. Nothing here runs on the control loop's thread.
final class SpectrumIntake: @unchecked Sendable {
    private var watcher: DirectoryWatcher!
    private let loop: ControlLoop
    private let live: LiveConfig
    private let logger: Logger
    private let record: @Sendable (RunLogEvent) -> Void
    /// Watcher-thread state, behind a lock for the tests that call `take` directly.
    private let lock = NSLock()
    /// Per channel and file name: the spectra already taken (their key → point count).
    private var taken: [Int: [String: [SpectrumKey: Int]]] = [:]
    /// Per channel: the acquisition time of the newest spectrum pushed to the loop.
    private var newestPushed: [Int: Double] = [:]
    private var limits: [Int: IntakeRateLimit] = [:]
    /// Larger files are not spectra (a 61-loop EC-Lab GEIS export is 1.3 MB), nor are spectra
    /// with more points than this (a time series): the fit's cost grows with them and one
    /// file must not hold up the next for minutes. The cap is per spectrum, not per file.
    static let maxFileBytes = 4 << 20
    static let maxPoints = 2000
    /// At most this many new spectra of one file are analysed (the newest); a file of more
    /// (hundreds of loops are normal, thousands are not) gets one event for the rest.
    static let maxSpectraPerFile = 500
    /// The spectra remembered per channel (to take only a file's new loops); forgotten all at once beyond this.
    static let maxRemembered = 100_000

    /// A spectrum's identity within its file: its loop number and first point. A loop that
    /// grows (a file exported mid-loop, then again) is taken again.
    struct SpectrumKey: Hashable {
        var sweep: Int
        var first: [Double]
    }

    init?(live: LiveConfig, loop: ControlLoop, logger: Logger, record: @escaping @Sendable (RunLogEvent) -> Void) {
        let dirs = live.current.channels.enumerated().compactMap { i, c in c.spectra.map { DirectoryWatcher.Directory(path: $0.directory, tag: i) } }
        guard !dirs.isEmpty else { return nil }
        self.live = live; self.loop = loop; self.logger = logger; self.record = record
        watcher = DirectoryWatcher(directories: dirs) { [weak self] d, fd, name in self?.arrived(channel: d.tag, directory: fd, name: name) }
        watcher.onTick = { [weak self] descriptor in self?.tick(descriptor: descriptor) }
    }

    /// Starts watching; spectra written while the daemon was down and still fresh
    /// (younger than the channel's `pushed_stale_after_s`) are taken first.
    func start() throws(DirectoryWatchError) {
        let within = live.current.channels.filter { $0.spectra != nil }.map(\.pushedStaleAfter).max() ?? 0
        let names = live.current.channels.map(\.name)
        let name: @Sendable (DirectoryWatcher.Directory) -> String = { d in names.indices.contains(d.tag) ? names[d.tag] : "?" }
        let (logger, record) = (self.logger, self.record)
        watcher.onWatched = { d in
            let path = SafeText.escaped(d.path)
            logger.notice("impedance spectra of channel \(name(d)) watched at last", metadata: ["directory": "\(path)"])
            record(RunLogEvent(time: Date().timeIntervalSince1970, channel: name(d), kind: "impedance", detail: "spectra directory \(path) watched"))
        }
        let failed = try watcher.start(existingWithin: within)
        for (d, e) in failed {
            let text = SafeText.escaped("\(e)")
            logger.error("impedance spectra of channel \(name(d)) not watched: \(text)")
            record(RunLogEvent(time: Date().timeIntervalSince1970, channel: name(d), kind: "impedance", detail: "spectra directory not watched: \(text)"))
        }
        logger.info("watching for impedance spectra", metadata: ["directories": "\(SafeText.escaped(watcher.directories.map(\.path).joined(separator: ", ")))"])
    }

    func stop() { watcher.stop() }

    /// A file closed or moved into channel `i`'s directory (open as `directory`): taken if the
    /// rate allows, else counted and kept for later.
    func arrived(channel i: Int, directory: Int32, name: String) {
        let now = Date().timeIntervalSince1970
        let admitted = lock.withLock { () -> Bool in
            var l = limits[i] ?? IntakeRateLimit(now: now)
            defer { limits[i] = l }
            return l.admit(name, now: now)
        }
        if admitted { take(channel: i, directory: directory, name: name) }
    }

    /// On the watcher's thread every 200 ms: a deferred file whose turn has come, a summary due.
    func tick(descriptor: (Int) -> Int32?) {
        let now = Date().timeIntervalSince1970
        let channels = live.current.channels
        let due = lock.withLock { () -> [(Int, String?, (seconds: Double, count: Int, first: String?, newest: String?)?, IntakeRateLimit)] in
            limits.keys.sorted().map { i in
                var l = limits[i]!
                defer { limits[i] = l }
                return (i, l.takeDeferred(now: now), l.summary(now: now), l)
            }
        }
        for (i, deferred, summary, l) in due where channels.indices.contains(i) {
            if let (seconds, count, first, newest) = summary {
                var detail = "\(count) files not analysed in the last \(fmt0(seconds)) s (rate limit: \(fmt0(l.burst)) spectra at once, then \(fmt0(l.perSecond)) a second)"
                if let first { detail += "; the first skipped was \(SafeText.escaped(first))" }
                if let newest { detail += "; the newest, \(SafeText.escaped(newest)), is taken when the rate allows" }
                emit(channel: channels[i].name, detail: detail, level: .warning)
            }
            if let name = deferred, let fd = descriptor(i) { take(channel: i, directory: fd, name: name) }
        }
    }

    /// Reads one file and analyses every new spectrum in it.
    func take(channel i: Int, directory: Int32, name rawName: String) {
        let channels = live.current.channels
        guard channels.indices.contains(i), let spec = channels[i].spectra else { return }
        let c = channels[i]
        let name = SafeText.escaped(rawName)
        func reject(_ why: String) { emit(channel: c.name, detail: "spectrum \(name) rejected: \(why)", level: .warning) }
        let content: SpectrumFileContent
        switch SpectrumFileReader.read(directory: directory, name: rawName, limit: Self.maxFileBytes) {
        case .failure(let why): return reject("\(why)")
        case .success(let got): content = got
        }
        let options = ReadOptions(timeZone: spec.timeZone.flatMap(TimeZone.init(identifier:)) ?? .current,
                                  dateOrder: spec.dateOrder, modificationTime: content.modified)
        let spectra: [Spectrum]
        do throws(SpectrumParseError) {
            spectra = try SpectrumReader.read(data: content.data, fileName: rawName, options: options)
        } catch {
            // The reader's words and the file's name only: never the file's content.
            var e = error
            e = SpectrumParseError(e.kind, fileName: name, line: e.line, column: e.column)
            return reject(e.descriptionWithoutContent)
        }
        // Only what has not been taken from this file before.
        let new = lock.withLock { () -> [Spectrum] in
            var files = taken[i] ?? [:]
            if files.values.map(\.count).reduce(0, +) + spectra.count > Self.maxRemembered { files.removeAll() }
            var known = files[rawName] ?? [:]
            let new = spectra.filter { s in
                let key = Self.key(s)
                return known[key].map { $0 < s.count } ?? true
            }
            for s in new { known[Self.key(s)] = s.count }
            files[rawName] = known
            taken[i] = files
            if new.count > 1 { limits[i]?.charge(min(new.count, Self.maxSpectraPerFile) - 1) }
            return new
        }
        guard !new.isEmpty else { return }
        let fresh = Array(new.suffix(Self.maxSpectraPerFile))
        if new.count > fresh.count {
            emit(channel: c.name, detail: "spectrum \(name): \(new.count - fresh.count) older loops not analysed (more than \(Self.maxSpectraPerFile) new spectra in one file; the newest \(fresh.count) are)", level: .warning)
        }
        let now = Date().timeIntervalSince1970
        var options2 = AnalysisOptions()
        options2.maximumInterfacialRelativeError = spec.maxRelativeError
        options2.requireKramersKronig = spec.requireKramersKronig
        var outcomes: [(Spectrum, String, push: PushedSignals?, acquired: Double)] = []
        for s in fresh {
            let label = "spectrum \(name)" + (s.sweep.map { " loop \($0) of \(spectra.count)" } ?? "")
            guard s.count <= Self.maxPoints else {
                outcomes.append((s, "\(label) rejected: \(s.count) points; a spectrum has at most \(Self.maxPoints) (is this a time series?)", nil, 0))
                continue
            }
            let acquired = s.acquiredAt?.timeIntervalSince1970 ?? content.modified.timeIntervalSince1970
            let dated = Self.dating(s, acquired)
            switch SpectrumAnalysis.analyse(s, options: options2) {
            case .failure(let why):
                outcomes.append((s, "\(label) rejected (\(s.source.readerName), \(s.count) points, \(dated)): \(why)" + Self.notes(s), nil, acquired))
            case .success(let a):
                let age = now - acquired
                guard age >= -5 else {
                    outcomes.append((s, "\(label) rejected: \(dated), \(fmt0(-age)) s in the future: check the analyser PC's clock and time_zone", nil, acquired))
                    continue
                }
                let r = a.areaSpecific(areaCM2: c.control.cellArea)
                var detail = "\(label) (\(s.source.readerName), \(s.count) points, \(dated)): " + Self.result(a, r)
                // Stale as the loop will judge it: on its clock (time_scale on a fast simulated rig).
                var push: PushedSignals? = nil
                if age * live.current.timeScale > c.pushedStaleAfter {
                    detail += "; not used: \(fmt0(age)) s old, beyond pushed_stale_after_s \(fmt0(c.pushedStaleAfter)) s"
                } else {
                    push = PushedSignals(interfacialResistance: r.interfacial, bulkResistance: r.bulk, age: max(0, age))
                }
                outcomes.append((s, detail + Self.notes(s), push, acquired))
            }
        }
        // The loop keeps the latest value: only the newest fresh result goes to it, and never one
        // older than what the channel already has.
        let newest = outcomes.indices.filter { outcomes[$0].push != nil }.max { outcomes[$0].acquired < outcomes[$1].acquired }
        for (k, o) in outcomes.enumerated() {
            var detail = o.1
            if o.push != nil, k != newest {
                detail += "; not used: a newer spectrum of the same file supersedes it"
            } else if let p = o.push {
                let older = lock.withLock { () -> Double? in
                    if let n = newestPushed[i], n > o.acquired { return n }
                    newestPushed[i] = o.acquired
                    return nil
                }
                if let n = older {
                    detail += "; not used: older than the channel's latest spectrum (acquired \(Self.iso(n)))"
                } else if !loop.inbox.offer(PendingCommand(.push(channel: i, p)) { _ in }) {
                    detail += "; not used: the loop's command queue is full"
                }
            }
            emit(channel: c.name, detail: detail, level: detail.contains(" rejected") ? .warning : .info)
        }
    }

    /// One event: the run log and the journal, as one line with every control character escaped.
    private func emit(channel: String, detail raw: String, level: Logger.Level) {
        let detail = SafeText.escaped(raw)
        logger.log(level: level, "\(detail)", metadata: ["channel": "\(SafeText.escaped(channel))"])
        record(RunLogEvent(time: Date().timeIntervalSince1970, channel: channel, kind: "impedance", detail: detail))
    }

    static func key(_ s: Spectrum) -> SpectrumKey {
        SpectrumKey(sweep: s.sweep ?? 1, first: [s.frequencies.first ?? 0, s.real.first ?? 0, s.imaginary.first ?? 0])
    }

    /// "acquired 2026-…Z from the file" or "… by the file's modification time (why)".
    static func dating(_ s: Spectrum, _ acquired: Double) -> String {
        switch s.timeSource {
        case .file: return "acquired \(iso(acquired)) from the file"
        case .modificationTime(let why): return "acquired \(iso(acquired)) by the file's modification time (\(why))"
        case .none(let why): return "acquired \(iso(acquired)) by the file's modification time (\(why))"
        }
    }

    /// The fitted values as the event gives them, per cm² of the cell.
    static func result(_ a: Analysis, _ r: (bulk: Double, bulkError: Double, interfacial: Double?, interfacialError: Double?)) -> String {
        var t: String
        switch a.kind {
        case .interfacialArc:
            t = "R_int \(fmt3(r.interfacial ?? .nan)) ± \(fmt3(r.interfacialError ?? .nan)) Ω·cm², R_b \(fmt3(r.bulk)) ± \(fmt3(r.bulkError)) Ω·cm², "
                + "CPE α \(fmt3(a.cpeAlpha))" + (a.warburgSigma != nil ? ", Warburg tail" : "")
        case .blockingElectrode:
            t = "blocking electrodes: R_b \(fmt3(r.bulk)) ± \(fmt3(r.bulkError)) Ω·cm²"
            if let b = a.blocking, let c = b.arcCapacitance, let f = b.arcApexFrequency {
                t += String(format: " (bulk arc %.3g F at %.3g Hz)", c, f)
            }
            t += ", R_int not defined for this spectrum, electrode CPE β \(fmt3(a.cpeAlpha))"
        }
        t += ", Kramers–Kronig residual \(fmt3(a.kramersKronig.maxResidual * 100)) %"
        if let trim = a.kramersKronig.trimDescription { t += "; Lin-KK: \(trim)" }
        return t
    }

    /// The reader's notes, if any ("; read: …").
    static func notes(_ s: Spectrum) -> String {
        s.notes.isEmpty ? "" : "; read: " + s.notes.joined(separator: "; ")
    }

    static func iso(_ t: Double) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
}

/// An impedance analyser's spectrum files for one channel (`[channels.NAME.impedance]`).
public struct SpectraConfig: Sendable, Equatable {
    /// The directory watched for new files (BioLogic `.mpt`, Gamry `.DTA`, CSV).
    public var directory: String
    /// The analyser PC's time zone, for files that give local time (EC-Lab, Gamry);
    /// nil: this machine's.
    public var timeZone: String?
    /// The analyser PC's date convention, for dates written in its locale (Gamry, ZPlot)
    /// whose day and month could be either way round; nil: by the date's separator.
    public var dateOrder: DateOrder?
    /// A fit whose interfacial resistance has a larger relative standard error is
    /// rejected.
    public var maxRelativeError: Double = 0.25
    /// Reject spectra that fail the Kramers–Kronig (Lin-KK) consistency check.
    public var requireKramersKronig = true
}

extension SpectraConfig {
    /// Reads `[channels.NAME.impedance]`: the directory (required, absolute), the analyser
    /// PC's time zone and date order, and the fit's acceptance.
    static func parse(_ m: TableReader) throws(ConfigError) -> SpectraConfig {
        guard let dir = try m.string("spectra_dir") else { throw m.error("spectra_dir", "is required: the directory the analyser writes this channel's spectra to") }
        guard dir.hasPrefix("/") else { throw m.error("spectra_dir", "must be an absolute path (got '\(dir)')") }
        var s = SpectraConfig(directory: dir)
        if let z = try m.string("time_zone") {
            guard TimeZone(identifier: z) != nil else { throw m.error("time_zone", "'\(z)' is not a time zone name (e.g. Europe/Berlin, UTC)") }
            s.timeZone = z
        }
        if let o = try m.string("date_order") {
            guard let order = DateOrder(rawValue: o) else {
                throw m.error("date_order", "'\(o)' is not a date order: month_first (4/23/2018 is 23 April) or day_first (17.7.2024 is 17 July)")
            }
            s.dateOrder = order
        }
        s.maxRelativeError = try m.positive("max_relative_error", default: 0.25)
        guard s.maxRelativeError <= 1 else { throw m.error("max_relative_error", "must be ≤ 1") }
        s.requireKramersKronig = try m.bool("require_kramers_kronig") ?? true
        try m.rejectUnknownKeys()
        return s
    }
}
