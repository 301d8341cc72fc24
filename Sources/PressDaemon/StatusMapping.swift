import PressCore
import PressProtocol

/// Turns core snapshots into wire types.
enum StatusMapping {
    static func channel(_ s: ChannelState, config c: ChannelConfig) -> ChannelStatus {
        let l = s.limits
        let st0 = ChannelStatus(
            name: s.name, mode: s.mode.rawValue, timeS: s.time,
            setpointMpa: s.target, workingSetpointMpa: s.workingSetpoint,
            pressureMpa: s.pressure, forceN: s.force, stale: s.stale, inBand: s.inBand,
            output: s.output, outputUnit: c.actuator.outputUnit, actuator: c.actuator.rawValue,
            cellAreaCm2: c.control.cellArea,
            limits: LimitsInfo(minMpa: l.minSetpoint, maxMpa: l.maxSetpoint, tripMpa: l.trip),
            pid: PIDInfo(error: s.terms.error, p: s.terms.proportional, i: s.terms.integral,
                         d: s.terms.derivative, ff: s.terms.feedforward, saturated: s.terms.saturated),
            faults: s.faults.map { FaultInfo(code: $0.code.rawValue, message: $0.message, active: $0.active, raisedAtS: $0.raisedAt) },
            temperatureC: s.readings.temperature?.value, currentMa: s.readings.current?.value,
            interfacialResistanceOhmCm2: s.readings.interfacialResistance?.value)
        var st = st0
        st.loadCellForcesN = s.readings.loadCellForces
        st.nonUniformity = nonUniformity(s.readings.loadCellForces)
        return st
    }

    static func loop(_ s: LoopStats) -> LoopInfo {
        LoopInfo(rateHz: s.rate, ticks: s.ticks, overruns: s.overruns, lastJitterUs: s.lastJitter * 1e6,
                 maxJitterUs: s.maxJitter * 1e6, maxTickUs: s.maxTickDuration * 1e6, timeScale: s.timeScale,
                 jitterBucketUs: LoopStats.jitterBucketEdges.map { $0 * 1e6 }, jitterHistogram: s.jitterHistogram)
    }

    static func channels(_ snap: RigSnapshot, configs: [ChannelConfig], only: Set<String>?) -> [ChannelStatus] {
        zip(snap.channels, configs).compactMap { s, c in
            guard only.map({ $0.contains(c.name) }) ?? true else { return nil }
            return channel(s, config: c)
        }
    }
}
