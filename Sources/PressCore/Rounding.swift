/// `v` rounded to three decimals: how pressd shows MPa, N·s and seconds to people
/// (messages, status, reports), so that 0.0019999999999997797 reads 0.002.
public func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }

/// `v` rounded to three decimals, as text.
public func fmt3(_ v: Double) -> String { "\(round3(v))" }
