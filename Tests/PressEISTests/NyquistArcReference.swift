import Foundation
import PressEIS

/// An independent estimate of R_b and R_int, written apart from the fitter and sharing none of
/// its code: an algebraic circle through the arc on the Nyquist plane.
///
/// A R ‖ CPE arc is an exact circular arc (its centre below the real axis for α < 1), so the
/// circle x² + y² + D·x + E·y + F = 0 through the points (x = Z′, y = −Z″) — a linear least-squares
/// problem in D, E, F (Kåsa's fit), solved here by its 3 × 3 normal equations with Cramer's rule —
/// crosses the real axis at R_b and R_b + R_int. For blocking electrodes the same circle through the
/// bulk arc gives R_b at its low-frequency crossing.
///
/// Points used: from the highest frequency (inductive points with −Z″ ≤ 0 dropped) down to the
/// lowest −Z″ after the arc's top (where a Warburg tail or a blocking spike begins), or to the
/// end when −Z″ does not rise again.
enum NyquistArcReference {
    struct Estimate { var bulk: Double; var interfacial: Double; var points: Int }

    /// `lowFrequencyCrossing`: for blocking electrodes, R_b is the circle's low-frequency crossing.
    static func estimate(_ s: Spectrum, lowFrequencyCrossing: Bool = false) -> Estimate? {
        let order = s.frequencies.indices.sorted { s.frequencies[$0] > s.frequencies[$1] }
        var x = order.map { s.real[$0] }, y = order.map { -s.imaginary[$0] }
        while let first = y.first, first <= 0 { x.removeFirst(); y.removeFirst() }
        guard y.count >= 5 else { return nil }
        // Located on a 3-point average (noise), fitted on the points themselves.
        let sm = y.indices.map { i in (max(0, i - 1)...min(y.count - 1, i + 1)).map { y[$0] }.reduce(0, +) / Double(min(y.count - 1, i + 1) - max(0, i - 1) + 1) }
        // The arc's top: the largest value before the curve has fallen 20 % below it.
        var top = 0
        for i in 1..<sm.count {
            if sm[i] > sm[top] { top = i }
            if sm[i] < 0.8 * sm[top] { break }
        }
        // Its foot: the lowest value after the top before the curve rises 20 % above it again.
        var end = y.count - 1, low = top
        for i in top..<sm.count {
            if sm[i] < sm[low] { low = i }
            if sm[i] > 1.2 * sm[low] { end = low; break }
        }
        let xs = Array(x[0...end]), ys = Array(y[0...end])
        guard xs.count >= 4 else { return nil }
        // Normal equations of  D·x + E·y + F = −(x² + y²).
        var m = [[Double]](repeating: [0, 0, 0], count: 3), r = [0.0, 0.0, 0.0]
        for (a, b) in zip(xs, ys) {
            let v = [a, b, 1.0], t = -(a * a + b * b)
            for i in 0..<3 { for j in 0..<3 { m[i][j] += v[i] * v[j] }; r[i] += v[i] * t }
        }
        func det(_ a: [[Double]]) -> Double {
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        }
        let d0 = det(m)
        guard d0 != 0 else { return nil }
        var sol = [0.0, 0.0, 0.0]
        for k in 0..<3 {
            var mk = m
            for i in 0..<3 { mk[i][k] = r[i] }
            sol[k] = det(mk) / d0
        }
        let (dd, ff) = (sol[0], sol[2])
        let disc = dd * dd - 4 * ff
        guard disc > 0 else { return nil }
        let lo = (-dd - disc.squareRoot()) / 2, hi = (-dd + disc.squareRoot()) / 2
        if lowFrequencyCrossing { return Estimate(bulk: hi, interfacial: .nan, points: xs.count) }
        return Estimate(bulk: lo, interfacial: hi - lo, points: xs.count)
    }
}
