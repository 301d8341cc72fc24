/// The one definition of "in band" (a relative tolerance around a target), used by the
/// channel (excursions, authority, programs' waits), the benchmarks and the report.
public enum Band {
    /// True when `value` is within ±`band` (a fraction: 0.05 for ±5 %) of `target`.
    @inlinable
    public static func contains(_ value: Double, target: Double, band: Double) -> Bool {
        abs(value - target) <= band * target
    }
}
