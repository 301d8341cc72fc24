import Testing
import PressNumerics
#if canImport(Glibc)
import Glibc
#endif

/// The one Levenberg–Marquardt of the project (the CSP knee fit and the impedance fits use it).
@Suite("Levenberg–Marquardt")
struct LevenbergMarquardtTests {
    /// Residuals and Jacobian of y = a·exp(−b·x) against `ys`.
    static func decay(_ xs: [Double], _ ys: [Double]) -> ([Double]) -> (r: [Double], j: Matrix) {
        { t in
            var j = Matrix(rows: xs.count, cols: 2)
            let r = xs.indices.map { i in
                let e = exp(-t[1] * xs[i])
                j[i, 0] = e
                j[i, 1] = -t[0] * xs[i] * e
                return t[0] * e - ys[i]
            }
            return (r, j)
        }
    }

    @Test("an exact exponential decay is recovered from a distant start, unbounded")
    func recoversExactParameters() {
        let xs = (0..<20).map { Double($0) * 0.25 }
        let ys = xs.map { 3 * exp(-0.7 * $0) }
        let r = LevenbergMarquardt().minimise(theta0: [1, 3], lower: [-.infinity, -.infinity], upper: [.infinity, .infinity],
                                              evaluate: Self.decay(xs, ys))
        #expect(r.converged)
        #expect(abs(r.theta[0] - 3) < 1e-8 && abs(r.theta[1] - 0.7) < 1e-8, "\(r.theta)")
        #expect(r.chiSquared < 1e-16)
    }

    @Test("a bound the unbounded minimum lies beyond holds the parameter on it; the other one is fitted given it")
    func respectsBounds() {
        let xs = (0..<20).map { Double($0) * 0.25 }
        let ys = xs.map { 3 * exp(-0.7 * $0) }
        let r = LevenbergMarquardt().minimise(theta0: [1, 0.2], lower: [-.infinity, 0], upper: [.infinity, 0.5],
                                              evaluate: Self.decay(xs, ys))
        #expect(r.theta[1] == 0.5, "\(r.theta)")
        // With b fixed at 0.5, a is linear: Σ y·e / Σ e².
        let e = xs.map { exp(-0.5 * $0) }
        let a = zip(ys, e).map { $0 * $1 }.reduce(0, +) / e.map { $0 * $0 }.reduce(0, +)
        #expect(abs(r.theta[0] - a) < 1e-8, "\(r.theta[0]) vs \(a)")
    }

    @Test("the inverse of a symmetric positive-definite matrix, and nil for a singular one")
    func spdInverse() throws {
        var m = Matrix(rows: 2, cols: 2)
        m[0, 0] = 4; m[0, 1] = 1; m[1, 0] = 1; m[1, 1] = 3
        let inv = try #require(LinearAlgebra.spdInverse(m))
        #expect(abs(inv[0, 0] - 3.0 / 11) < 1e-15 && abs(inv[0, 1] + 1.0 / 11) < 1e-15 && abs(inv[1, 1] - 4.0 / 11) < 1e-15)
        m[1, 1] = 0.25
        #expect(LinearAlgebra.spdInverse(m) == nil)
    }

    // Moved with the code from PressEISTests/FitTests.swift, unchanged.
    @Test func linearAlgebra() throws {
        // Over-determined system with known solution.
        var a = Matrix(rows: 4, cols: 2)
        let rows: [[Double]] = [[1, 1], [1, 2], [1, 3], [1, 4]]
        for (i, r) in rows.enumerated() { a[i, 0] = r[0]; a[i, 1] = r[1] }
        let x = try #require(LinearAlgebra.leastSquares(a, [3, 5, 7, 9]))
        #expect(abs(x[0] - 1) < 1e-12 && abs(x[1] - 2) < 1e-12)
        // Rank-deficient matrix is refused rather than producing garbage.
        var s = Matrix(rows: 3, cols: 2)
        for i in 0..<3 { s[i, 0] = Double(i + 1); s[i, 1] = 2 * Double(i + 1) }
        #expect(LinearAlgebra.leastSquares(s, [1, 2, 3]) == nil)
        #expect(LinearAlgebra.spdInverse(s.gram()) == nil)
    }
}
