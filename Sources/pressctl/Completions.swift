import ArgumentParser
import Foundation
import PressProtocol

/// Shell completions that know the rig: channel names from the running daemon, units
/// after a number, program files, event kinds (see docs/pressctl.md#completions).
enum Completions {
    /// Channel names, asked of the daemon (the `--socket` on the command line, else the
    /// default one). Nothing when it cannot be reached within a second: completion must
    /// never hang a shell.
    static let channels: CompletionKind = .custom { words, _, prefix in
        var path: String?
        if let i = words.firstIndex(of: "--socket"), i + 1 < words.count { path = words[i + 1] }
        if path == nil, let w = words.first(where: { $0.hasPrefix("--socket=") }) { path = String(w.dropFirst("--socket=".count)) }
        return channelNames(socket: path ?? SocketPath.resolveClient()).filter { $0.hasPrefix(prefix) }
    }

    static func channelNames(socket: String) -> [String] {
        guard let c = try? ControlClient(path: socket, timeout: 1) else { return [] }
        return c.hello?.channels ?? []
    }

    /// After a number, the number with each unit pressctl takes (`5` → `5MPa`, `5kPa`, …).
    static let quantity: CompletionKind = .custom { _, _, prefix in quantities(prefix) }

    static func quantities(_ prefix: String) -> [String] {
        let number = prefix.prefix { $0.isNumber || $0 == "." || $0 == "-" }
        guard !number.isEmpty, Double(number) != nil else { return [] }
        let units = SetpointUnit.allCases.map(\.rawValue)
        return units.map { String(number) + $0 }.filter { $0.hasPrefix(prefix) }
    }

    /// The kinds `log events --kind` accepts.
    static let eventKinds: CompletionKind = .list(EventKinds.all)

    /// The tuning rules `tune --rule` accepts.
    static let tuneRules: CompletionKind = .list(["amigo", "simc", "ziegler-nichols", "tyreus-luyben"])
}
