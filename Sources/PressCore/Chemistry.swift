/// The anode of a solid-state cell. It matters as much as the electrolyte: Li metal,
/// Li–In, anode-free and Si cells of the same electrolyte sit at very different
/// pressures (domain.md, "How to read that table").
public enum Anode: String, Sendable, CaseIterable, Codable {
    case liMetal = "li-metal"
    case liIn = "li-in"
    case anodeFree = "anode-free"
    case silicon = "si"
}

/// Electrolyte families of domain.md's Table 1, plus hydrides (domain.md, "Too little
/// and too much").
public enum ElectrolyteFamily: String, Sendable, CaseIterable, Codable {
    case polymer, sulfide, oxide, oxyhalide, phosphate, halide, hydride
}

/// One number of a preset and where it comes from: a verbatim quote of
/// `docs/reference/domain.md` (a copy of `shared/docs/domain.md`, the project's literature reference; whitespace may differ)
/// and how the number follows from it.
public struct PresetCitation: Sendable, Equatable {
    /// Verbatim from domain.md.
    public var quote: String
    /// How the number follows from the quote.
    public var reasoning: String
    public init(_ quote: String, _ reasoning: String) { self.quote = quote; self.reasoning = reasoning }
}

/// A reported damage figure (cracking, shorts, dendrite growth) for an electrolyte and
/// anode, kept apart from the operating window.
public struct DamageFigure: Sendable, Equatable {
    public var mpa: Double
    public var what: String
    public var source: PresetCitation
    public init(_ mpa: Double, _ what: String, _ source: PresetCitation) { self.mpa = mpa; self.what = what; self.source = source }
}

/// Stack-pressure presets keyed by electrolyte family and anode, as defaults for a
/// channel's `min_mpa`, `max_mpa` and `trip_mpa` (`preset = "sulfide/li-metal"`).
///
/// Each preset has an operating window (min…max), the damage figures reported for its
/// electrolyte and anode, and a trip derived from both by one rule (``tripRule(max:damage:)``):
/// 20 % above the highest setpoint, and never above 90 % of the lowest damage figure.
/// Every number carries a verbatim quote of `shared/docs/domain.md`; where the
/// literature disagrees, ``disagreement`` says so and the conservative value is used.
/// Engineering ranges, not constants: a configuration may override any of them, and
/// pressd then logs a warning naming the preset value it overrode.
public struct ChemistryPreset: Sendable, Equatable {
    /// `family/anode`, e.g. `sulfide/li-metal`.
    public var name: String { "\(family.rawValue)/\(anode.rawValue)" }
    public var family: ElectrolyteFamily
    public var anode: Anode
    public var summary: String
    /// Operating window for setpoints, MPa.
    public var minMpa: Double
    public var maxMpa: Double
    public var minSource: PresetCitation
    public var maxSource: PresetCitation
    /// Reported damage for this electrolyte and anode (empty: none reported in range).
    public var damage: [DamageFigure]
    /// Where sources contradict each other and which (conservative) value was taken.
    public var disagreement: String?

    /// The over-pressure trip, MPa: ``tripRule(max:damage:)`` of the window and damage.
    public var tripMpa: Double { Self.tripRule(max: maxMpa, damage: damage.map(\.mpa).min()) }
    /// The lowest reported damage figure, MPa.
    public var lowestDamageMpa: Double? { damage.map(\.mpa).min() }

    /// trip = min(1.2 × max, 0.9 × lowest damage), rounded down to 0.1 MPa: room above
    /// the highest setpoint for the ±5 % band and overshoot, never within 10 % of damage.
    public static func tripRule(max: Double, damage: Double?) -> Double {
        let t = Swift.min(1.2 * max, damage.map { 0.9 * $0 } ?? .infinity)
        return (t * 10 + 1e-9).rounded(.down) / 10
    }

    /// One line on why these numbers.
    public var basis: String {
        var s = "min \(fmt(minMpa)): \(minSource.reasoning); max \(fmt(maxMpa)): \(maxSource.reasoning); trip \(fmt(tripMpa)) = min(1.2 × max, 0.9 × lowest damage)"
        if !damage.isEmpty { s += "; damage: " + damage.map { "\($0.what) at \(fmt($0.mpa)) MPa" }.joined(separator: ", ") }
        if let d = disagreement { s += "; literature disagrees: \(d)" }
        return s
    }

    // The quotes of domain.md the presets cite.
    static let qVoids = "deep voids appear quickly below about 3 MPa"
    static let qShallow = "3–10 MPa keeps them shallow"
    static let qLPSC = "Li|Li6PS5Cl stable at 5 MPa, slow dendrite growth at 25 MPa, short circuits at 75 MPa"
    static let qLLZO = "Li|LLZO voids at 2 MPa, cracking at 13 MPa"
    static let qAnodeFree = "anode-free cells fracture the electrolyte at 20 MPa"
    static let qPhaseField = "phase-field work shows dendrite-root fracture above about 14 MPa"
    static let qStack = "stack pressure, 0.1–10 MPa"
    static let qPolymerRow = "crosslinked PEO (≤ 0.43 MPa), PVDF-HFP (0.1–0.5), composite polymer (1) | 0–1 MPa"
    static let qSulfideRow = "Li6PS5Cl cells 2–5 (thin film), 5–20, 25; coated LPSC 30 | 2–30 MPa"
    static let qRigid = "Entries far above 10 MPa come from lab cells in rigid dies, usually with Li–In alloy anodes or composite electrodes"
    static let qOxideRow = "LLZO 30–40; oxychlorides 80–190 | 30–190 MPa"
    static let qContradiction = "the table lists LLZO cells at 30–40 MPa, while Li|LLZO cells crack at 13 MPa and void at 2 MPa"
    static let qBrittle = "brittle oxides fracture above about 500 MPa"
    static let qLATPRow = "LATP composites 20, up to 500 | 20–500 MPa"
    static let qLATPPrep = "the 500 MPa LATP entry is one such figure"
    static let qHalideRow = "Li3InCl6 27; Zr-doped 7; with argyrodite ≥ 5 | 5–30 MPa"
    static let qMisfiled = "\"halide-based, ≥ 5 MPa\" is an argyrodite (sulfide) cell"
    static let qSilicon = "Si ≈ 0.6 MPa in one study"
    static let qPouch = "1–5 MPa, 2 MPa optimal in one NMC811|Li6PS5Cl|Si study"
    static let qHydride = "a hydride electrolyte best at 0.26 MPa and cracking at 1 MPa"

    static let liOnSulfideOrGarnetMin = PresetCitation(qVoids, "deep voids below ~3 MPa for Li on sulfide or garnet; Li|LLZO voids at 2")
    static let liMetalMax = PresetCitation(qShallow, "3–10 MPa keeps voids shallow; the top of the stack-pressure range (0.1–10 MPa)")
    static let phaseField = DamageFigure(14, "dendrite-root fracture (phase-field)", PresetCitation(qPhaseField, "14 MPa"))

    public static let all: [ChemistryPreset] = [
        ChemistryPreset(
            family: .polymer, anode: .liMetal, summary: "polymer electrolytes (PEO, PVDF-HFP, composite polymer) with Li metal",
            minMpa: 0.1, maxMpa: 1.0,
            minSource: PresetCitation(qPolymerRow, "PVDF-HFP cells from 0.1 MPa"),
            maxSource: PresetCitation(qPolymerRow, "composite polymer at 1 MPa, the family's top"),
            damage: [],
            disagreement: "crosslinked PEO is reported at ≤ 0.43 MPa, composite polymer at 1 MPa; the window covers the family and no damage figure is reported (polymers lose ionic mobility under prolonged pressure): set max_mpa = 0.43 for crosslinked PEO"),
        ChemistryPreset(
            family: .sulfide, anode: .liMetal, summary: "sulfide (Li6PS5Cl argyrodite) with a Li-metal anode",
            minMpa: 3, maxMpa: 10, minSource: liOnSulfideOrGarnetMin, maxSource: liMetalMax,
            damage: [phaseField,
                     DamageFigure(25, "slow dendrite growth in Li|Li6PS5Cl", PresetCitation(qLPSC, "25 MPa")),
                     DamageFigure(75, "short circuits in Li|Li6PS5Cl", PresetCitation(qLPSC, "75 MPa"))],
            disagreement: "Li|Li6PS5Cl cells grow dendrites slowly only at 25 MPa, phase-field work puts dendrite-root fracture above ~14 MPa; the lower (14) sets the trip"),
        ChemistryPreset(
            family: .sulfide, anode: .liIn, summary: "sulfide (Li6PS5Cl argyrodite) with a Li–In alloy anode (rigid-die lab cells)",
            minMpa: 5, maxMpa: 30,
            minSource: PresetCitation(qSulfideRow, "the 5–20 MPa Li6PS5Cl cells"),
            maxSource: PresetCitation(qSulfideRow, "coated LPSC at 30 MPa; entries far above 10 MPa are rigid-die cells, usually Li–In"),
            damage: [],
            disagreement: "the Li-metal damage figures (14, 25, 75 MPa) describe Li creep and dendrites, which a Li–In anode does not have; none is reported for Li–In below the 30 MPa cells"),
        ChemistryPreset(
            family: .sulfide, anode: .anodeFree, summary: "sulfide (Li6PS5Cl argyrodite), anode-free (Li plated in place)",
            minMpa: 3, maxMpa: 10, minSource: liOnSulfideOrGarnetMin, maxSource: liMetalMax,
            damage: [phaseField, DamageFigure(20, "electrolyte fracture in anode-free cells", PresetCitation(qAnodeFree, "20 MPa"))],
            disagreement: "anode-free cells fracture at 20 MPa, phase-field dendrite-root fracture above ~14 MPa; the lower (14) sets the trip"),
        ChemistryPreset(
            family: .sulfide, anode: .silicon, summary: "sulfide (Li6PS5Cl argyrodite) with a Si anode (swells 200–300 %)",
            minMpa: 0.5, maxMpa: 5,
            minSource: PresetCitation(qSilicon, "below the ≈ 0.6 MPa Si cell, so it can be set"),
            maxSource: PresetCitation(qPouch, "the top of the 1–5 MPa NMC811|Li6PS5Cl|Si pouch study"),
            damage: [],
            disagreement: "one Si study is best at ≈ 0.6 MPa, an NMC811|Li6PS5Cl|Si pouch study at 2 MPa (1–5); the window covers both and the trip follows the lower top, 5 MPa"),
        ChemistryPreset(
            family: .oxide, anode: .liMetal, summary: "garnet oxide (LLZO) with a Li-metal anode",
            minMpa: 3, maxMpa: 10, minSource: liOnSulfideOrGarnetMin, maxSource: liMetalMax,
            damage: [DamageFigure(13, "cracking in Li|LLZO", PresetCitation(qLLZO, "13 MPa")), phaseField],
            disagreement: "Table 1 lists LLZO cells at 30–40 MPa, above the 13 MPa at which Li|LLZO cracks; the window stays below the damage figure (the 30–40 MPa cells are rigid-die cells: see oxide/li-in)"),
        ChemistryPreset(
            family: .oxide, anode: .anodeFree, summary: "garnet oxide (LLZO), anode-free (Li plated in place)",
            minMpa: 3, maxMpa: 10, minSource: liOnSulfideOrGarnetMin, maxSource: liMetalMax,
            damage: [DamageFigure(13, "cracking in Li|LLZO", PresetCitation(qLLZO, "13 MPa")), phaseField,
                     DamageFigure(20, "electrolyte fracture in anode-free cells", PresetCitation(qAnodeFree, "20 MPa"))],
            disagreement: "anode-free fracture at 20 MPa vs Li|LLZO cracking at 13 MPa; the lower (13) sets the trip"),
        ChemistryPreset(
            family: .oxide, anode: .liIn, summary: "garnet oxide (LLZO) with a Li–In alloy anode (rigid-die lab cells)",
            minMpa: 30, maxMpa: 40,
            minSource: PresetCitation(qOxideRow, "LLZO cells from 30 MPa"),
            maxSource: PresetCitation(qOxideRow, "LLZO cells to 40 MPa (rigid dies, usually Li–In)"),
            damage: [DamageFigure(500, "fracture of brittle oxides", PresetCitation(qBrittle, "500 MPa"))],
            disagreement: "Li|LLZO cracks at 13 MPa, but that is Li creeping into the garnet; with Li–In no lower figure is reported. Thin or flawed pellets: lower max_mpa"),
        ChemistryPreset(
            family: .oxyhalide, anode: .liIn, summary: "oxychloride / oxyhalide electrolytes (rigid-die lab cells, Li–In)",
            minMpa: 80, maxMpa: 190,
            minSource: PresetCitation(qOxideRow, "oxychloride cells from 80 MPa"),
            maxSource: PresetCitation(qOxideRow, "oxychloride cells to 190 MPa"),
            damage: [DamageFigure(500, "fracture of brittle oxides", PresetCitation(qBrittle, "500 MPa"))],
            disagreement: nil),
        ChemistryPreset(
            family: .phosphate, anode: .liIn, summary: "phosphate ceramics (LATP composites), rigid-die lab cells",
            minMpa: 10, maxMpa: 20,
            minSource: PresetCitation(qRigid, "entries above 10 MPa are rigid-die cells with Li–In or composite electrodes"),
            maxSource: PresetCitation(qLATPRow, "LATP composite cells at 20 MPa"),
            damage: [DamageFigure(500, "fracture of brittle ceramics", PresetCitation(qBrittle, "500 MPa"))],
            disagreement: "Table 1 gives LATP 'up to 500 MPa', but the 500 MPa entry is a preparation pressure; the stack window stops at the 20 MPa cells"),
        ChemistryPreset(
            family: .halide, anode: .liIn, summary: "halide electrolytes (Li3InCl6, Zr-doped) with Li–In",
            minMpa: 7, maxMpa: 27,
            minSource: PresetCitation(qHalideRow, "Zr-doped halide at 7 MPa"),
            maxSource: PresetCitation(qHalideRow, "Li3InCl6 at 27 MPa"),
            damage: [],
            disagreement: "Table 1's 'with argyrodite ≥ 5' halide entry is an argyrodite (sulfide) cell misfiled in the source and is left out"),
        ChemistryPreset(
            family: .hydride, anode: .liMetal, summary: "hydride electrolytes (brittle: cracking from 1 MPa)",
            minMpa: 0.1, maxMpa: 0.5,
            minSource: PresetCitation(qStack, "the bottom of the stack-pressure range; the cell is best at 0.26 MPa"),
            maxSource: PresetCitation(qHydride, "half the 1 MPa cracking figure, above the 0.26 MPa optimum"),
            damage: [DamageFigure(1, "cracking of a hydride electrolyte", PresetCitation(qHydride, "1 MPa"))],
            disagreement: nil),
    ]

    /// Names used before presets were keyed by anode, and what they now mean. Each
    /// loads with a warning that names the replacement.
    public static let legacyNames: [String: String] = [
        "polymer": "polymer/li-metal", "sulfide": "sulfide/li-metal", "oxide": "oxide/li-metal",
        "oxyhalide": "oxyhalide/li-in", "phosphate": "phosphate/li-in", "halide": "halide/li-in",
    ]

    public static func named(_ name: String) -> ChemistryPreset? { all.first { $0.name == name } }

    /// A preset by its name or a legacy name: the preset, and the legacy name when one was used.
    public static func resolve(_ name: String) -> (preset: ChemistryPreset, legacy: String?)? {
        if let p = named(name) { return (p, nil) }
        if let n = legacyNames[name], let p = named(n) { return (p, name) }
        return nil
    }
}

private func fmt(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(v)
}
