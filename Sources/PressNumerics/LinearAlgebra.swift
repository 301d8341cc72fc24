#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small dense matrix, row-major: what the Levenberg–Marquardt fits need.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var data: [Double]

    public init(rows: Int, cols: Int, repeating v: Double = 0) {
        self.rows = rows; self.cols = cols
        data = Array(repeating: v, count: rows * cols)
    }

    public subscript(r: Int, c: Int) -> Double {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    /// AᵀA (n×n).
    public func gram() -> Matrix {
        var g = Matrix(rows: cols, cols: cols)
        for r in 0..<rows {
            let base = r * cols
            for i in 0..<cols {
                let a = data[base + i]
                if a == 0 { continue }
                for j in i..<cols { g.data[i * cols + j] += a * data[base + j] }
            }
        }
        for i in 0..<cols { for j in 0..<i { g[i, j] = g[j, i] } }
        return g
    }

    /// Aᵀv.
    public func transposeTimes(_ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: cols)
        for r in 0..<rows {
            let vr = v[r]
            if vr == 0 { continue }
            let base = r * cols
            for c in 0..<cols { out[c] += data[base + c] * vr }
        }
        return out
    }
}

/// Cholesky factorisation and solves, the inverse of a symmetric positive-definite matrix,
/// least squares by Householder QR.
public enum LinearAlgebra {
    /// Cholesky factor L (lower, row-major) of a symmetric positive-definite matrix, or nil if it is
    /// not numerically positive definite (pivot ≤ `relTol` × largest diagonal).
    public static func cholesky(_ a: Matrix, relTol: Double = 1e-14) -> Matrix? {
        let n = a.rows
        var l = Matrix(rows: n, cols: n)
        var maxDiag = 0.0
        for i in 0..<n { maxDiag = max(maxDiag, abs(a[i, i])) }
        guard maxDiag > 0, maxDiag.isFinite else { return nil }
        for j in 0..<n {
            var s = a[j, j]
            for k in 0..<j { s -= l[j, k] * l[j, k] }
            guard s > relTol * maxDiag, s.isFinite else { return nil }
            let d = s.squareRoot()
            l[j, j] = d
            for i in (j + 1)..<n {
                var t = a[i, j]
                for k in 0..<j { t -= l[i, k] * l[j, k] }
                l[i, j] = t / d
            }
        }
        return l
    }

    /// Solves L Lᵀ x = b.
    public static func choleskySolve(_ l: Matrix, _ b: [Double]) -> [Double] {
        let n = l.rows
        var y = b
        for i in 0..<n {
            var s = y[i]
            for k in 0..<i { s -= l[i, k] * y[k] }
            y[i] = s / l[i, i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = y[i]
            for k in (i + 1)..<n { s -= l[k, i] * y[k] }
            y[i] = s / l[i, i]
        }
        return y
    }

    /// Inverse of a symmetric positive-definite matrix via equilibrated Cholesky, or nil if singular.
    public static func spdInverse(_ a: Matrix) -> Matrix? {
        let n = a.rows
        // Equilibrate: D A D with D = diag(1/sqrt(a_ii)) to make the conditioning test scale-free.
        var d = [Double](repeating: 1, count: n)
        for i in 0..<n {
            guard a[i, i] > 0 else { return nil }
            d[i] = 1 / a[i, i].squareRoot()
        }
        var s = a
        for i in 0..<n { for j in 0..<n { s[i, j] = a[i, j] * d[i] * d[j] } }
        guard let l = cholesky(s, relTol: 1e-13) else { return nil }
        var inv = Matrix(rows: n, cols: n)
        for j in 0..<n {
            var e = [Double](repeating: 0, count: n); e[j] = 1
            let x = choleskySolve(l, e)
            for i in 0..<n { inv[i, j] = x[i] * d[i] * d[j] }
        }
        return inv
    }

    /// Least-squares solution of min ‖A x − b‖ by Householder QR with column scaling.
    /// Returns nil when A is numerically rank-deficient (|R_ii| ≤ 1e-12 · max|R_jj|).
    public static func leastSquares(_ a: Matrix, _ b: [Double]) -> [Double]? {
        let m = a.rows, n = a.cols
        guard m >= n, n > 0 else { return nil }
        var q = a
        var rhs = b
        // Column scaling to unit norm improves the rank test.
        var scale = [Double](repeating: 1, count: n)
        for c in 0..<n {
            var s = 0.0
            for r in 0..<m { s += q[r, c] * q[r, c] }
            s = s.squareRoot()
            guard s > 0, s.isFinite else { return nil }
            scale[c] = s
            for r in 0..<m { q[r, c] /= s }
        }
        var diag = [Double](repeating: 0, count: n)
        for k in 0..<n {
            var norm = 0.0
            for r in k..<m { norm += q[r, k] * q[r, k] }
            norm = norm.squareRoot()
            if norm == 0 { return nil }
            let alpha = q[k, k] > 0 ? -norm : norm
            // v = x - alpha e1, stored in column k below and at the diagonal.
            q[k, k] -= alpha
            var vnorm2 = 0.0
            for r in k..<m { vnorm2 += q[r, k] * q[r, k] }
            if vnorm2 > 0 {
                for c in (k + 1)..<n {
                    var dot = 0.0
                    for r in k..<m { dot += q[r, k] * q[r, c] }
                    let f = 2 * dot / vnorm2
                    for r in k..<m { q[r, c] -= f * q[r, k] }
                }
                var dot = 0.0
                for r in k..<m { dot += q[r, k] * rhs[r] }
                let f = 2 * dot / vnorm2
                for r in k..<m { rhs[r] -= f * q[r, k] }
            }
            diag[k] = alpha
        }
        let maxR = diag.map { abs($0) }.max() ?? 0
        guard maxR > 0 else { return nil }
        for k in 0..<n where abs(diag[k]) <= 1e-12 * maxR { return nil }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = rhs[i]
            for c in (i + 1)..<n { s -= q[i, c] * x[c] }
            x[i] = s / diag[i]
        }
        for c in 0..<n { x[c] /= scale[c] }
        return x
    }
}
