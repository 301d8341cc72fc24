import Foundation
import Logging
import PressCore
import PressDrivers
import PressEIS
import PressLog

/// Turns an impedance analyser's spectrum files into the channel's resistance signals.
///
/// Each channel with `[channels.NAME.impedance] spectra_dir` has its directory watched
/// (inotify, on the ``DirectoryWatcher`` thread). A new file is parsed (BioLogic `.mpt`,
/// Gamry `.DTA`, CSV), checked for Kramers–Kronig consistency and fitted to
/// R_b + (R_int ‖ CPE) [+ W]; the accepted interfacial and bulk resistances, per cm² of
/// the cell, go to the loop as pushed signals stamped with the spectrum's own
/// acquisition time. Every file gives one `impedance` event in the run log and the
/// journal — accepted with the fit, or rejected with the reason and the file named.
/// Nothing here runs on the control loop's thread.
final class SpectrumIntake: @unchecked Sendable {
    private var watcher: DirectoryWatcher!
    private let loop: ControlLoop
    private let live: LiveConfig
    private let logger: Logger
    private let record: @Sendable (RunLogEvent) -> Void
    /// Files already taken (path → size and modification time), so that a file closed
    /// twice (an SMB copy) is analysed once.
    private var seen: [String: (Int, Double)] = [:]
    private let lock = NSLock()
    /// Larger files are not spectra (a 200-point EC-Lab export with every column is
    /// about 100 kB), nor are spectra with more points: the fit's cost grows with them
    /// and one file must not hold up the next for minutes.
    static let maxFileBytes = 4 << 20
    static let maxPoints = 2000

    init?(live: LiveConfig, loop: ControlLoop, logger: Logger, record: @escaping @Sendable (RunLogEvent) -> Void) {
        let dirs = live.current.channels.enumerated().compactMap { i, c in c.spectra.map { DirectoryWatcher.Directory(path: $0.directory, tag: i) } }
        guard !dirs.isEmpty else { return nil }
        self.live = live; self.loop = loop; self.logger = logger; self.record = record
        watcher = DirectoryWatcher(directories: dirs) { [weak self] tag, path in self?.take(channel: tag, path: path) }
    }

    /// Starts watching; spectra written while the daemon was down and still fresh
    /// (younger than the channel's `pushed_stale_after_s`) are taken first.
    func start() throws(DirectoryWatchError) {
        let within = live.current.channels.filter { $0.spectra != nil }.map(\.pushedStaleAfter).max() ?? 0
        let names = live.current.channels.map(\.name)
        let name: @Sendable (DirectoryWatcher.Directory) -> String = { d in names.indices.contains(d.tag) ? names[d.tag] : "?" }
        let (logger, record) = (self.logger, self.record)
        watcher.onWatched = { d in
            logger.notice("impedance spectra of channel \(name(d)) watched at last", metadata: ["directory": "\(d.path)"])
            record(RunLogEvent(time: Date().timeIntervalSince1970, channel: name(d), kind: "impedance", detail: "spectra directory \(d.path) watched"))
        }
        let failed = try watcher.start(existingWithin: within)
        for (d, e) in failed {
            logger.error("impedance spectra of channel \(name(d)) not watched: \(e)")
            record(RunLogEvent(time: Date().timeIntervalSince1970, channel: name(d), kind: "impedance", detail: "spectra directory not watched: \(e)"))
        }
        logger.info("watching for impedance spectra", metadata: ["directories": "\(watcher.directories.map(\.path).joined(separator: ", "))"])
    }

    func stop() { watcher.stop() }

    /// Analyses one file and hands the result to the loop. Public for tests.
    func take(channel i: Int, path: String) {
        let channels = live.current.channels
        guard channels.indices.contains(i), let spec = channels[i].spectra else { return }
        let c = channels[i]
        let name = (path as NSString).lastPathComponent
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else { return }
        let size = (attrs[.size] as? NSNumber)?.intValue ?? 0
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let fresh = lock.withLock { () -> Bool in
            if let s = seen[path], s == (size, mtime) { return false }
            if seen.count > 10_000 { seen.removeAll() }
            seen[path] = (size, mtime)
            return true
        }
        guard fresh else { return }
        func reject(_ why: String) {
            let msg = "spectrum \(name) rejected: \(why)"
            logger.warning("\(msg)", metadata: ["channel": "\(c.name)", "file": "\(path)"])
            record(RunLogEvent(time: Date().timeIntervalSince1970, channel: c.name, kind: "impedance", detail: msg))
        }
        // Only regular files (lstat: a symbolic link is not followed, a FIFO or device
        // is never opened).
        if let type = attrs[.type] as? FileAttributeType, type != .typeRegular {
            return reject(type == .typeSymbolicLink ? "is a symbolic link; only regular files are read (copy the spectrum instead)"
                                                    : "is not a regular file (\(type.rawValue)); only regular files are read")
        }
        guard size <= Self.maxFileBytes else { return reject("\(size) bytes is too large for a spectrum (limit \(Self.maxFileBytes >> 20) MiB)") }
        guard let data = FileManager.default.contents(atPath: path) else { return reject("cannot be read by the pressd user (check its permissions)") }
        let zone = spec.timeZone.flatMap(TimeZone.init(identifier:)) ?? .current
        let spectrum: Spectrum
        do throws(SpectrumParseError) { spectrum = try SpectrumReader.parse(data: data, fileName: name, timeZone: zone) } catch { return reject("\(error)") }
        guard spectrum.count <= Self.maxPoints else { return reject("\(spectrum.count) points; a spectrum has at most \(Self.maxPoints) (is this a time series?)") }
        var options = AnalysisOptions()
        options.maximumInterfacialRelativeError = spec.maxRelativeError
        options.requireKramersKronig = spec.requireKramersKronig
        let analysis: Analysis
        switch SpectrumAnalysis.analyse(spectrum, options: options) {
        case .failure(let why): return reject("\(why)")
        case .success(let a): analysis = a
        }
        // The spectrum's own time; a file without one is dated by its modification time.
        let acquired = spectrum.acquiredAt?.timeIntervalSince1970 ?? mtime
        let timeSource = spectrum.acquiredAt != nil ? "from the file" : "the file's modification time"
        let now = Date().timeIntervalSince1970
        let age = now - acquired
        guard age >= -5 else { return reject("acquired \(Self.iso(acquired)) (\(timeSource)), \(fmt0(-age)) s in the future: check the analyser PC's clock and time_zone") }
        let r = analysis.areaSpecific(areaCM2: c.control.cellArea)
        let format: String
        switch spectrum.source {
        case .bioLogicMPT: format = "EC-Lab mpt"
        case .gamryDTA: format = "Gamry DTA"
        case .csv: format = "csv"
        case .synthetic: format = "synthetic"
        }
        var detail = "spectrum \(name) (\(format), \(spectrum.count) points, acquired \(Self.iso(acquired)) \(timeSource)): "
            + "R_int \(fmt3(r.interfacial)) ± \(fmt3(r.interfacialError)) Ω·cm², R_b \(fmt3(r.bulk)) ± \(fmt3(r.bulkError)) Ω·cm², "
            + "CPE α \(fmt3(analysis.cpeAlpha))" + (analysis.warburgSigma != nil ? ", Warburg tail" : "")
            + ", Kramers–Kronig residual \(fmt3(analysis.kramersKronig.maxResidual * 100)) %"
        // Stale as the loop will judge it: on its clock (time_scale on a fast simulated rig).
        if age * live.current.timeScale > c.pushedStaleAfter {
            detail += "; not used: \(fmt0(age)) s old, beyond pushed_stale_after_s \(fmt0(c.pushedStaleAfter)) s"
        } else {
            let push = PushedSignals(interfacialResistance: r.interfacial, bulkResistance: r.bulk, age: max(0, age))
            if !loop.inbox.offer(PendingCommand(.push(channel: i, push)) { _ in }) { detail += "; not used: the loop's command queue is full" }
        }
        logger.info("\(detail)", metadata: ["channel": "\(c.name)"])
        record(RunLogEvent(time: Date().timeIntervalSince1970, channel: c.name, kind: "impedance", detail: detail))
    }

    static func iso(_ t: Double) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
}
