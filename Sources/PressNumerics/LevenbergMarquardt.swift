/// Bounded Levenberg–Marquardt for small problems (a handful of parameters): the one
/// solver of the impedance fits (PressEIS) and the knee fit of the CSP sweep (PressCore).
///
/// Minimises Σ rᵢ(θ)² with Marquardt's diagonal scaling; the damped normal equations
/// (JᵀJ + λ diag(JᵀJ)) δ = −Jᵀr are solved by Cholesky (λ is raised when the factorisation
/// fails). Box bounds are handled by projection plus an active set: a parameter sitting on a
/// bound whose gradient pushes it outward is frozen for that iteration.
public struct LevenbergMarquardt: Sendable {
    /// Where the minimisation ended.
    public struct Result: Sendable {
        /// The parameters, within the bounds.
        public var theta: [Double]
        /// The residuals and their Jacobian (∂rᵢ/∂θⱼ) at `theta`.
        public var residuals: [Double]
        public var jacobian: Matrix
        /// Σ rᵢ².
        public var chiSquared: Double
        public var iterations: Int
        /// Whether a convergence criterion was met (else the iterations ran out or no step
        /// decreased χ²).
        public var converged: Bool
    }

    public var maxIterations = 200
    /// Relative χ² decrease below which an accepted step counts as converged.
    public var fTol = 1e-12
    /// Step size (in θ units) below which an accepted step counts as converged.
    public var xTol = 1e-10
    /// Scaled-gradient tolerance: max |gᵢ| / sqrt((JᵀJ)ᵢᵢ χ²) below which θ is stationary.
    public var gTol = 1e-7

    public init(maxIterations: Int = 200) { self.maxIterations = maxIterations }

    /// Minimises Σ rᵢ(θ)² from `theta0` within `lower`…`upper` (±infinity: unbounded).
    /// `evaluate` returns the residuals and their Jacobian at θ.
    public func minimise(theta0: [Double], lower: [Double], upper: [Double],
                         evaluate: ([Double]) -> (r: [Double], j: Matrix)) -> Result {
        let n = theta0.count
        var theta = zip(zip(theta0, lower), upper).map { min(max($0.0, $0.1), $1) }
        var (r, j) = evaluate(theta)
        var chi2 = r.reduce(0) { $0 + $1 * $1 }
        guard chi2.isFinite else {
            return Result(theta: theta, residuals: r, jacobian: j, chiSquared: .infinity, iterations: 0, converged: false)
        }
        var lambda = 1e-3
        var iterations = 0
        var converged = false

        func stationary(_ g: [Double], _ a: Matrix, _ free: [Bool], _ chi2: Double) -> Bool {
            if chi2 <= 1e-300 { return true }
            for i in 0..<n where free[i] {
                let s = (a[i, i] * chi2).squareRoot()
                if s > 0, abs(g[i]) / s > gTol { return false }
            }
            return true
        }

        outer: while iterations < maxIterations {
            iterations += 1
            let a = j.gram()
            let g = j.transposeTimes(r)
            var free = [Bool](repeating: true, count: n)
            for i in 0..<n {
                if theta[i] <= lower[i] && g[i] > 0 { free[i] = false }
                if theta[i] >= upper[i] && g[i] < 0 { free[i] = false }
            }
            if stationary(g, a, free, chi2) { converged = true; break }
            let idx = (0..<n).filter { free[$0] }
            // Inner loop: raise λ until a step decreases χ².
            while true {
                var m = Matrix(rows: idx.count, cols: idx.count)
                for (p, ip) in idx.enumerated() {
                    for (q, iq) in idx.enumerated() { m[p, q] = a[ip, iq] }
                    m[p, p] += lambda * max(a[ip, ip], 1e-12)
                }
                guard let l = LinearAlgebra.cholesky(m, relTol: 1e-15) else {
                    lambda *= 10
                    if lambda > 1e16 { break outer }
                    continue
                }
                let step = LinearAlgebra.choleskySolve(l, idx.map { -g[$0] })
                var trial = theta
                for (p, ip) in idx.enumerated() { trial[ip] = min(max(theta[ip] + step[p], lower[ip]), upper[ip]) }
                let (rt, jt) = evaluate(trial)
                let chiT = rt.reduce(0) { $0 + $1 * $1 }
                if chiT.isFinite && chiT < chi2 {
                    let decrease = (chi2 - chiT) / chi2
                    var maxStep = 0.0
                    for i in 0..<n { maxStep = max(maxStep, abs(trial[i] - theta[i])) }
                    theta = trial; r = rt; j = jt; chi2 = chiT
                    lambda = max(lambda / 5, 1e-12)
                    if decrease < fTol || maxStep < xTol { converged = true; break outer }
                    break
                }
                lambda *= 5
                if lambda > 1e16 {
                    // No decrease possible at any damping: we are at a (numerical) minimum if the
                    // scaled gradient is small.
                    converged = stationary(g, a, free, chi2)
                    break outer
                }
            }
        }
        return Result(theta: theta, residuals: r, jacobian: j, chiSquared: chi2, iterations: iterations, converged: converged)
    }
}
