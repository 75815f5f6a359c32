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
        .testTarget(name: "NSExecTests", dependencies: ["NSExec", "CNSExec", "nsexec"]),
    ]
)
