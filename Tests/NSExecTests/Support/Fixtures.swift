import CNSExec
import Foundation
import Glibc
import Testing

/// Facts about the machine that decide whether a test can run.
enum Machine {
    static let isRoot = geteuid() == 0
    static let hasRunc = FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc")
        || FileManager.default.isExecutableFile(atPath: "/usr/bin/runc")
    static let hasCrun = FileManager.default.isExecutableFile(atPath: "/usr/bin/crun")
    static let hasBusybox = FileManager.default.isExecutableFile(atPath: "/bin/busybox")
    static let hasNsenter = FileManager.default.isExecutableFile(atPath: "/usr/bin/nsenter")

    /// The package's root directory, for scripts/lib/container.sh.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The nsexec binary that `swift build` put next to the test bundle, or the one that
    /// NSEXEC_TEST_BINARY names: scripts/test runs the suite again on the release build.
    static let nsexecBinary: String = {
        if let path = ProcessInfo.processInfo.environment["NSEXEC_TEST_BINARY"], !path.isEmpty {
            return path
        }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test bundle may sit inside a .xctest directory on some layouts.
        if url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
        return url.appendingPathComponent("nsexec").path
    }()
}

/// What a finished command printed and how it ended.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String

    /// The first line of stdout, trimmed.
    var firstLine: String { stdout.split(separator: "\n").first.map(String.init) ?? "" }
}

/// Runs argv to completion with stdout and stderr captured through temporary files,
/// so that neither can fill up and block. `environment` is added to the test's own.
@discardableResult
func runCommand(_ argv: [String], environment: [String: String] = [:], stdin: String? = nil,
                timeout: TimeInterval = 60) throws -> CommandResult {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outPath = directory.appendingPathComponent("out").path
    let errPath = directory.appendingPathComponent("err").path
    let out = open(outPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
    let err = open(errPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
    defer {
        close(out)
        close(err)
    }

    var input: [Int32] = [-1, -1]
    if stdin != nil { _ = nsexec_pipe_cloexec(&input) }
    let child = try Subprocess(argv, environment: environment, stdin: stdin != nil ? input[0] : nil,
                               stdout: out, stderr: err)
    if let stdin {
        close(input[0])
        let bytes = Array(stdin.utf8)
        _ = bytes.withUnsafeBytes { write(input[1], $0.baseAddress, $0.count) }
        close(input[1])
    }

    guard let status = child.wait(timeout: timeout) else {
        Issue.record("\(argv.joined(separator: " ")) did not finish within \(timeout) s")
        return CommandResult(status: -1, stdout: "", stderr: "")
    }
    return CommandResult(status: status,
                         stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// Runs the nsexec CLI with a marker in its environment, then checks that no process
/// carrying the marker (a stage) is left.
@discardableResult
func runNsexec(_ arguments: [String], stdin: String? = nil, timeout: TimeInterval = 60,
               sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
    let marker = "NSEXEC_TEST_MARKER=\(UUID().uuidString)"
    let parts = marker.split(separator: "=", maxSplits: 1).map(String.init)
    let result = try runCommand([Machine.nsexecBinary] + arguments, environment: [parts[0]: parts[1]],
                                stdin: stdin, timeout: timeout)
    let leftovers = processes(withEnvironmentEntry: marker)
    #expect(leftovers.isEmpty, "stage processes left behind: \(leftovers)", sourceLocation: sourceLocation)
    return result
}

/// Pids of processes whose environment contains entry. Stages inherit the CLI's environment.
func processes(withEnvironmentEntry entry: String) -> [Int32] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    let needle = Data(entry.utf8)
    return names.compactMap { Int32($0) }.filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return data.split(separator: 0).contains { Data($0) == needle }
    }
}

/// Reads the namespace link of a process, such as "net:[4026531840]".
func namespaceLink(pid: Int32, _ name: String) -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(name)")) ?? "missing"
}

/// Reads the namespace link of the test process itself.
func ownNamespaceLink(_ name: String) -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(name)")) ?? "missing"
}
