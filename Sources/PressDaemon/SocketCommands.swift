import Foundation
import NIOCore
import PressCore
import PressDrivers
import PressLog
import PressProtocol
import PressSim

/// The socket's methods, one handler each: look up the channel, validate what only the
/// server can (units, actions, the run log's presence), hand the typed command to the
/// control loop or a worker thread, and map the answer to the wire. Limits are checked
/// by the control core, against the configuration in force. Runs on the connection's
/// event loop; nothing here blocks.
extension ConnectionHandler {
    func status(_ p: OptionalChannelParams, id: RequestRef, context: ChannelHandlerContext) {
        if let name = p.channel, channelIndex(name) == nil { return unknownChannel(id, name, context: context) }
        guard let snap = loop.snapshots.latest() else { return fail(id, .unavailable, "no data yet", context: context) }
        let uptime = Double(monotonicNanos() &- ctx.startNanos) / 1e9
        var result = StatusResult(version: ctx.version, backend: ctx.backend.rawValue, uptimeS: uptime,
                                  loop: StatusMapping.loop(snap.stats),
                                  channels: StatusMapping.channels(snap, configs: ctx.channels, only: p.channel.map { [$0] }))
        let now = Date().timeIntervalSince1970
        result.timeUnix = now
        result.startedUnix = now - uptime
        let health = ctx.deviceHealth()
        if !health.isEmpty {
            result.devices = health.map { h in
                var d = DeviceInfo(name: h.name, endpoint: h.endpoint, connected: h.connected, reads: h.reads,
                                   writes: h.writes, errors: h.errors, lastError: h.lastError)
                d.exceptions = h.exceptions; d.resyncs = h.resyncs
                return d
            }
        }
        let stores = ctx.storage()
        if !stores.isEmpty {
            result.storage = stores
            let alarms = stores.filter { !$0.writing }.map { "\($0.name.replacingOccurrences(of: "_", with: " ")) not writing since \(Int($0.failingSinceS ?? 0)) s after start: \($0.lastError ?? "")" }
            if !alarms.isEmpty { result.alarms = alarms }
        }
        reply(id, result, context: context)
    }

    func setpoint(_ p: SetParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let unit: SetpointUnit
        do throws(QuantityError) { unit = try SetpointUnit.parse(String(p.unit.prefix(32))) } catch {
            return fail(id, .invalidParams, "set: \(error)", context: context)
        }
        // The limits are the control core's (the configuration in force); only the unit
        // needs the cell area here.
        let area = ctx.channels[i].control.cellArea
        let mpa = unit.toMPa(p.value, cellArea: area)
        guard mpa.isFinite else { return fail(id, .invalidParams, "set: value must be a finite number", context: context) }
        let asked = unit == .mpa ? "\(p.value) MPa" : "\(p.value) \(unit.rawValue) (= \(round3(mpa)) MPa)"
        submit(.set(channel: i, mpa: mpa, ramp: p.rampMpaPerS), id: id, method: "set", context: context) { r in
            switch r {
            case .setpoint(let v, let ramp): return .success(SetResult(channel: p.channel, setpointMpa: v, rampMpaPerS: ramp))
            case .rejected(.outOfRange(_, let lo, let hi)):
                return .failure(ErrorBody(.outOfRange, "set: \(asked) is outside channel \(p.channel)'s limits \(lo)…\(hi) MPa"))
            default: return nil
            }
        }
    }

    func holdOrRelease(_ p: ChannelParams, hold: Bool, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        submit(hold ? .hold(channel: i) : .release(channel: i), id: id, method: hold ? "hold" : "release", context: context) { r in
            if case .ok(let mode) = r { return .success(ModeResult(channel: p.channel, mode: mode.rawValue)) }
            return nil
        }
    }

    func holdGap(_ p: GapParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        if let t = p.thicknessUm, !(t.isFinite && t > 0 && t <= 1e6) {
            return fail(id, .invalidParams, "gap: thickness_um must be a positive number of µm (≤ 1e6), got \(t)", context: context)
        }
        submit(.gap(channel: i, um: p.thicknessUm), id: id, method: "gap", context: context) { r in
            if case .ok(let mode) = r { return .success(ModeResult(channel: p.channel, mode: mode.rawValue)) }
            return nil
        }
    }

    func acknowledge(_ p: OptionalChannelParams, id: RequestRef, context: ChannelHandlerContext) {
        var which: Int?
        if let name = p.channel {
            guard let i = channelIndex(name) else { return unknownChannel(id, name, context: context) }
            which = i
        }
        let names = ctx.channels.map(\.name)
        submit(.acknowledge(channel: which), id: id, method: "ack", context: context) { r -> Result<AckResult, ErrorBody>? in
            guard case .acknowledged(let list) = r else { return nil }
            return .success(AckResult(channels: list.map {
                AckResult.PerChannel(channel: names[$0.channel], cleared: $0.cleared.map(\.rawValue),
                                     remaining: $0.remaining.map(\.rawValue), mode: $0.mode.rawValue)
            }))
        }
    }

    func unsubscribe(_ p: UnsubscribeParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let t = subscriptions.removeValue(forKey: p.subscription) else {
            return fail(id, .invalidParams, "unsubscribe: no subscription \(p.subscription) on this connection", context: context)
        }
        t.cancel()
        reply(id, OkResult(), context: context)
    }

    func programStart(_ p: ProgramStartParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let source = p.source ?? "program"
        let program: PressureProgram
        do { program = try ProgramFile.parse(p.program, source: source) }
        catch { return fail(id, .invalidProgram, "program_start: \(error)", context: context) }
        let locator = KeyLocator(source: p.program)
        let name = p.channel
        submit(.programStart(channel: i, program), id: id, method: "program_start", context: context) { r -> Result<ProgramResult, ErrorBody>? in
            switch r {
            case .program(let runner): return .success(ProgramResult(channel: name, program: runner.map(programInfo)))
            case .rejected(.invalidProgram(let step, let message)):
                let line = locator.line(of: "steps[\(step)]").map { ":\($0)" } ?? ""
                return .failure(ErrorBody(.invalidProgram, "program_start: \(source)\(line): step \(step + 1): \(message)"))
            default: return nil
            }
        }
    }

    enum ProgramAction { case pause, resume, stop }

    func programControl(_ p: ChannelParams, _ action: ProgramAction, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let (cmd, method): (LoopCommand, String)
        switch action {
        case .pause: (cmd, method) = (.programPause(channel: i), "program_pause")
        case .resume: (cmd, method) = (.programResume(channel: i), "program_resume")
        case .stop: (cmd, method) = (.programStop(channel: i), "program_stop")
        }
        let name = p.channel
        submit(cmd, id: id, method: method, context: context) { r -> Result<ProgramResult, ErrorBody>? in
            if case .program(let runner) = r { return .success(ProgramResult(channel: name, program: runner.map(programInfo))) }
            return nil
        }
    }

    func programStatus(_ p: OptionalChannelParams, id: RequestRef, context: ChannelHandlerContext) {
        if let name = p.channel, channelIndex(name) == nil { return unknownChannel(id, name, context: context) }
        guard let snap = loop.snapshots.latest() else { return fail(id, .unavailable, "no data yet", context: context) }
        let list = snap.channels.filter { p.channel == nil || $0.name == p.channel }
            .map { ProgramResult(channel: $0.name, program: $0.program.map(programInfo)) }
        reply(id, list, context: context)
    }

    func logExport(_ p: LogExportParams, id: RequestRef, context: ChannelHandlerContext) {
        if let name = p.channel, channelIndex(name) == nil { return unknownChannel(id, name, context: context) }
        guard let log = ctx.runLog else { return fail(id, .unavailable, "log_export: the run log is disabled ([runlog] enabled = false) or not open (see status: storage)", context: context) }
        guard p.until > p.since else { return fail(id, .invalidParams, "log_export: until (\(p.until)) must be after since (\(p.since))", context: context) }
        exportLog(log, p, id: id, context: context)
    }

    func logEvents(_ p: LogExportParams, id: RequestRef, context: ChannelHandlerContext) {
        if let name = p.channel, channelIndex(name) == nil { return unknownChannel(id, name, context: context) }
        guard let log = ctx.runLog else { return fail(id, .unavailable, "log_events: the run log is disabled or not open (see status: storage)", context: context) }
        offload(id, "log_events", context: context) {
            let all = try log.events(since: p.since, until: p.until, channel: p.channel)
            let list = all.prefix(10_000).map { LogEventInfo(timeUnix: $0.time, channel: $0.channel, kind: $0.kind, detail: $0.detail, uid: $0.uid, pid: $0.pid) }
            return LogEventsResult(events: Array(list), truncated: all.count > 10_000)
        }
    }

    func pushSignals(_ p: PushSignalsParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        // The named fields and the generic list, each by its key in the signal table.
        let named = [("interfacial_resistance_ohm_cm2", p.interfacialResistanceOhmCm2), ("temperature_c", p.temperatureC), ("current_ma", p.currentMa),
                     ("voltage_v", p.voltageV)].compactMap { k, v in v.map { SignalValue(key: k, value: $0) } }
        var values: [Signal: Double] = [:]
        for v in named + (p.signals ?? []) {
            guard let signal = Signal.pushable.first(where: { $0.descriptor.key == v.key }) else {
                return fail(id, .invalidParams, "push_signals: '\(SafeText.escaped(v.key))' is not a signal that can be pushed (\(Signal.pushable.map(\.descriptor.key).joined(separator: ", ")))", context: context)
            }
            let d = signal.descriptor
            guard v.value.isFinite else { return fail(id, .invalidParams, "push_signals: \(d.key) must be a finite number", context: context) }
            // Physically possible values only: a typo's 1e300 is refused, not stored.
            guard d.plausible.contains(v.value) else {
                let (lo, hi) = (d.plausible.lowerBound, d.plausible.upperBound)
                let range = lo > 0 && lo < 1e-6 ? "> 0 and ≤ \(String(format: "%g", hi))" : "within \(String(format: "%g", lo))…\(String(format: "%g", hi))"
                return fail(id, .invalidParams, "push_signals: \(d.key) must be \(range) \(d.unit) (got \(String(format: "%g", v.value)) \(d.unit))", context: context)
            }
            guard values[signal] == nil else { return fail(id, .invalidParams, "push_signals: \(d.key) given twice", context: context) }
            values[signal] = v.value
        }
        guard !values.isEmpty else {
            return fail(id, .invalidParams, "push_signals: give at least one of \(Signal.pushable.map(\.descriptor.key).joined(separator: ", "))", context: context)
        }
        // The acquisition time as an age, so that the loop places it on its own clock.
        var age = 0.0
        if let at = p.acquiredAt {
            let now = Date().timeIntervalSince1970
            guard at.isFinite else { return fail(id, .invalidParams, "push_signals: acquired_at must be a finite number of Unix seconds", context: context) }
            guard at <= now + 5 else {
                return fail(id, .invalidParams, "push_signals: acquired_at \(at) is \(fmt0(at - now)) s in the future (check the sending machine's clock)", context: context)
            }
            age = max(0, now - at)
            let limit = ctx.channels[i].pushedStaleAfter
            // Staleness is judged on the loop's clock, as the loop will judge it.
            guard age * ctx.timeScale <= limit else {
                let scaled = ctx.timeScale == 1 ? "" : " (\(fmt0(age * ctx.timeScale)) s of loop time at time_scale \(ctx.timeScale))"
                return fail(id, .invalidParams, "push_signals: acquired_at is \(fmt0(age)) s ago\(scaled), older than the channel's pushed_stale_after_s \(fmt0(limit)) s: the values would be stale on arrival", context: context)
            }
        }
        submitAction(.push(channel: i, PushedSignals(values, age: age)),
                     channel: p.channel, state: "stored", id: id, method: "push_signals", context: context)
    }

    func sweeps(_ p: LogExportParams, id: RequestRef, context: ChannelHandlerContext) {
        if let name = p.channel, channelIndex(name) == nil { return unknownChannel(id, name, context: context) }
        guard let log = ctx.runLog else { return fail(id, .unavailable, "sweeps: the run log is disabled or not open (see status: storage)", context: context) }
        offload(id, "sweeps", context: context) {
            SweepsResult(sweeps: try log.sweeps(since: p.since, until: p.until, channel: p.channel).map {
                SweepRecordInfo(timeUnix: $0.time, channel: $0.channel, sweep: StatusMapping.sweep($0.result))
            })
        }
    }

    /// Merges the change into the channel's record (``RunRecords``), records it as a
    /// `run` event with the peer and the previous values, and answers once the run-log
    /// writer has written it — or with `storage` when it cannot now (the record is kept
    /// and written later).
    func runSet(_ p: RunSetParams, id: RequestRef, context: ChannelHandlerContext) {
        guard channelIndex(p.channel) != nil else { return unknownChannel(id, p.channel, context: context) }
        guard let log = ctx.runLog else { return fail(id, .unavailable, "run_set: the run log is disabled or not open (see status: storage)", context: context) }
        for (i, s) in (p.metadata?.preparation ?? []).enumerated() {
            guard !s.component.isEmpty, s.pressureMpa.isFinite, s.pressureMpa > 0, s.holdS.map({ $0.isFinite && $0 >= 0 }) ?? true,
                  s.temperatureC.map({ $0.isFinite && $0 > -273.15 }) ?? true else {
                return fail(id, .invalidParams, "run_set: metadata.preparation[\(i)] needs a component, pressure_mpa > 0, hold_s ≥ 0 and a real temperature_c", context: context)
            }
        }
        let (records, store, audit, peer) = (ctx.runRecords, ctx.store, ctx.audit, self.peer)
        let eventLoop = context.eventLoop
        let ctxBox = NIOLoopBound(context, eventLoop: eventLoop)
        DispatchQueue.global().async {
            let now = Date().timeIntervalSince1970
            let merged: (record: RunMetadata, changes: [RunRecords.Change])
            do { merged = try records.apply(p, log: log) } catch {
                return eventLoop.execute { self.fail(id, .storage, "run_set: cannot read channel \(p.channel)'s record: \(error)", context: ctxBox.value) }
            }
            if !merged.changes.isEmpty {
                audit(RunLogEvent(time: now, channel: p.channel, kind: "run", detail: merged.changes.map(\.text).joined(separator: "; "),
                                  uid: peer.map { Int($0.uid) }, pid: peer.map { Int($0.pid) }))
            }
            let result = RunResult(channel: p.channel, metadata: RunMetadataInfo(merged.record))
            store(.metadata(channel: p.channel, record: merged.record, time: now, done: { error in
                eventLoop.execute {
                    guard let error else { return self.reply(id, result, context: ctxBox.value) }
                    self.fail(id, .storage, "run_set: recorded, but the run log cannot write now (\(error)); the record is kept in memory, shown by run get, and written when the run log can write again", context: ctxBox.value)
                }
            }))
        }
    }

    func runGet(_ p: ChannelParams, id: RequestRef, context: ChannelHandlerContext) {
        guard channelIndex(p.channel) != nil else { return unknownChannel(id, p.channel, context: context) }
        guard let log = ctx.runLog else { return fail(id, .unavailable, "run_get: the run log is disabled or not open (see status: storage)", context: context) }
        let records = ctx.runRecords
        offload(id, "run_get", context: context) {
            RunResult(channel: p.channel, metadata: RunMetadataInfo(try records.record(channel: p.channel, log: log)))
        }
    }

    func reload(id: RequestRef, context: ChannelHandlerContext) {
        // Parsed and applied on the reload executor, never on this event loop.
        let eventLoop = context.eventLoop
        let ctxBox = NIOLoopBound(context, eventLoop: eventLoop)
        ctx.reload { result in
            eventLoop.execute {
                switch result {
                case .success(let m): self.reply(id, ReloadResult(message: m), context: ctxBox.value)
                case .failure(let e): self.fail(id, .invalidParams, "reload refused, running configuration kept: \(e)", context: ctxBox.value)
                }
            }
        }
    }

    func calibrate(_ p: CalibrateParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let name = p.channel
        @Sendable func info(_ c: [LoadCellCalibration]) -> CalibrateResult {
            CalibrateResult(channel: name, cells: c.map { CellCalibrationInfo(offsetN: $0.offset, gain: $0.gain) })
        }
        let action: CalibrationAction
        switch p.action {
        case .show:
            let log = ctx.runLog
            return offload(id, "calibrate", context: context) { info((try log?.calibrations()[name]) ?? []) }
        case .tare: action = .tare
        case .span:
            guard let v = p.value, let u = SetpointUnit(exactly: p.unit ?? "N") else {
                return fail(id, .invalidParams, "calibrate: span needs value and unit (N, kN, or a pressure: \(SetpointUnit.allCases.map(\.rawValue).joined(separator: ", ")), case-sensitive)", context: context)
            }
            let area = ctx.channels[i].control.cellArea
            let newtons = StackUnits.force(pressure: u.toMPa(v, cellArea: area), area: area)
            guard newtons > 0, newtons.isFinite else { return fail(id, .invalidParams, "calibrate: the known load must be > 0 N (got \(newtons) N)", context: context) }
            action = .span(knownNewtons: newtons, cell: p.cell)
        }
        let store = ctx.store
        submit(.calibrate(channel: i, action), id: id, method: "calibrate", context: context) { r -> Result<CalibrateResult, ErrorBody>? in
            switch r {
            case .calibration(let c):
                // Stored by the run-log writer's thread, never on this event loop.
                store(.calibration(channel: name, cells: c))
                return .success(info(c))
            case .calibrationFailed(let e): return .failure(ErrorBody(.invalidParams, "calibrate: \(e)"))
            default: return nil
            }
        }
    }

    func tune(_ p: TuneParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let name = p.channel
        switch p.action {
        case .cancel:
            submitAction(.autotuneCancel(channel: i), channel: name, state: "cancelled", id: id, method: "tune", context: context)
        case .start:
            var s = ctx.channels[i].control.autotune
            if let r = p.rule {
                guard let rule = TuningRule(rawValue: r) else {
                    return fail(id, .invalidParams, "tune: rule '\(r.prefix(32))' is not one of \(TuningRule.allCases.map(\.rawValue).joined(separator: ", "))", context: context)
                }
                s.rule = rule
            }
            if let e = p.excursionMpa { s.maxExcursion = e }
            if let c = p.cycles { s.cycles = c }
            if let t = p.timeoutS { s.timeout = t }
            if let e = s.validationErrors().first {
                let keys = ["max_excursion_mpa": "excursion_mpa", "cycles": "cycles", "timeout_s": "timeout_s"]
                return fail(id, .invalidParams, "tune: \(keys[e.field] ?? e.field) \(e.message)", context: context)
            }
            submitAction(.autotune(channel: i, s), channel: name, state: "started", id: id, method: "tune", context: context)
        }
    }

    func sweep(_ p: SweepParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let name = p.channel
        switch p.action {
        case .cancel:
            submitAction(.sweepCancel(channel: i), channel: name, state: "cancelled", id: id, method: "sweep", context: context)
        case .start:
            guard let from = p.fromMpa, let to = p.toMpa else {
                return fail(id, .invalidParams, "sweep: start needs from_mpa and to_mpa", context: context)
            }
            var s = SweepSettings(from: from, to: to)
            if let n = p.steps { s.steps = n }
            if let d = p.dwellS { s.dwell = d }
            s.returnTo = p.returnMpa
            if let n = p.minMeasurements { s.minMeasurements = n }
            if let t = p.measurementTimeoutS { s.measurementTimeout = t }
            if let d = p.direction {
                guard let v = SweepDirection(rawValue: d) else { return fail(id, .invalidParams, "sweep: direction must be down, up or down_up", context: context) }
                s.direction = v
            }
            if let k = p.sweepProtocol {
                guard let v = SweepProtocol(rawValue: k) else { return fail(id, .invalidParams, "sweep: protocol must be static or dynamic", context: context) }
                s.sweepProtocol = v
            }
            if let m = p.margin { s.margin = m }
            if let g = p.growthThresholdPerH { s.growthThresholdPerHour = g }
            if let e = s.validationErrors(limits: ctx.channels[i].control.limits).first {
                return fail(id, .invalidParams, "sweep: \(e.field) \(e.message)", context: context)
            }
            submitAction(.sweep(channel: i, s), channel: name, state: "started", id: id, method: "sweep", context: context)
        }
    }

    func supervisor(_ p: SupervisorParams, id: RequestRef, context: ChannelHandlerContext) {
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        let name = p.channel
        let lock = p.action == .lock
        submitAction(.supervisorLock(channel: i, locked: lock), channel: name, state: lock ? "locked" : "unlocked", id: id, method: "supervisor", context: context)
    }

    func simInject(_ p: SimInjectParams, id: RequestRef, context: ChannelHandlerContext) {
        guard ctx.backend == .simulator else { return fail(id, .unavailable, "sim_inject: only with backend = \"simulator\"", context: context) }
        guard let i = channelIndex(p.channel) else { return unknownChannel(id, p.channel, context: context) }
        if let e = p.validationError() { return fail(id, .invalidParams, "sim_inject: \(e)", context: context) }
        var j = SimInjection(forceBias: p.forceBiasN, sensorDisconnected: p.sensorDisconnected, ambient: p.ambientC,
                             supply: p.supplyMpa, current: p.currentMa, cyclePeriod: p.cyclePeriodS, thicknessStep: p.thicknessStepUm,
                             stallSeconds: p.stallS, emergencyStop: p.emergencyStop, charging: p.charging)
        j.forceGain = p.forceGain
        j.shortOhm = p.shortOhm
        submit(.inject(channel: i, j), id: id, method: "sim_inject", context: context) { r in
            if case .ok = r { return .success(OkResult()) }
            return nil
        }
    }
}
