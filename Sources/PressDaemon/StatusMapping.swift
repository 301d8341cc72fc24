import Foundation
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
        if let r = s.readings.interfacialResistance { st.interfacialResistanceAgeS = max(0, s.time - r.time) }
        if let b = s.readings.bulkResistance { st.bulkResistanceOhmCm2 = b.value; st.bulkResistanceAgeS = max(0, s.time - b.time) }
        st.loadCellForcesN = s.readings.loadCellForces
        st.voltageV = s.readings.voltage?.value
        st.signals = s.readings.signals.present.map { signal, sample in
            let d = signal.descriptor
            return SignalReading(key: d.key, label: d.label, unit: d.unit, value: sample.value, ageS: max(0, s.time - sample.time), decimals: d.decimals)
        }
        st.gapTargetUm = s.gapTarget
        st.nonUniformity = nonUniformity(s.readings.loadCellForces)
        st.control = control(s.control, now: s.time, target: s.target)
        st.chemistryPreset = c.preset
        st.excursion = s.excursion.map { ExcursionInfo(startS: $0.start, endS: $0.end, setpointMpa: $0.setpoint, worstErrorMpa: $0.worstError, cause: $0.cause) }
        // Present only when there is something to say: every subscription event carries
        // these, and each key costs encoding time on the event loop.
        let x = s.excursions
        if x.count > 0 {
            st.excursions = ExcursionStatsInfo(count: x.count, timeOutOfBandS: x.timeOutOfBand, longestS: x.longest, worstAbsErrorMpa: x.worstAbsError)
            if x.brief > 0 { st.excursions?.brief = x.brief }
        }
        if s.authorityLost { st.authorityLost = true }
        return st
    }

    static func control(_ c: ControlStatus, now: Double, target: Double?) -> ControlInfo {
        var info = ControlInfo(strategy: c.strategy.rawValue, active: c.active, kp: c.kp, ki: c.ki, feedforwardGain: c.feedforwardGain)
        info.setpointOwner = c.setpointOwner.rawValue
        if let a = c.autotune {
            var cycles = 0
            if case .relay(let n) = a.phase { cycles = n }
            info.autotune = AutotuneProgressInfo(phase: a.phase.name, cycles: cycles, cyclesWanted: a.settings.cycles,
                                                 elapsedS: a.started.map { a.lastTime - $0 } ?? 0, timeoutS: a.settings.timeout,
                                                 setpointMpa: a.setpoint, excursionMpa: a.settings.maxExcursion, rule: a.settings.rule.rawValue)
        }
        if let t = c.lastTune {
            info.lastTune = AutotuneInfo(rule: t.rule.rawValue, kp: t.kp, ki: t.ki, ultimateGain: t.ultimateGain, ultimatePeriodS: t.ultimatePeriod,
                                         processGain: t.processGain, timeConstantS: t.timeConstant, deadTimeS: t.deadTime, setpointMpa: t.setpoint)
        }
        if let s = c.sweep {
            info.sweep = SweepProgressInfo(level: s.index, levels: s.levels.count, setpointMpa: s.setpoint,
                                           dwellElapsedS: s.reachedAt.map { now - $0 }, dwellS: s.settings.dwell, pointsMeasured: s.points.count,
                                           leg: s.leg.rawValue, measurementsAtLevel: s.measurementsAtLevel)
        }
        if let r = c.lastSweep { info.lastSweep = sweep(r) }
        if let v = c.supervisor {
            let k = v.settings.level(target ?? v.settings.windowMax)
            let bin = v.map.bins.indices.contains(k) ? v.map.bins[k] : nil
            let fit = v.knee
            info.supervisor = SupervisorInfo(locked: v.locked, lockReason: v.lockReason, windowMinMpa: v.settings.windowMin,
                                             windowMaxMpa: v.settings.windowMax, margin: v.settings.margin, minimumOhmCm2: v.map.minimum(measurements: v.settings.minMeasurements),
                                             limitOhmCm2: v.limit, levelResistanceOhmCm2: (bin?.count ?? 0) > 0 ? bin?.mean : nil,
                                             levelStandardError: (bin?.count ?? 0) > 1 ? bin?.standardError : nil,
                                             converged: v.convergedAt != nil, lastReason: v.lastReason,
                                             cspMpa: fit?.csp, cspLowMpa: fit?.cspLow, cspHighMpa: fit?.cspHigh,
                                             levelMeasurements: v.measurementsAtLevel, floorMpa: v.floorPressure)
        }
        if let m = c.mpc {
            info.mpc = MPCInfo(gain: m.gain, timeConstantS: m.timeConstant, deadTimeS: m.deadTime, horizonS: m.horizon, source: m.source,
                               predictionErrorMpa: m.predictionError, confidence: m.confidence, active: m.active, handovers: m.handovers)
        }
        if let m = c.memory {
            info.adaptive = AdaptiveInfo(scale: m.scale, baseGain: m.baseGain, estimatedGain: m.estimatedGain, schedule: m.schedule,
                                         updates: m.estimate.observations, fallbacks: m.fallbacks)
            info.adaptive?.validatedMoves = m.estimate.recentErrors.count
            info.adaptive?.recentErrorPercent = m.estimate.recentErrors.last.map { $0 * 100 }
            info.adaptive?.oscillations = m.oscillations
            info.adaptive?.raiseBlockedS = m.raiseBlockedUntil.flatMap { $0 > now ? $0 - now : nil }
            if c.strategy == .learned {
                info.learned = LearnedInfo(active: m.learnedActive, confidence: m.confidence, benefit: m.disturbanceBenefit,
                                           handovers: m.handovers, feedforward: m.disturbanceOutput,
                                           chargeCoefficient: m.disturbance.theta[1], temperatureCoefficient: m.disturbance.theta[2],
                                           updates: m.disturbance.updates)
            }
        }
        return info
    }

    static func sweep(_ r: SweepResult) -> SweepInfo { SweepInfo(r) }

    /// What a channel is (fixture, area, load cells, limits), for the run log.
    static func descriptor(_ c: ChannelConfig, backend: BackendKind, clock: (scale: Double, wall: Double, log: Double)? = nil) -> ChannelDescriptor {
        let applied: String
        switch c.actuator {
        case .springFixture:
            applied = "spring: a stepper-driven screw compresses a calibrated spring in series with the cell (spring fixture)"
        case .pneumatic:
            applied = c.hardware.valves != nil
                ? "pneumatic: a cylinder fed through inlet/exhaust solenoid valves"
                : "pneumatic: a cylinder fed by an electro-pneumatic regulator"
        }
        var cells = c.hardware.loadCells.map(\.ref.signal.id) + c.hardware.hx711s.map(\.input.id)
        if backend == .simulator { cells = ["\(c.name).load_cells[0] (simulated)"] }
        let l = c.control.limits
        var d = ChannelDescriptor(channel: c.name, description: c.description, actuator: c.actuator.rawValue, pressureApplied: applied,
                                 backend: backend.rawValue, cellAreaCm2: c.control.cellArea, loadCells: cells,
                                 loadCellRangeN: c.control.sensor.maxForce,
                                 limits: LimitsInfo(minMpa: l.minSetpoint, maxMpa: l.maxSetpoint, tripMpa: l.trip),
                                 preset: c.preset, bandPercent: c.control.band * 100)
        if let clock { d.timeScale = clock.scale; d.clockWall = clock.wall; d.clockLog = clock.log }
        return d
    }

    /// The descriptor as a run-log `config` event's detail.
    static func descriptorDetail(_ c: ChannelConfig, backend: BackendKind, loop: ControlLoop) -> String {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? e.encode(descriptor(c, backend: backend, clock: (loop.timeScale, Date().timeIntervalSince1970, loop.logTimeNow())))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ChannelDescriptor.prefix + json
    }

    static func loop(_ s: LoopStats) -> LoopInfo {
        var info = LoopInfo(rateHz: s.rate, ticks: s.ticks, overruns: s.overruns, lastJitterUs: s.lastJitter * 1e6,
                 maxJitterUs: s.maxJitter * 1e6, maxTickUs: s.maxTickDuration * 1e6, timeScale: s.timeScale,
                 jitterBucketUs: LoopStats.jitterBucketEdges.map { $0 * 1e6 }, jitterHistogram: s.jitterHistogram)
        info.slippedS = s.slipped > 0 ? s.slipped : nil
        return info
    }

    /// - Parameter compact: for subscription events: the last sweep's points and the
    ///   gain schedule are left out (they are in `status`), so that a stream stays small.
    static func channels(_ snap: RigSnapshot, configs: [ChannelConfig], only: Set<String>?, compact: Bool = false) -> [ChannelStatus] {
        zip(snap.channels, configs).compactMap { s, c in
            guard only.map({ $0.contains(c.name) }) ?? true else { return nil }
            var st = channel(s, config: c)
            if compact {
                st.control?.lastSweep?.points = []
                st.control?.adaptive?.schedule = []
            }
            return st
        }
    }
}
