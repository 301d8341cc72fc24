/// How a number is laid out in 16-bit registers.
public enum RegisterType: String, Sendable, CaseIterable {
    case u16, i16, u32, i32, f32
    /// Registers the value occupies.
    public var count: Int { self == .u16 || self == .i16 ? 1 : 2 }
}

/// Byte order of a 32-bit value across two registers, named by where bytes A (most
/// significant) … D (least) of the big-endian value land: ABCD is Modbus' natural
/// big-endian order, CDAB swaps the words, BADC swaps the bytes in each word, DCBA both.
public enum WordOrder: String, Sendable, CaseIterable {
    case abcd = "ABCD", cdab = "CDAB", badc = "BADC", dcba = "DCBA"
}

/// Converts between registers and engineering values: raw × scale + offset.
public struct RegisterCodec: Sendable, Equatable {
    public var type: RegisterType
    public var order: WordOrder
    public var scale: Double
    public var offset: Double

    public init(type: RegisterType, order: WordOrder = .abcd, scale: Double = 1, offset: Double = 0) {
        self.type = type; self.order = order; self.scale = scale; self.offset = offset
    }

    /// The raw 32-bit pattern from two registers as they arrived.
    static func combine(_ r0: UInt16, _ r1: UInt16, _ order: WordOrder) -> UInt32 {
        let swapBytes: (UInt16) -> UInt16 = { ($0 << 8) | ($0 >> 8) }
        switch order {
        case .abcd: return UInt32(r0) << 16 | UInt32(r1)
        case .cdab: return UInt32(r1) << 16 | UInt32(r0)
        case .badc: return UInt32(swapBytes(r0)) << 16 | UInt32(swapBytes(r1))
        case .dcba: return UInt32(swapBytes(r1)) << 16 | UInt32(swapBytes(r0))
        }
    }

    static func split(_ v: UInt32, _ order: WordOrder) -> [UInt16] {
        let hi = UInt16(v >> 16), lo = UInt16(v & 0xFFFF)
        let swapBytes: (UInt16) -> UInt16 = { ($0 << 8) | ($0 >> 8) }
        switch order {
        case .abcd: return [hi, lo]
        case .cdab: return [lo, hi]
        case .badc: return [swapBytes(hi), swapBytes(lo)]
        case .dcba: return [swapBytes(lo), swapBytes(hi)]
        }
    }

    /// Decodes `type.count` registers to an engineering value.
    public func decode(_ regs: ArraySlice<UInt16>) -> Double {
        precondition(regs.count >= type.count)
        let r = Array(regs.prefix(type.count))
        let raw: Double
        switch type {
        case .u16: raw = Double(r[0])
        case .i16: raw = Double(Int16(bitPattern: r[0]))
        case .u32: raw = Double(Self.combine(r[0], r[1], order))
        case .i32: raw = Double(Int32(bitPattern: Self.combine(r[0], r[1], order)))
        case .f32: raw = Double(Float(bitPattern: Self.combine(r[0], r[1], order)))
        }
        return raw * scale + offset
    }

    /// Encodes an engineering value, rounding and clamping integers to their range.
    public func encode(_ value: Double) -> [UInt16] {
        let raw = (value - offset) / scale
        func clamp<T: FixedWidthInteger>(_: T.Type) -> T {
            guard raw.isFinite else { return raw > 0 ? T.max : T.min }
            return T(min(max(raw.rounded(), Double(T.min)), Double(T.max)))
        }
        switch type {
        case .u16: return [clamp(UInt16.self)]
        case .i16: return [UInt16(bitPattern: clamp(Int16.self))]
        case .u32: return Self.split(clamp(UInt32.self), order)
        case .i32: return Self.split(UInt32(bitPattern: clamp(Int32.self)), order)
        case .f32: return Self.split(Float(raw).bitPattern, order)
        }
    }
}
