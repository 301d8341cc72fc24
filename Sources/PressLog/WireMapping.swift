import PressCore
import PressProtocol

// Persisted records (PressCore, PressLog) as the wire types pressd and pressctl share, in
// one place: the daemon answers with them, and pressctl's --state-dir readers use them
// on a run log read directly.

extension SweepInfo {
    /// A stored critical-stack-pressure sweep as the wire's `SweepInfo`.
    public init(_ r: SweepResult) {
        func margin(_ m: MarginPressure?) -> SweepMarginInfo? {
            m.map { SweepMarginInfo(margin: $0.margin, referenceOhmCm2: $0.reference, referenceSeOhmCm2: $0.referenceSE, thresholdOhmCm2: $0.threshold,
                                    pressureMpa: $0.pressure, lowMpa: $0.low, highMpa: $0.high, lowestPressureMpa: $0.lowestPressure) }
        }
        func dynamic(_ d: DynamicCSP?) -> SweepDynamicInfo? {
            d.map { SweepDynamicInfo(thresholdPerH: $0.threshold, cspMpa: $0.pressure, grewAtMpa: $0.grewAt, currentDensityMaCm2: $0.currentDensity,
                                     temperatureC: $0.temperature) }
        }
        self.init(status: r.status.rawValue, note: r.note, cspMpa: r.fit?.csp, cspLowMpa: r.fit?.cspLow, cspHighMpa: r.fit?.cspHigh,
                  p90Mpa: r.fit?.p90, plateauOhmCm2: r.fit?.plateau, riseOhmCm2: r.fit?.rise, sharpness: r.fit?.sharpness,
                  points: r.points.map { SweepPointInfo(setpointMpa: $0.setpoint, pressureMpa: $0.pressure, resistanceOhmCm2: $0.resistance,
                                                        resistanceSd: $0.resistanceSD, samples: $0.samples, temperatureC: $0.temperature,
                                                        currentDensityMaCm2: $0.currentDensity, leg: $0.leg?.rawValue,
                                                        slopeOhmCm2PerH: $0.slope, slopeSeOhmCm2PerH: $0.slopeSE,
                                                        slopePctPerH: $0.relativeSlope.map { $0 * 100 }, grows: $0.grows) },
                  p90LowMpa: r.fit?.p90Low, p90HighMpa: r.fit?.p90High, direction: r.settings.direction.rawValue,
                  sweepProtocol: r.settings.sweepProtocol.rawValue, currentDensityMaCm2: r.currentDensity, temperatureC: r.temperature,
                  margin: margin(r.margin), dynamic: dynamic(r.dynamic),
                  legs: r.legs?.map { l in
                      SweepLegInfo(leg: l.leg.rawValue, levels: l.levels, cspMpa: l.fit?.csp, cspLowMpa: l.fit?.cspLow, cspHighMpa: l.fit?.cspHigh,
                                   p90Mpa: l.fit?.p90, p90LowMpa: l.fit?.p90Low, p90HighMpa: l.fit?.p90High, margin: margin(l.margin), dynamic: dynamic(l.dynamic))
                  },
                  hysteresis: r.hysteresis.map { SweepHysteresisInfo(cspShiftMpa: $0.cspShift, cspShiftHalfWidthMpa: $0.cspShiftHalfWidth,
                                                                     marginShiftMpa: $0.marginShift, marginShiftHalfWidthMpa: $0.marginShiftHalfWidth,
                                                                     meanRelativeResistanceDifference: $0.meanRelativeResistanceDifference, pairs: $0.pairs) },
                  summary: r.summary)
    }
}

extension RunMetadataInfo {
    /// Stored run metadata as the wire's `RunMetadataInfo` (nil: all fields empty).
    public init(_ m: RunMetadata?) {
        self.init(cellId: m?.cellId, chemistry: m?.chemistry, operatorNote: m?.operatorNote, preparationPressureMpa: m?.preparationPressureMpa)
        preparation = m?.preparation
    }
}

extension RunMetadata {
    /// Run metadata from the wire, to store.
    public init(_ m: RunMetadataInfo) {
        self.init(cellId: m.cellId, chemistry: m.chemistry, operatorNote: m.operatorNote, preparationPressureMpa: m.preparationPressureMpa)
        preparation = m.preparation
    }
}

extension LogEventInfo {
    /// A run-log event as the wire's `LogEventInfo`.
    public init(_ e: RunLogEvent) {
        self.init(timeUnix: e.time, channel: e.channel, kind: e.kind, detail: e.detail, uid: e.uid, pid: e.pid)
    }
}
