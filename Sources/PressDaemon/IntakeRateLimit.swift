import Foundation

/// Bounds how many spectra one channel's directory may have analysed and reported: a token
/// bucket of `burst` spectra refilled at `perSecond`. A file that arrives with the bucket empty
/// is not opened at all: it is counted for a summary event (at most one every
/// `summaryInterval` seconds) and the newest such file is kept and taken as soon as the rate
/// allows, so a flood cannot hide the analyser's latest spectrum. A file of several spectra
/// costs one token per spectrum and may take the bucket below zero (to −`burst`), so the
/// events are bounded by burst + rate × time + one file's spectra.
struct IntakeRateLimit {
    var burst: Double = 120
    var perSecond: Double = 1
    var summaryInterval: Double = 10

    private(set) var tokens: Double
    private var last: Double
    /// Files skipped since the last summary (the newest one, kept aside, not counted).
    private(set) var skipped = 0
    private var firstSkipped: String?
    private var lastSummary: Double
    /// The newest skipped file, taken when the rate allows.
    private(set) var deferred: String?

    init(now: Double, burst: Double = 120, perSecond: Double = 1, summaryInterval: Double = 10) {
        self.burst = burst; self.perSecond = perSecond; self.summaryInterval = summaryInterval
        tokens = burst; last = now; lastSummary = now
    }

    private mutating func refill(_ now: Double) {
        tokens = min(burst, tokens + max(0, now - last) * perSecond)
        last = now
    }

    /// Whether a file may be taken now (costing one token); if not, it is counted and becomes the deferred one.
    mutating func admit(_ name: String, now: Double) -> Bool {
        refill(now)
        if tokens >= 1 {
            tokens -= 1
            if deferred == name { deferred = nil }
            return true
        }
        if let previous = deferred, previous != name {
            skipped += 1
            if firstSkipped == nil { firstSkipped = previous }
        }
        deferred = name
        return false
    }

    /// Charges the spectra of a file beyond its first.
    mutating func charge(_ spectra: Int) {
        tokens = max(-burst, tokens - Double(max(0, spectra)))
    }

    /// The deferred file when a token is there for it (taking that token).
    mutating func takeDeferred(now: Double) -> String? {
        refill(now)
        guard let d = deferred, tokens >= 1 else { return nil }
        tokens -= 1
        deferred = nil
        return d
    }

    /// The summary of the skipped files when one is due (the seconds it covers, how many, the
    /// first, the one kept for later), resetting the count.
    mutating func summary(now: Double) -> (seconds: Double, count: Int, first: String?, newest: String?)? {
        guard skipped > 0, now - lastSummary >= summaryInterval else { return nil }
        defer { skipped = 0; firstSkipped = nil; lastSummary = now }
        return (now - lastSummary, skipped, firstSkipped, deferred)
    }
}
