import Testing
@testable import PressProtocol

@Suite("Quantities as a technician types them")
struct QuantityTests {
    @Test("exact SI units are taken, with or without a space", arguments: [("5MPa", 5.0, SetpointUnit.mpa), ("5 MPa", 5, .mpa), ("2.5bar", 2.5, .bar),
                                                                         ("500N", 500, .newton), ("1.2kN", 1.2, .kilonewton), ("300kPa", 300, .kpa),
                                                                         ("5e6Pa", 5e6, .pa), ("70psi", 70, .psi)])
    func exact(text: String, value: Double, unit: SetpointUnit) throws {
        #expect(try Quantity(parsing: text) == Quantity(value: value, unit: unit))
    }

    @Test("a unit in the wrong case is refused with the unit meant, never guessed (mPa is 10⁹ times smaller than MPa)")
    func wrongCase() {
        #expect(throws: QuantityError.wrongCase("mPa", meant: .mpa)) { try Quantity(parsing: "5 mPa") }
        #expect(throws: QuantityError.wrongCase("mpa", meant: .mpa)) { try Quantity(parsing: "5mpa") }
        #expect(throws: QuantityError.wrongCase("PA", meant: .pa)) { try Quantity(parsing: "5000000PA") }
        #expect(throws: QuantityError.wrongCase("kn", meant: .kilonewton)) { try Quantity(parsing: "1kn") }
        #expect("\(QuantityError.wrongCase("mPa", meant: .mpa))".contains("millipascal"))
        #expect("\(QuantityError.wrongCase("mpa", meant: .mpa))".contains("did you mean MPa?"))
    }

    @Test("a decimal comma is explained with the value written right; unknown units list the units")
    func otherMistakes() {
        #expect(throws: QuantityError.decimalComma("5,0MPa", suggestion: "5.0MPa")) { try Quantity(parsing: "5,0MPa") }
        #expect(throws: QuantityError.unknownUnit("atm")) { try Quantity(parsing: "1atm") }
        #expect(throws: QuantityError.missingUnit("5")) { try Quantity(parsing: "5") }
        #expect("\(QuantityError.unknownUnit("atm"))".contains("MPa"))
    }
}

@Suite("Pressures given to pressctl's options")
struct PressureOptionTests {
    @Test("a unit as set takes it, or a bare number in MPa; forces through the cell area where there is one",
          arguments: [("8MPa", nil, 8.0), ("80bar", nil, 8), ("800 kPa", nil, 0.8), ("8", nil, 8), ("0.25", nil, 0.25),
                      ("500N", 2.0, 2.5), ("1kN", 1.0, 10)] as [(String, Double?, Double)])
    func accepted(text: String, area: Double?, mpa: Double) throws {
        #expect(abs(try Quantity.pressureMPa(parsing: text, cellArea: area) - mpa) < 1e-12)
    }

    @Test("refused with the reason: a force where no area applies, a unit in the wrong case, no number")
    func refused() {
        #expect(throws: QuantityError.forceNotPressure("500N")) { try Quantity.pressureMPa(parsing: "500N", cellArea: nil) }
        #expect(throws: QuantityError.wrongCase("mpa", meant: .mpa)) { try Quantity.pressureMPa(parsing: "8mpa", cellArea: nil) }
        #expect(throws: QuantityError.badNumber("MPa")) { try Quantity.pressureMPa(parsing: "MPa", cellArea: nil) }
        #expect("\(QuantityError.forceNotPressure("500N"))".contains("a pressure"))
    }

    @Test("a rate: MPa/s (or a pressure unit per s or min), or a bare number in MPa/s")
    func rates() throws {
        #expect(try Quantity.rateMPaPerS(parsing: "0.5MPa/s") == 0.5)
        #expect(try Quantity.rateMPaPerS(parsing: "0.5") == 0.5)
        #expect(abs(try Quantity.rateMPaPerS(parsing: "6MPa/min") - 0.1) < 1e-12)
        #expect(abs(try Quantity.rateMPaPerS(parsing: "5bar/s") - 0.5) < 1e-12)
        #expect(throws: QuantityError.self) { try Quantity.rateMPaPerS(parsing: "0.5MPa/h") }
    }
}
