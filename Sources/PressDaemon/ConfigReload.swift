import Foundation
import PressCore

/// How a key that a reload may change takes effect.
public enum ReloadEffect: String, Sendable, CaseIterable {
    /// Sent to the control loop with `reconfigure`: in force from its next tick, bumplessly.
    case loop
    /// Read from the configuration in force each time it is used (status, the spectrum
    /// intake, the socket).
    case live
    /// Accepted and without effect: a key kept for old files, warned about.
    case none
}

/// The keys a reload may change. Any other key whose value differs between the file in
/// force and the reloaded one (added and removed keys included) is refused, naming it: it
/// takes effect only at a restart. docs/configuration.md ("Reload") lists the same keys;
/// `ReloadKeyTests` checks that every one of them reaches the running daemon.
public enum ReloadableKeys {
    /// Keys of `[channels.NAME]` and its tables, relative to it (`pid.kp` is
    /// `channels.NAME.pid.kp`), in the order the docs list them.
    public static let channelKeys: [(key: String, effect: ReloadEffect)] =
        [("description", .live), ("band_percent", .loop), ("excursion_min_s", .loop), ("excursion_min_percent", .loop),
         ("pushed_stale_after_s", .loop)]
        + ["preset", "min_mpa", "max_mpa", "trip_mpa", "trip_action", "saturation_timeout_s", "saturation_action", "safe_mpa",
           "safe_ramp_mpa_per_s", "max_temperature_c", "temperature_action"].map { ("limits." + $0, .loop) }
        + ["range_n", "stale_after_ms", "fault_action", "frozen_after_s", "recover_after_s", "max_recoveries_per_hour",
           "nonuniformity_alarm_percent", "nonuniformity_min_force_n", "frozen_fast_chance", "frozen_fast_min_s"].map { ("sensor." + $0, .loop) }
        + ["kp", "ki"].map { ("gap." + $0, .loop) }
        + ["output_min", "output_max", "output_rate", "safe_output", "shutdown", "play_mpa"].map { ("actuator." + $0, .loop) }
        + ["kp", "ki", "kd", "derivative_filter_s", "deadband_mpa", "setpoint_ramp_mpa_per_s", "action", "anti_windup",
           "tracking_time_s", "feedforward_gain", "feedforward_offset"].map { ("pid." + $0, .loop) }
        + ["strategy", "autotune_rule", "autotune_excursion_mpa", "autotune_hysteresis_mpa", "autotune_cycles", "autotune_timeout_s",
           "adapt_interval_s", "adapt_forgetting", "adapt_schedule_bins", "adapt_min_scale", "adapt_max_scale", "adapt_gain_rate_per_s",
           "adapt_excitation_mpa", "adapt_validation_moves", "confidence_low", "confidence_high"].map { ("control." + $0, .loop) }
        + ["enabled", "window_min_mpa", "window_max_mpa", "margin", "step_mpa", "interval_s", "settle_s", "min_measurements",
           "memory_s"].map { ("supervisor." + $0, .loop) }
        + [("supervisor.reprobe_s", .none)]
        + ["enabled", "window_s", "collapse_v", "floor_v", "confirm_measurements", "noise_factor", "noise_fraction", "noise_floor_v",
           "noise_measurements", "holdoff_s", "current_tolerance_ma", "current_tolerance_fraction", "pressure_tolerance_mpa",
           "pressure_tolerance_fraction", "stale_after_s", "while_discharging", "short_safe_mpa"].map { ("short_detection." + $0, .loop) }
        + ["time_zone", "date_order", "max_relative_error", "require_kramers_kronig"].map { ("impedance." + $0, .live) }

    private static let byKey = Dictionary(uniqueKeysWithValues: channelKeys.map { ($0.key, $0.effect) })

    /// How `key` (a full dotted path, `channels.A.pid.kp`) takes effect at a reload; nil
    /// when it takes effect only at a restart.
    public static func effect(of key: String) -> ReloadEffect? {
        let parts = key.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "channels" else { return nil }
        return byKey[String(parts[2])]
    }
}

/// What a reload changes: decided from the configuration in force and the one just read,
/// before anything is applied.
struct ReloadPlan {
    /// Channels whose loop settings changed (by index), with the settings to put in force.
    var reconfigure: [(channel: Int, settings: LoopChannel.Settings)] = []
    /// The keys that changed, in order, each with how it takes effect.
    var changed: [(key: String, effect: ReloadEffect)] = []

    /// Compares the configuration in force with a newly read one. Refused, naming the keys
    /// and the line of the first, when a key that needs a restart changed.
    static func make(from old: DaemonConfig, to new: DaemonConfig) -> Result<ReloadPlan, ConfigError> {
        func refuse(_ key: String?, _ message: String) -> Result<ReloadPlan, ConfigError> {
            .failure(ConfigError(file: new.file, line: key.flatMap(new.keys.locator.line(of:)), key: key,
                                 message: message + "; running configuration kept"))
        }
        let oldNames = old.channels.map(\.name), newNames = new.channels.map(\.name)
        guard oldNames == newNames else {
            return refuse("channels", "the channels changed (\(oldNames.joined(separator: ", ")) → \(newNames.joined(separator: ", "))): that needs a restart")
        }
        var plan = ReloadPlan()
        var restart: [String] = []
        for key in Set(old.keys.values.keys).union(new.keys.values.keys).sorted() where old.keys.values[key] != new.keys.values[key] {
            if let effect = ReloadableKeys.effect(of: key) { plan.changed.append((key, effect)) } else { restart.append(key) }
        }
        if let first = restart.first {
            let others = restart.dropFirst()
            let more = others.isEmpty ? "" : " (nor can \(others.prefix(8).joined(separator: ", "))\(others.count > 8 ? " and \(others.count - 8) more" : ""))"
            return refuse(first, "cannot change at a reload, only at a restart\(more)")
        }
        // What the keys above cannot see: a default that depends on the machine (the
        // operators of an absent [access] are the pressctl group's members).
        if new.access != old.access { return refuse("access", "who may use the socket changed (the pressctl group?): that needs a restart") }
        for (i, c) in new.channels.enumerated() {
            let s = LoopChannel.Settings(c)
            if s != LoopChannel.Settings(old.channels[i]) { plan.reconfigure.append((i, s)) }
        }
        return .success(plan)
    }
}

/// Puts a newly read configuration in force: the control loop first (each changed
/// channel's `reconfigure`, applied before this returns), then ``LiveConfig`` for everyone
/// who reads it at use. Runs on the reload queue only.
struct ConfigReload {
    let live: LiveConfig
    /// Hands a command to the control loop and waits until it has been applied; false when
    /// the loop refused it or did not take it in time.
    let submit: (LoopCommand) -> Bool

    func apply(_ read: DaemonConfig) -> Result<ReloadPlan, ConfigError> {
        let old = live.current
        let plan: ReloadPlan
        switch ReloadPlan.make(from: old, to: read) {
        case .failure(let e): return .failure(e)
        case .success(let p): plan = p
        }
        // What the command line may set over the file at start (--time-scale,
        // --state-dir) takes effect only at a restart: the file's keys for it did not
        // change (ReloadPlan refuses that), so the values in force stand.
        var new = read
        new.timeScale = old.timeScale
        new.stateDir = old.stateDir
        for (i, s) in plan.reconfigure where !submit(.reconfigure(channel: i, s)) {
            let done = plan.reconfigure.prefix { $0.channel != i }.map(\.settings.name)
            return .failure(ConfigError(file: new.file, line: nil, key: "channels.\(s.name)",
                                        message: "the control loop did not take the new settings (is pressd stopping?)"
                                            + (done.isEmpty ? "" : "; channels \(done.joined(separator: ", ")) took theirs") + "; the socket keeps the running configuration"))
        }
        live.replace(new)
        return .success(plan)
    }
}
