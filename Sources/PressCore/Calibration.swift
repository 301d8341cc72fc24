/// Correction of one load cell: corrected = (raw − offset) × gain, in N.
public struct LoadCellCalibration: Sendable, Equatable, Codable {
    /// Reading at zero load (tare), N.
    public var offset: Double
    /// Span correction (known load ÷ tared reading).
    public var gain: Double
    public init(offset: Double = 0, gain: Double = 1) { self.offset = offset; self.gain = gain }
    public func apply(_ raw: Double) -> Double { (raw - offset) * gain }
}

/// What `calibrate` does.
public enum CalibrationAction: Sendable, Equatable {
    /// Zero every load cell of the channel at its present mean reading.
    case tare
    /// A known total force (N) is on the channel now (or on one cell when `cell` is set):
    /// scale the gains so the tared readings add up to it.
    case span(knownNewtons: Double, cell: Int?)
}

public enum CalibrationError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSamples
    case noLoad(Double)
    case badCell(Int, count: Int)
    /// The span would change the sensitivity by more than 2× either way.
    case implausibleGain(Double)
    public var description: String {
        switch self {
        case .noSamples: return "no recent load-cell samples to average"
        case .noLoad(let v): return "the tared reading is \((v * 100).rounded() / 100) N, not clear of the noise: put the known load on the cell(s) before the span step"
        case .badCell(let c, let n): return "no load cell \(c) (the channel has \(n), numbered from 0)"
        case .implausibleGain(let g): return "the span would scale the readings by \((g * 1000).rounded() / 1000); check the known load and the tare (accepted: 0.5 to 2)"
        }
    }
}

/// The tared load must stand clear of the noise: at least 1 N and 10 standard deviations.
func clearOfNoise(_ tared: Double, samples: [Double]) -> Bool {
    let mean = samples.reduce(0, +) / Double(samples.count)
    let sd = (samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, samples.count - 1))).squareRoot()
    return abs(tared) >= max(1, 10 * sd)
}

/// Computes new calibrations from recent raw readings (one vector of per-cell forces
/// per sample). Pure: the loop calls it with its own history.
public func calibrate(_ current: [LoadCellCalibration], history: [[Double]], action: CalibrationAction) -> Result<[LoadCellCalibration], CalibrationError> {
    guard let n = history.first?.count, n > 0, history.allSatisfy({ $0.count == n }) else { return .failure(.noSamples) }
    var cal = current.count == n ? current : Array(repeating: LoadCellCalibration(), count: n)
    let means = (0..<n).map { i in history.map { $0[i] }.reduce(0, +) / Double(history.count) }
    switch action {
    case .tare:
        for i in 0..<n { cal[i].offset = means[i] }
    case .span(let known, let cell):
        if let c = cell {
            guard c >= 0 && c < n else { return .failure(.badCell(c, count: n)) }
            let tared = means[c] - cal[c].offset
            guard clearOfNoise(tared, samples: history.map { $0[c] }) else { return .failure(.noLoad(tared)) }
            let g = known / tared
            guard g >= 0.5 && g <= 2 else { return .failure(.implausibleGain(g)) }
            cal[c].gain = g
        } else {
            let tared = (0..<n).map { means[$0] - cal[$0].offset }.reduce(0, +)
            guard clearOfNoise(tared, samples: history.map { $0.reduce(0, +) }) else { return .failure(.noLoad(tared)) }
            let g = known / tared
            guard g >= 0.5 && g <= 2 else { return .failure(.implausibleGain(g)) }
            for i in 0..<n { cal[i].gain = g }
        }
    }
    return .success(cal)
}
