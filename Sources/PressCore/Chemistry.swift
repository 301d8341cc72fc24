/// Electrolyte families with their reported stack-pressure windows and damage limits,
/// as defaults for a channel's `min_mpa`, `max_mpa` and `trip_mpa`.
///
/// Figures from the published literature on stack pressure in solid-state Li-metal
/// cells (see `docs/configuration.md#chemistry-presets` for the sources behind each):
/// engineering ranges, not constants. A configuration may override any of them; pressd
/// then logs a warning naming the preset value it overrode.
public struct ChemistryPreset: Sendable, Equatable {
    public var name: String
    public var summary: String
    /// Typical stack-pressure window of reported cells, MPa.
    public var minMpa: Double
    public var maxMpa: Double
    /// Where damage has been reported (cracking, shorts, dendrite growth), MPa: the
    /// over-pressure trip.
    public var tripMpa: Double
    /// Why these numbers.
    public var basis: String

    public static let all: [ChemistryPreset] = [
        ChemistryPreset(
            name: "polymer", summary: "polymer electrolytes (PEO, PVDF-HFP, composite polymer)",
            minMpa: 0.1, maxMpa: 1.0, tripMpa: 1.5,
            basis: "reported cells at 0–1 MPa (crosslinked PEO ≤ 0.43, PVDF-HFP 0.1–0.5, composite 1); polymers lose ionic mobility under prolonged pressure"),
        ChemistryPreset(
            name: "sulfide", summary: "sulfide electrolytes (Li6PS5Cl argyrodite and relatives)",
            minMpa: 2, maxMpa: 20, tripMpa: 25,
            basis: "reported cells at 2–30 MPa; deep voids below ~3 MPa; anode-free cells fracture the electrolyte at 20 MPa, slow dendrite growth at 25 MPa, shorts at 75 MPa"),
        ChemistryPreset(
            name: "oxide", summary: "garnet oxides (LLZO)",
            minMpa: 30, maxMpa: 40, tripMpa: 45,
            basis: "reported LLZO cells at 30–40 MPa; brittle: cracking has been reported from 13 MPa in Li|LLZO, so lower max_mpa for thin or flawed pellets"),
        ChemistryPreset(
            name: "oxyhalide", summary: "oxychloride / oxyhalide electrolytes",
            minMpa: 80, maxMpa: 190, tripMpa: 200,
            basis: "reported oxychloride cells at 80–190 MPa"),
        ChemistryPreset(
            name: "phosphate", summary: "phosphate ceramics (LATP composites)",
            minMpa: 20, maxMpa: 500, tripMpa: 520,
            basis: "reported LATP composite cells at 20 MPa, up to 500 MPa"),
        ChemistryPreset(
            name: "halide", summary: "halide electrolytes (Li3InCl6, Zr-doped, with argyrodite)",
            minMpa: 5, maxMpa: 30, tripMpa: 35,
            basis: "reported cells at 5–30 MPa (Li3InCl6 27, Zr-doped 7, with argyrodite ≥ 5)"),
    ]

    public static func named(_ name: String) -> ChemistryPreset? { all.first { $0.name == name } }
}
