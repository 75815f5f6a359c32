import Foundation
import Glibc
import Testing

/// A sleep process that unshare(1) starts in a new namespace of every type, with
/// the caller mapped to root in the new user namespace. Unlike UnshareTarget it
/// mounts no new /proc, so that /proc/self still resolves for a program that
/// joined only the mount namespace. Killed on `stop()` or deinit.
final class AllNamespacesTarget: @unchecked Sendable {
    private let launcher: Process
    private(set) var pid: Int32 = 0

    init() throws {
        launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        launcher.arguments = ["--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "--time",
                              "--user", "--map-root-user", "sleep", "600"]
        launcher.standardInput = FileHandle.nullDevice
        try launcher.run()

        // unshare forks, and the child execs sleep once every namespace exists.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            for child in UnshareTarget.children(of: launcher.processIdentifier) {
                let comm = (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8)) ?? ""
                if comm.hasPrefix("sleep") {
                    pid = child
                    return
                }
            }
            usleep(5000)
        }
        stop()
        throw TargetError("unshare did not start sleep within 10 s")
    }

    /// Kills the target and reaps the unshare process.
    func stop() {
        if pid > 0 { kill(pid, SIGKILL) }
        if launcher.isRunning { kill(launcher.processIdentifier, SIGKILL) }
        launcher.waitUntilExit()
        pid = 0
    }

    deinit { stop() }
}

/// Differential checks against util-linux nsenter: a program started by the nsexec CLI
/// and one started by nsenter, on the same target with the same option, see the same
/// namespaces.
@Suite struct NsenterDifferentialConformance {
    static let canRun = FileManager.default.isExecutableFile(atPath: Machine.nsexecBinary) && Machine.hasNsenter
    static let reason: Comment = "needs the nsexec binary next to the tests and /usr/bin/nsenter (util-linux)"

    static let namespaceNames = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]

    /// Runs program through nsexec and through nsenter with the same options on target;
    /// both must succeed with the same output, which is returned.
    static func sameOutput(target: AllNamespacesTarget, options: [String], program: [String]) throws -> String {
        let byNsexec = try runNsexec(["-t", "\(target.pid)"] + options + ["--"] + program)
        let byNsenter = try runCommand(["/usr/bin/nsenter", "-t", "\(target.pid)"] + options + ["--"] + program)

        try #require(byNsexec.status == 0, "nsexec: \(byNsexec.stderr)")
        try #require(byNsenter.status == 0, "nsenter: \(byNsenter.stderr)")
        #expect(byNsexec.stdout == byNsenter.stdout)
        return byNsexec.stdout
    }

    /// Checks one namespace type: both tools give the target's namespace, not the test's own.
    static func expectSameNamespace(option: String, name: String) throws {
        let target = try AllNamespacesTarget()
        defer { target.stop() }

        let output = try sameOutput(target: target, options: [option], program: ["readlink", "/proc/self/ns/\(name)"])

        let targetLink = namespaceLink(pid: target.pid, name)
        #expect(output == targetLink + "\n")
        #expect(targetLink != ownNamespaceLink(name), "the target did not get its own \(name) namespace")
    }

    @Test("nsenter.cgroup_namespace_matches", .enabled(if: canRun, reason))
    func cgroupNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--cgroup", name: "cgroup")
    }

    @Test("nsenter.ipc_namespace_matches", .enabled(if: canRun, reason))
    func ipcNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--ipc", name: "ipc")
    }

    @Test("nsenter.mnt_namespace_matches", .enabled(if: canRun, reason))
    func mntNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--mount", name: "mnt")
    }

    @Test("nsenter.net_namespace_matches", .enabled(if: canRun, reason))
    func netNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--net", name: "net")
    }

    @Test("nsenter.pid_namespace_matches", .enabled(if: canRun, reason))
    func pidNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--pid", name: "pid")
    }

    @Test("nsenter.time_namespace_matches", .enabled(if: canRun, reason))
    func timeNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--time", name: "time")
    }

    @Test("nsenter.user_namespace_matches", .enabled(if: canRun, reason))
    func userNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--user", name: "user")
    }

    @Test("nsenter.uts_namespace_matches", .enabled(if: canRun, reason))
    func utsNamespaceMatches() throws {
        try Self.expectSameNamespace(option: "--uts", name: "uts")
    }

    @Test("nsenter.all_namespaces_match", .enabled(if: canRun, reason))
    func allNamespacesMatch() throws {
        let target = try AllNamespacesTarget()
        defer { target.stop() }

        let loop = "for name in \(Self.namespaceNames.joined(separator: " ")); do readlink /proc/self/ns/$name; done"
        let output = try Self.sameOutput(target: target, options: ["--all"], program: ["sh", "-c", loop])

        let expected = Self.namespaceNames.map { namespaceLink(pid: target.pid, $0) + "\n" }.joined()
        #expect(output == expected)
    }
}
