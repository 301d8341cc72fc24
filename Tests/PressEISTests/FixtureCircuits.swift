import Foundation
import Testing
@testable import PressEIS

/// The circuits the example files in Fixtures/ were generated from (0.5 % proportional noise, seed per file).
enum FixtureCircuits {
    static let mptUS = CircuitParameters(bulkResistance: 42.0, interfacialResistance: 310.0, cpeQ: 2.2e-6, cpeAlpha: 0.86)
    static let mptEU = CircuitParameters(bulkResistance: 12.5, interfacialResistance: 840.0, cpeQ: 4.7e-7, cpeAlpha: 0.92, warburgSigma: 150.0)
    static let dta1 = CircuitParameters(bulkResistance: 150.0, interfacialResistance: 1200.0, cpeQ: 8.0e-8, cpeAlpha: 0.95)
    static let dta2 = CircuitParameters(bulkResistance: 8.0, interfacialResistance: 65.0, cpeQ: 3.0e-5, cpeAlpha: 0.78)
    static let csv1 = CircuitParameters(bulkResistance: 25.0, interfacialResistance: 480.0, cpeQ: 1.0e-6, cpeAlpha: 0.9)
    static let csv2 = CircuitParameters(bulkResistance: 95.0, interfacialResistance: 220.0, cpeQ: 6.0e-6, cpeAlpha: 0.74)

    static func fmt(_ v: Double, european: Bool = false) -> String {
        let s = String(format: "%.7E", v).replacingOccurrences(of: "E+0", with: "E+00").replacingOccurrences(of: "E-0", with: "E-00")
        return european ? s.replacingOccurrences(of: ".", with: ",") : s
    }

    static func mpt(_ p: CircuitParameters, freqs: [Double], seed: UInt64, european: Bool, start: String) -> String {
        var rng = SplitMix64(seed: seed)
        let s = Synth.noisy(p, frequencies: freqs, noise: 0.005, rng: &rng)
        let d = european ? "," : "."
        let header = """
        EC-Lab ASCII FILE
        Nb header lines : NNN

        Potentio Electrochemical Impedance Spectroscopy

        Run on channel : 3 (SN 1234)
        User : 
        CE vs. WE compliance from -10 V to 10 V
        Electrode connection : standard
        Potential control : Ewe
        Ewe ctrl range : min = -2\(d)50 V, max = 2\(d)50 V
        Safety Limits :
        \tDo not start on E overload
        Acquisition started on : \(start)
        Loaded Setting File : NONE
        Saved on :
        \tFile : pressd_cell07_PEIS_C03.mpr
        \tDirectory : C:\\Data\\pressd\\
        \tHost : 192.168.0.10
        Device : VMP-300 (SN 0826)
        Address : USB
        EC-Lab for windows v11.52 (software)
        Internet server v11.52 (firmware)
        Command interpretor v11.52 (firmware)
        Electrode material : Li6PS5Cl
        Initial state : 
        Electrolyte : solid
        Comments : stack pressure 10 MPa
        Electrode surface area : 0\(d)785 cm²
        Characteristic mass : 0\(d)001 g
        Cycle Definition : Charge/Discharge alternance
        Mode                Single sine         
        E (V)               0\(d)0000              
        vs.                 Eoc                 
        tE (h:m:s)          0:00:0\(d)0000         
        record              0                   
        dI                  0\(d)000               
        unit dI             mA                  
        dt (s)              0\(d)000               
        fi                  \(european ? "1,000" : "1.000")               
        unit fi             MHz                 
        ff                  100\(d)000             
        unit ff             mHz                 
        Nd                  10                  
        Points              per decade          
        spacing             Logarithmic         
        Va (mV)             10\(d)0                
        pw                  0\(d)10                
        Na                  2                   
        corr                0                   
        E range min (V)     -2\(d)500              
        E range max (V)     2\(d)500               
        I Range             Auto                
        Bandwidth           8                   
        nc cycles           0                   
        goto Ns'            0                   
        nr cycles           0                   
        inc. cycle          0                   

        freq/Hz\tRe(Z)/Ohm\t-Im(Z)/Ohm\t|Z|/Ohm\tPhase(Z)/deg\ttime/s\t<Ewe>/V\t<I>/mA\tCs/µF\tCp/µF\tcycle number\tI Range\t|Ewe|/V\t|I|/A\tNs\t(Q-Qo)/mA.h\tRe(Y)/Ohm-1\tIm(Y)/Ohm-1\t|Y|/Ohm-1\tPhase(Y)/deg\t
        """
        var lines = header.components(separatedBy: "\n")
        lines[1] = "Nb header lines : \(lines.count)                          "
        // A DC (frequency 0) row as EC-Lab writes for the OCV segment, to be skipped.
        var rows: [String] = []
        rows.append(["0", "0", "0", "0", "0", "0", "1.2345678E-001", "0", "0", "0", "0", "41", "0", "0", "0", "0", "0", "0", "0", "0"]
            .map { european ? $0.replacingOccurrences(of: ".", with: ",") : $0 }.joined(separator: "\t") + "\t")
        var t = 12.5
        for i in 0..<s.count {
            let re = s.real[i], im = s.imaginary[i], f = s.frequencies[i]
            let mod = hypot(re, im), ph = atan2(im, re) * 180 / Double.pi
            t += max(3 / f, 0.4)
            let y2 = re * re + im * im
            let vals: [Double] = [f, re, -im, mod, ph, t, 0.1234, 1.2e-6, -1e6 / (2 * Double.pi * f * im), 1.0, 1, 41, 0.01, 0.01 / mod, 0, 0, re / y2, -im / y2, 1 / mod, -ph]
            rows.append(vals.map { fmt($0, european: european) }.joined(separator: "\t") + "\t")
        }
        return (lines + rows).joined(separator: "\r\n") + "\r\n"
    }

    static func dta(_ p: CircuitParameters, freqs: [Double], seed: UInt64, date: String, time: String) -> String {
        var rng = SplitMix64(seed: seed)
        let s = Synth.noisy(p, frequencies: freqs, noise: 0.005, rng: &rng)
        var out = """
        EXPLAIN
        TAG\tEISPOT
        TITLE\tLABEL\tPotentiostatic EIS\tTest &Identifier
        DATE\tLABEL\t\(date)\tDate
        TIME\tLABEL\t\(time)\tTime
        NOTES\tNOTES\t1\t&Notes...
        \tpressd cell 07, 10 MPa
        PSTAT\tPSTAT\tREF600-12345\tPotentiostat
        VDC\tPOTEN\t0.00000E+000\tT\tDC &Voltage (V)
        FREQINIT\tQUANT\t\(String(format: "%.5E", freqs[0]))\tInitial Fre&q. (Hz)
        FREQFINAL\tQUANT\t\(String(format: "%.5E", freqs.last!))\tFinal Fre&q. (Hz)
        PTSPERDEC\tQUANT\t1.00000E+001\tPoints/&decade
        VAC\tQUANT\t1.00000E+001\tAC &Voltage (mV rms)
        AREA\tQUANT\t7.85000E-001\t&Area (cm^2)
        CONDIT\tTWOPARAM\tF\t1.50000E+001\t0.00000E+000\tConditionin&g\tTime(s)\tE(V)
        DELAY\tTWOPARAM\tF\t1.00000E+002\t0.00000E+000\tInit. De&lay\tTime(s)\tStab.(mV/s)
        SPEED\tSELECTOR\t1\t&Optimize for:
        ZGUESS\tQUANT\t1.00000E+003\tE&stimated Z (ohms)
        EOC\tQUANT\t0.0123456\tOpen Circuit (V)
        ZCURVE\tTABLE
        \tPt\tTime\tFreq\tZreal\tZimag\tZsig\tZmod\tZphz\tIdc\tVdc\tIERange
        \t#\ts\tHz\tohm\tohm\tV\tohm\t°\tA\tV\t#

        """
        var t = 1.0
        for i in 0..<s.count {
            let re = s.real[i], im = s.imaginary[i]
            let mod = hypot(re, im), ph = atan2(im, re) * 180 / Double.pi
            out += "\t\(i)\t\(Int(t))\t\(String(format: "%.7g", s.frequencies[i]))\t\(String(format: "%.7g", re))\t\(String(format: "%.7g", im))\t1\t\(String(format: "%.7g", mod))\t\(String(format: "%.6g", ph))\t\(String(format: "%.6E", 1.2e-8 * Double(i % 5 + 1)))\t\(String(format: "%.6f", 0.01234))\t\(5 + i / 20)\n"
            t += max(2 / s.frequencies[i], 1.2)
        }
        out += "EXPERIMENTABORTED\tTOGGLE\tF\tExperiment Aborted\n"
        return out.replacingOccurrences(of: "\n", with: "\r\n")
    }

    static func csv(_ p: CircuitParameters, freqs: [Double], seed: UInt64, semicolon: Bool, acquiredAt: String) -> String {
        var rng = SplitMix64(seed: seed)
        let s = Synth.noisy(p, frequencies: freqs, noise: 0.005, rng: &rng)
        var out = "# pressd export, cell 07\n# acquired_at: \(acquiredAt)\n"
        if semicolon {
            out += "Frequency (Hz);Re(Z) (Ohm);Im(Z) (Ohm);|Z| (Ohm)\n"
            for i in 0..<s.count {
                let row = [s.frequencies[i], s.real[i], s.imaginary[i], hypot(s.real[i], s.imaginary[i])]
                out += row.map { String(format: "%.6g", $0).replacingOccurrences(of: ".", with: ",") }.joined(separator: ";") + "\n"
            }
        } else {
            out += "f/Hz,Z'/Ohm,-Z''/Ohm\n"
            for i in 0..<s.count {
                out += "\(String(format: "%.6g", s.frequencies[i])),\(String(format: "%.6g", s.real[i])),\(String(format: "%.6g", -s.imaginary[i]))\n"
            }
        }
        return out
    }

    static let wideSweep = Synth.frequencies(from: 1e6, to: 0.1, perDecade: 10)
    static let narrowSweep = Synth.frequencies(from: 7e6, to: 1, perDecade: 7)
}

/// Regenerates Fixtures/ (run with GENERATE_FIXTURES=1); a no-op otherwise.
@Test func generateFixtures() throws {
    guard ProcessInfo.processInfo.environment["GENERATE_FIXTURES"] != nil else { return }
    let dir = Fixtures.directory
    func write(_ name: String, _ text: String, latin1: Bool = false) throws {
        let data = latin1 ? text.data(using: .isoLatin1)! : Data(text.utf8)
        try data.write(to: dir.appendingPathComponent(name))
    }
    typealias C = FixtureCircuits
    try write("cell07_peis_us.mpt", C.mpt(C.mptUS, freqs: C.wideSweep, seed: 101, european: false, start: "11/28/2026 14:03:12.250"), latin1: true)
    try write("cell07_peis_eu.mpt", C.mpt(C.mptEU, freqs: C.wideSweep, seed: 102, european: true, start: "11/28/2026 14:09:40"), latin1: true)
    try write("cell07_eispot_1.DTA", C.dta(C.dta1, freqs: C.narrowSweep, seed: 201, date: "11/28/2026", time: "14:03:12"), latin1: true)
    try write("cell07_eispot_2.DTA", C.dta(C.dta2, freqs: C.wideSweep, seed: 202, date: "1/5/2027", time: "09:15:00.125"), latin1: true)
    try write("cell07_spectrum_1.csv", C.csv(C.csv1, freqs: C.wideSweep, seed: 301, semicolon: false, acquiredAt: "2026-11-28T14:03:12Z"))
    try write("cell07_spectrum_2.csv", C.csv(C.csv2, freqs: C.narrowSweep, seed: 302, semicolon: true, acquiredAt: "2026-11-28 15:03:12+01:00"))
}
