/// `v` rounded to three decimals: how pressd shows MPa, N·s and seconds to people
/// (messages, status, reports), so that 0.0019999999999997797 reads 0.002.
public func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }

/// `v` rounded to three decimals, as text.
public func fmt3(_ v: Double) -> String { "\(round3(v))" }

/// `v` as a whole number of seconds (or any count) for a message. Never traps: a value
/// outside `Int`'s range (a request's 1e300) or not finite is printed as it is.
public func fmt0(_ v: Double) -> String {
    guard v.isFinite, abs(v) < 1e15 else { return "\(v)" }
    return "\(Int(v.rounded()))"
}
