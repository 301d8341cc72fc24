// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pressd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pressd", targets: ["pressd"]),
        .executable(name: "pressctl", targets: ["pressctl"]),
        .library(name: "PressCore", targets: ["PressCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // Small numerics shared by the CSP knee fit and the impedance fits: one bounded
        // Levenberg–Marquardt and the dense linear algebra it needs (pure, stdlib only).
        .target(name: "PressNumerics"),
        // Pure control core: units, PID, safety, channel state machine. No I/O, no C imports.
        .target(name: "PressCore", dependencies: ["PressNumerics"]),
        // Physically faithful simulated rig; deterministic with a seed.
        .target(name: "PressSim", dependencies: ["PressCore", .product(name: "DequeModule", package: "swift-collections")]),
        // Wire protocol shared by pressd and pressctl (JSON lines over a Unix socket).
        .target(name: "PressProtocol"),

        // Client-side rendering: terminal plot, SVG report, window statistics (pure).
        .target(name: "PressPlot", dependencies: ["PressProtocol", "PressNumerics"]),

        // System libraries, found with pkg-config.
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus",
                       providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod",
                       providers: [.apt(["libgpiod-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        // MQTT client (Eclipse Mosquitto's libmosquitto) for the opt-in [mqtt] publisher.
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto",
                       providers: [.apt(["libmosquitto-dev"])]),

        // Durable run log and persisted channel state (SQLite, WAL).
        .target(name: "PressLog", dependencies: [
            "PressCore", "PressProtocol",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),

        // Thin Swift wrappers over the device libraries.
        .target(name: "PressDrivers", dependencies: ["PressCore", "CModbus", "CGPIOD"]),

        // Impedance spectra: analysers' file formats, equivalent-circuit fitting and the
        // Kramers–Kronig check (pure).
        .target(name: "PressEIS", dependencies: ["PressNumerics"]),

        // Daemon runtime: config, control-loop thread, control socket, systemd glue.
        .target(name: "PressDaemon", dependencies: [
            "PressCore", "PressSim", "PressProtocol", "PressDrivers", "PressLog", "PressEIS", "CSystemd", "CMosquitto",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),

        .executableTarget(name: "pressd", dependencies: [
            "PressDaemon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Benchmarks: loop timing and socket latency under load (docs/performance.md).
        .executableTarget(name: "pressbench", dependencies: [
            "PressDaemon", "PressProtocol", "PressCore", "PressSim", "PressLog",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .executableTarget(name: "pressctl", dependencies: [
            "PressProtocol", "PressPlot", "PressLog",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "PressNumericsTests", dependencies: ["PressNumerics"]),
        .testTarget(name: "PressCoreTests", dependencies: ["PressCore"]),
        .testTarget(name: "PressProtocolTests", dependencies: ["PressProtocol"]),
        .testTarget(name: "PressPlotTests", dependencies: ["PressPlot"]),
        .testTarget(name: "PressSimTests", dependencies: ["PressCore", "PressSim"]),
        .testTarget(name: "PressEISTests", dependencies: ["PressEIS"], exclude: ["Fixtures"]),
        .testTarget(name: "PressDaemonTests", dependencies: [
            "PressDaemon", "PressProtocol", "PressCore", "PressSim", "PressDrivers", "PressLog", "PressEIS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
    ]
)
