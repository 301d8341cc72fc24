import Foundation
import Testing
@testable import PressCore

/// The literature reference every preset number cites: the repository's copy,
/// `docs/reference/domain.md` (of `shared/docs/domain.md`), or `$PRESSD_DOMAIN_MD`.
/// When the original sits beside the repository, the copy must equal it.
func domainText() throws -> String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    if let path = ProcessInfo.processInfo.environment["PRESSD_DOMAIN_MD"] { return try String(contentsOfFile: path, encoding: .utf8) }
    let copy = try String(contentsOfFile: url.path + "/docs/reference/domain.md", encoding: .utf8)
    if let original = try? String(contentsOfFile: url.deletingLastPathComponent().path + "/shared/docs/domain.md", encoding: .utf8) {
        #expect(copy.hasSuffix(original), "docs/reference/domain.md differs from ../shared/docs/domain.md: copy it again")
    }
    return copy
}

/// Whitespace runs collapsed (domain.md wraps lines mid-sentence).
func squeezed(_ s: String) -> String { s.split(whereSeparator: \.isWhitespace).joined(separator: " ") }

@Suite("Chemistry presets: numbers pinned to domain.md")
struct ChemistryPresetTests {
    /// name → (min, max, trip, lowest damage). Changing a number here means changing
    /// its citation in Chemistry.swift and docs/configuration.md.
    static let pinned: [String: (Double, Double, Double, Double?)] = [
        "polymer/li-metal": (0.1, 1, 1.2, nil),
        "sulfide/li-metal": (3, 10, 12, 14),
        "sulfide/li-in": (5, 30, 36, nil),
        "sulfide/anode-free": (3, 10, 12, 14),
        "sulfide/si": (0.5, 5, 6, nil),
        "oxide/li-metal": (3, 10, 11.7, 13),
        "oxide/anode-free": (3, 10, 11.7, 13),
        "oxide/li-in": (30, 40, 48, 500),
        "oxyhalide/li-in": (80, 190, 228, 500),
        "phosphate/li-in": (10, 20, 24, 500),
        "halide/li-in": (7, 27, 32.4, nil),
        "hydride/li-metal": (0.1, 0.5, 0.6, 1),
    ]

    @Test("every preset's min, max, trip and damage figure are the pinned numbers; no other preset exists")
    func numbers() {
        #expect(Set(ChemistryPreset.all.map(\.name)) == Set(Self.pinned.keys))
        for p in ChemistryPreset.all {
            guard let (lo, hi, trip, damage) = Self.pinned[p.name] else { continue }
            #expect(p.minMpa == lo && p.maxMpa == hi, "\(p.name)")
            #expect(abs(p.tripMpa - trip) < 1e-9, "\(p.name): trip \(p.tripMpa)")
            #expect(p.lowestDamageMpa == damage, "\(p.name)")
        }
    }

    @Test("every cited quote is verbatim in domain.md and contains the number it justifies")
    func quotes() throws {
        let domain = squeezed(try domainText())
        func number(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
        for p in ChemistryPreset.all {
            for (v, c) in [(p.minMpa, p.minSource), (p.maxMpa, p.maxSource)] {
                #expect(domain.contains(squeezed(c.quote)), "\(p.name): '\(c.quote)' not in domain.md")
                #expect(!c.reasoning.isEmpty)
                // The number itself, or (rule-derived numbers) the figure it is derived from.
                let derived = p.name == "sulfide/si" && v == 0.5 || p.name == "hydride/li-metal" && v == 0.5
                #expect(derived || c.quote.contains(number(v)) || c.quote.contains("\(number(v))–") , "\(p.name): \(v) not in '\(c.quote)'")
            }
            for d in p.damage {
                #expect(domain.contains(squeezed(d.source.quote)), "\(p.name): '\(d.source.quote)' not in domain.md")
                #expect(d.source.quote.contains("\(number(d.mpa)) MPa"), "\(p.name): \(d.mpa) not in '\(d.source.quote)'")
            }
        }
    }

    @Test("trip = min(1.2 × max, 0.9 × lowest damage): above every setpoint, below every damage figure of its electrolyte and anode")
    func tripRule() {
        for p in ChemistryPreset.all {
            #expect(p.minMpa < p.maxMpa && p.maxMpa < p.tripMpa, "\(p.name)")
            #expect(p.tripMpa >= p.maxMpa * 1.05, "\(p.name): the ±5 % band above max fits under the trip")
            if let d = p.lowestDamageMpa { #expect(p.tripMpa <= 0.9 * d + 1e-9, "\(p.name): trip \(p.tripMpa) vs damage \(d)") }
            #expect(p.tripMpa == ChemistryPreset.tripRule(max: p.maxMpa, damage: p.lowestDamageMpa))
        }
    }

    @Test("what issue 15 found wrong is fixed: oxide below its cracking figure, no 500 MPa stack window, Li–In sulfide to 30 MPa, a 3 MPa floor, hydride and Si presets")
    func issueFindings() throws {
        let oxide = try #require(ChemistryPreset.named("oxide/li-metal"))
        #expect(oxide.tripMpa < 13 && oxide.disagreement?.contains("30–40") == true)
        #expect(ChemistryPreset.all.allSatisfy { $0.maxMpa < 200 + 1 || $0.family == .oxyhalide })
        #expect(try #require(ChemistryPreset.named("phosphate/li-in")).maxMpa == 20)
        #expect(try #require(ChemistryPreset.named("sulfide/li-in")).maxMpa == 30)
        #expect(try #require(ChemistryPreset.named("sulfide/li-metal")).minMpa == 3)
        #expect(try #require(ChemistryPreset.named("hydride/li-metal")).tripMpa < 1)
        #expect(try #require(ChemistryPreset.named("sulfide/si")).minMpa < 0.6)
        #expect(try #require(ChemistryPreset.named("halide/li-in")).disagreement?.contains("misfiled") == true)
        // Every anode has at least one preset.
        #expect(Set(ChemistryPreset.all.map(\.anode)) == Set(Anode.allCases))
    }

    @Test("the old names still resolve, to their conservative replacements")
    func legacy() throws {
        for (old, new) in ChemistryPreset.legacyNames {
            let r = try #require(ChemistryPreset.resolve(old))
            #expect(r.preset.name == new && r.legacy == old)
        }
        #expect(ChemistryPreset.resolve("sulfide/li-in")?.legacy == nil)
        #expect(ChemistryPreset.resolve("unobtainium") == nil)
    }
}
