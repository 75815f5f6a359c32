// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "nsexec",
    products: [
        .library(name: "NSExec", targets: ["NSExec"]),
        .executable(name: "nsexec", targets: ["nsexec"]),
    ],
    targets: [
        .target(
            name: "CNSExec",
            cSettings: [.unsafeFlags(["-std=c11", "-Wall", "-Wextra", "-Werror"])]
        ),
        .target(
            name: "CNSExecInit",
            dependencies: ["CNSExec"],
            cSettings: [.unsafeFlags(["-std=c11", "-Wall", "-Wextra", "-Werror"])]
        ),
        .target(name: "NSExec", dependencies: ["CNSExec"]),
        .executableTarget(name: "nsexec", dependencies: ["NSExec", "CNSExec", "CNSExecInit"]),
        // The library benchmark that scripts/bench runs.
        .executableTarget(name: "nsexec-bench", dependencies: ["NSExec"], path: "bench/nsexec-bench"),
        // The library load test that scripts/stress runs.
        .executableTarget(name: "nsexec-stress", dependencies: ["NSExec", "CNSExec"], path: "stress/nsexec-stress"),
        .testTarget(name: "NSExecTests", dependencies: ["NSExec", "CNSExec", "nsexec"]),
    ]
)
