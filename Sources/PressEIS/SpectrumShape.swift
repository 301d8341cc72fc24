import Foundation

/// What a spectrum looks like on a Nyquist plot, read from the points alone (no model):
/// where its arcs peak and whether it ends in a blocking-electrode spike. Internal.
struct SpectrumShape {
    /// 3-point-smoothed −Z″, descending-frequency order.
    var smoothedNegativeImaginary: [Double]
    /// Indices (descending-frequency order) of interior maxima of the 3-point-smoothed −Z″
    /// that stand out (the largest within ±3 points, at least 3 % of |Z| there and a tenth of the
    /// highest such maximum, falling to half its height on both sides before anything higher): arc apexes.
    var apexes: [Int]
    /// Phase of Z in degrees at the lowest frequencies (mean of the last three points; −90° is a
    /// pure capacitor).
    var lowFrequencyPhase: Double
    /// Whether −Z″ rises monotonically (within noise) over the last half decade while Z′ changes
    /// much less: the capacitive spike of a blocking electrode.
    var blockingTail: Bool

    /// Reads the shape of a spectrum sorted by descending frequency.
    init(_ s: Spectrum) {
        let n = s.count
        let negIm = s.imaginary.map { -$0 }
        var sm = negIm
        if n >= 3 { for i in 1..<(n - 1) { sm[i] = (negIm[i - 1] + negIm[i] + negIm[i + 1]) / 3 } }
        let top = sm.max() ?? 0
        var apexes: [Int] = []
        if n >= 5, top > 0 {
            for i in 2..<(n - 2) where sm[i] > 0.03 * s.modulus(at: i) {
                let lo = max(0, i - 3), hi = min(n - 1, i + 3)
                if (lo...hi).allSatisfy({ sm[$0] <= sm[i] }), sm[i] > sm[lo] || sm[i] > sm[hi] { apexes.append(i) }
            }
        }
        // Noise makes small bumps on an intercept: an apex is an arc's only when it reaches a tenth
        // of the largest one.
        // An arc falls to half its height on both sides (or the sweep ends first) before anything
        // higher: a bump on the flank of a bigger arc is not one.
        func falls(from a: Int, step: Int) -> Bool {
            var j = a + step
            while j >= 0, j < n {
                if sm[j] <= 0.5 * sm[a] { return true }
                if sm[j] > sm[a] { return false }
                j += step
            }
            return true
        }
        let highest = apexes.map { sm[$0] }.max() ?? 0
        self.apexes = apexes.filter { sm[$0] >= 0.1 * highest && falls(from: $0, step: -1) && falls(from: $0, step: 1) }
        smoothedNegativeImaginary = sm
        let tail = max(0, n - 3)..<n
        let phases = tail.map { atan2(s.imaginary[$0], s.real[$0]) * 180 / Double.pi }
        lowFrequencyPhase = phases.isEmpty ? 0 : phases.reduce(0, +) / Double(phases.count)
        // The spike: over the lowest half decade, −Z″ grows by more than Z′ does, and the phase is steeper than −60°.
        let fLast = s.frequencies.last ?? 1
        let start = s.frequencies.firstIndex { $0 <= fLast * pow(10, 0.5) } ?? n
        if n >= 5, start < n - 2 {
            let dIm = negIm[n - 1] - negIm[start], dRe = abs(s.real[n - 1] - s.real[start])
            blockingTail = lowFrequencyPhase < -60 && dIm > 2 * dRe && negIm[n - 1] > 0
        } else {
            blockingTail = false
        }
    }

    /// The points that make up each arc: around every apex, the run of points whose smoothed −Z″
    /// is at least `fraction` of the apex's, and one more point on each side (where the arc is
    /// lower than that). An arc whose points are inconsistent is not trimmed away.
    func arcIndices(fraction: Double) -> [ClosedRange<Int>] {
        let sm = smoothedNegativeImaginary
        return apexes.map { a in
            var lo = a, hi = a
            // Down the arc's flanks only (not up into a neighbouring, higher arc).
            while lo > 0, sm[lo - 1] >= fraction * sm[a], sm[lo - 1] <= sm[a] { lo -= 1 }
            while hi < sm.count - 1, sm[hi + 1] >= fraction * sm[a], sm[hi + 1] <= sm[a] { hi += 1 }
            return max(0, lo - 1)...min(sm.count - 1, hi + 1)
        }
    }
}
