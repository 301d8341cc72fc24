/// Stack pressure, force and active cell area in the units the core uses: MPa, N, cm².
///
/// 1 MPa acting on 1 cm² is 100 N (1 MPa = 1 N/mm², 1 cm² = 100 mm²). Every force ↔
/// pressure conversion in the core goes through here, with the arithmetic in exactly
/// this order (the closed-loop benchmark numbers depend on it to the last bit).
public enum StackUnits {
    /// Newtons per MPa on one cm².
    public static let newtonsPerMPaSquareCentimetre = 100.0

    /// The stack pressure, MPa, that `newtons` N make on `area` cm².
    @inlinable
    public static func pressure(force newtons: Double, area: Double) -> Double {
        newtons / (area * newtonsPerMPaSquareCentimetre)
    }

    /// The force, N, that `mpa` MPa make on `area` cm².
    @inlinable
    public static func force(pressure mpa: Double, area: Double) -> Double {
        mpa * area * newtonsPerMPaSquareCentimetre
    }
}
