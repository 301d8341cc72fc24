/// Recursive least squares with exponential forgetting, for online identification of
/// a linear-in-parameters model y = φᵀθ + e.
///
/// The properties that make it safe to leave running for weeks:
/// - **Regularisation**: the covariance starts at the prior variances on its diagonal, so the first
///   updates are well posed.
/// - **Excitation monitoring**: an update is only made when the regressor carries
///   information (‖φ‖² above `excitationThreshold`). Without excitation nothing
///   changes — neither θ nor P — so the estimate does not drift and the covariance does
///   not blow up ("estimator wind-up"), the classic failure of forgetting RLS in a loop
///   that holds still for hours.
/// - **Covariance bounds**: each variance stays below 10× its prior and the trace of P
///   at or below `maxCovarianceTrace`, so a long quiet spell cannot make the next update
///   violent.
/// - **Divergence detection**: a non-finite θ or P resets to the last good state.
///
/// Pure value type; no allocation per update beyond the fixed-size arrays.
public struct RecursiveLeastSquares: Sendable, Equatable, Codable {
    public let count: Int
    /// Parameter estimate.
    public private(set) var theta: [Double]
    /// Covariance, row-major count × count.
    public private(set) var covariance: [Double]
    /// Forgetting factor λ in (0, 1]; memory ≈ 1/(1−λ) updates.
    public var forgetting: Double
    /// Prior variance of each parameter.
    public var initialVariances: [Double]
    public var maxCovarianceTrace: Double
    public var excitationThreshold: Double
    /// Updates made, and updates skipped for lack of excitation.
    public private(set) var updates: Int = 0
    public private(set) var skipped: Int = 0
    /// Exponentially weighted mean of the squared a-priori prediction error.
    public private(set) var errorVariance: Double = 0

    public init(count: Int, initial: [Double]? = nil, forgetting: Double = 0.995, initialCovariance: Double = 100,
                maxCovarianceTrace: Double = 1e4, excitationThreshold: Double = 1e-12) {
        self.init(count: count, initial: initial, forgetting: forgetting,
                  initialVariances: Array(repeating: initialCovariance, count: count),
                  maxCovarianceTrace: maxCovarianceTrace, excitationThreshold: excitationThreshold)
    }

    /// - Parameter initialVariances: the prior variance of each parameter (the
    ///   regularisation): large where the prior is vague or the regressor is small.
    public init(count: Int, initial: [Double]?, forgetting: Double, initialVariances: [Double],
                maxCovarianceTrace: Double, excitationThreshold: Double = 1e-12) {
        precondition(initialVariances.count == count)
        self.count = count
        self.theta = initial ?? Array(repeating: 0, count: count)
        self.covariance = Array(repeating: 0, count: count * count)
        self.forgetting = forgetting
        self.initialVariances = initialVariances
        self.maxCovarianceTrace = maxCovarianceTrace
        self.excitationThreshold = excitationThreshold
        for i in 0..<count { covariance[i * count + i] = initialVariances[i] }
    }

    public var covarianceTrace: Double { (0..<count).reduce(0) { $0 + covariance[$1 * count + $1] } }

    /// Standard deviation of parameter `i` scaled by the residual level: a rough
    /// confidence interval half-width is 2× this.
    public func standardError(_ i: Int) -> Double { (max(0, covariance[i * count + i]) * max(errorVariance, 1e-30)).squareRoot() }

    /// The model's prediction for regressor `phi`.
    public func predict(_ phi: [Double]) -> Double {
        var s = 0.0
        for i in 0..<count { s += phi[i] * theta[i] }
        return s
    }

    /// One update with measurement `y` and regressor `phi`. Returns the a-priori
    /// prediction error, or nil when the update was skipped for lack of excitation or
    /// because an input was not finite.
    @discardableResult
    public mutating func update(y: Double, phi: [Double]) -> Double? {
        precondition(phi.count == count)
        guard y.isFinite, phi.allSatisfy(\.isFinite) else { skipped += 1; return nil }
        let norm = phi.reduce(0) { $0 + $1 * $1 }
        let error = y - predict(phi)
        guard norm > excitationThreshold else { skipped += 1; return nil }
        // Pφ and φᵀPφ
        var pphi = [Double](repeating: 0, count: count)
        for i in 0..<count {
            var s = 0.0
            for j in 0..<count { s += covariance[i * count + j] * phi[j] }
            pphi[i] = s
        }
        var denom = forgetting
        for i in 0..<count { denom += phi[i] * pphi[i] }
        let savedTheta = theta, savedP = covariance
        for i in 0..<count { theta[i] += pphi[i] / denom * error }
        for i in 0..<count {
            for j in 0..<count {
                covariance[i * count + j] = (covariance[i * count + j] - pphi[i] * pphi[j] / denom) / forgetting
            }
        }
        // Symmetrise and bound.
        for i in 0..<count {
            for j in (i + 1)..<count where j < count {
                let m = 0.5 * (covariance[i * count + j] + covariance[j * count + i])
                covariance[i * count + j] = m; covariance[j * count + i] = m
            }
        }
        // Bound each variance at 10× its prior (P ← D·P·D keeps P positive definite), so
        // forgetting in a direction that is never excited cannot grow without limit —
        // and cannot, through the trace bound, freeze the directions that are.
        var d = [Double](repeating: 1, count: count)
        for i in 0..<count {
            let cap = 10 * initialVariances[i]
            let v = covariance[i * count + i]
            if v > cap { d[i] = (cap / v).squareRoot() }
        }
        if d.contains(where: { $0 < 1 }) {
            for i in 0..<count { for j in 0..<count { covariance[i * count + j] *= d[i] * d[j] } }
        }
        let tr = covarianceTrace
        if tr > maxCovarianceTrace { let s = maxCovarianceTrace / tr; for k in covariance.indices { covariance[k] *= s } }
        if !theta.allSatisfy(\.isFinite) || !covariance.allSatisfy(\.isFinite) || tr <= 0 {
            theta = savedTheta; covariance = savedP
            skipped += 1
            return nil
        }
        updates += 1
        let w = updates < 20 ? 1 / Double(updates) : 0.05
        errorVariance += w * (error * error - errorVariance)
        return error
    }

    /// Forgets what was learned about the parameters (keeps θ, reopens P).
    public mutating func reopen() {
        for i in covariance.indices { covariance[i] = 0 }
        for i in 0..<count { covariance[i * count + i] = initialVariances[i] }
    }

    /// Replaces the estimate (e.g. fallback to the last good one).
    public mutating func reset(theta t: [Double]) {
        precondition(t.count == count)
        theta = t
        reopen()
    }
}
