import Testing
@testable import PressCore

@Suite("Load-cell calibration")
struct CalibrationTests {
    @Test("tare zeroes each cell at its mean; span scales the tared sum to the known load")
    func tareAndSpan() throws {
        let zero = Array(repeating: [10.0, -4.0], count: 50)
        let tared = try calibrate([], history: zero, action: .tare).get()
        #expect(tared == [LoadCellCalibration(offset: 10, gain: 1), LoadCellCalibration(offset: -4, gain: 1)])
        let loaded = Array(repeating: [260.0, 246.0], count: 50) // 250 N each after tare
        let spanned = try calibrate(tared, history: loaded, action: .span(knownNewtons: 550, cell: nil)).get()
        #expect(abs(spanned[0].apply(260) + spanned[1].apply(246) - 550) < 1e-9)
        let one = try calibrate(tared, history: loaded, action: .span(knownNewtons: 300, cell: 1)).get()
        #expect(abs(one[1].apply(246) - 300) < 1e-9)
        #expect(one[0].gain == 1)
    }

    @Test("errors: no samples, no load for a span, a cell that does not exist")
    func errors() {
        #expect(throws: CalibrationError.noSamples) { try calibrate([], history: [], action: .tare).get() }
        #expect(throws: CalibrationError.noLoad(0)) { try calibrate([LoadCellCalibration(offset: 5)], history: [[5]], action: .span(knownNewtons: 100, cell: nil)).get() }
        // Noise alone (±0.5 N around the tare) is not a load.
        let noisy = (0..<100).map { [5 + ($0 % 2 == 0 ? 0.5 : -0.5)] }
        #expect(throws: CalibrationError.self) { try calibrate([LoadCellCalibration(offset: 4.9)], history: noisy, action: .span(knownNewtons: 100, cell: nil)).get() }
        #expect(throws: CalibrationError.implausibleGain(5)) { try calibrate([LoadCellCalibration()], history: [[100], [100]], action: .span(knownNewtons: 500, cell: nil)).get() }
        #expect(throws: CalibrationError.badCell(3, count: 1)) { try calibrate([], history: [[5]], action: .span(knownNewtons: 100, cell: 3)).get() }
    }
}
