import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

private let hostileTrait = Testing.ConditionTrait.enabled(
    if: Machine.isRoot && Machine.hasRunc && Machine.hasBusybox, "needs root, runc and busybox-static")

/// The program of the working directory checks: where it runs, by device and inode, and by
/// name, and what that directory contains.
private let whereAmI = ["sh", "-c", "stat -c '%d %i' .; pwd; ls -a"]

/// Runs the CLI through a shell that first changes to the host directory and opens it as
/// fds 7 and 9, and its `sub` directory as fd 8. So the stages hold host directories at
/// known numbers, as in the runc escape through a leaked fd. Checks that no stage is left.
private func runHoldingHostFDs(_ host: HostDirectory, _ arguments: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
    let marker = makeMarker()
    let parts = marker.split(separator: "=", maxSplits: 1).map(String.init)
    let script = "cd \"$0\" && exec 7<\"$0\" 8<\"$0/sub\" 9<\"$0\" && exec \"$@\""
    let result = try runCommand(["/bin/sh", "-c", script, host.path, Machine.nsexecBinary] + arguments,
                                environment: [parts[0]: parts[1]])
    #expect(processes(withEnvironmentEntry: marker).isEmpty, "stage processes left behind", sourceLocation: sourceLocation)
    return result
}

/// Checks the outcome of `whereAmI` under a working directory or root that a container
/// chose: either nsexec refused with one error line, or the program ran in the directory of
/// the container that its printed path names (same device and inode, seen from the host
/// through the root filesystem). In no case does it see the host directory's marker.
private func expectNotOnHost(_ result: CommandResult, rootfs: String, _ what: String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!result.stdout.contains(HostDirectory.marker), "\(what): the program ran in a host directory: \(result.stdout)",
            sourceLocation: sourceLocation)

    guard result.status == 0 else {
        #expect(result.status == 125, "\(what): status \(result.status), stderr \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(what): stderr \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(what): stdout \(result.stdout)", sourceLocation: sourceLocation)
        return
    }

    let lines = result.stdout.split(separator: "\n").map(String.init)
    guard lines.count >= 2 else {
        Issue.record("\(what): unexpected output \(result.stdout)", sourceLocation: sourceLocation)
        return
    }
    var info = stat()
    let path = rootfs + lines[1]
    #expect(stat(path, &info) == 0, "\(what): \(lines[1]) is not a directory of the container", sourceLocation: sourceLocation)
    #expect(lines[0] == "\(info.st_dev) \(info.st_ino)",
            "\(what): the program's directory \(lines[0]) is not \(path) (\(info.st_dev) \(info.st_ino))",
            sourceLocation: sourceLocation)
}

/// A container whose own processes attack nsexec: they reach for its stages through
/// /proc and ptrace, plant symbolic links out of the root, and replace /bin/sh.
@Suite("Reliability: hostile containers", .serialized, hostileTrait)
struct ReliabilityHostileTests {
    @Test("attacker in the container never reaches a stage", .enabled(if: canBuildStaticC, "needs gcc and libc6-dev"))
    func attackerNeverReachesStage() throws {
        let container = try HostileContainer { rootfs in
            let source = Machine.packageRoot + "/scripts/hostile/attacker.c"
            let built = try runCommand(["/usr/bin/gcc", "-static", "-O2", "-o", rootfs + "/attacker", source])
            guard built.status == 0 else { throw TargetError("cannot build the attacker: \(built.stderr)") }
        }
        defer { container.stop() }

        var output: [Int32] = [-1, -1]
        try #require(nsexec_pipe_cloexec(&output) == 0)
        let attacker = try Subprocess(["/usr/sbin/runc", "exec", container.id, "/attacker", "/tmp/attack.stop"], stdout: output[1])
        close(output[1])
        let reader = FileHandle(fileDescriptor: output[0], closeOnDealloc: true)
        defer {
            attacker.kill(SIGKILL)
            attacker.wait()
        }
        usleep(200_000)

        // Stages that stop at a hook give the attacker time; the others give it many chances.
        var stopped = 0
        for point in ["stage2-start", "stage2-exec"] {
            for user in ["root", "app"] {
                let cli = try BackgroundCLI(["--container", container.id, "-S", user, "--", "true"],
                                            environment: ["NSEXEC_TEST_STOP_AT": point])
                if let stage = waitForStoppedProcess(marker: cli.marker) {
                    stopped += 1
                    usleep(150_000)
                    kill(stage, SIGCONT)
                }
                #expect(cli.wait() == 0, "\(point) as \(user): \(cli.stderr)")
            }
        }
        #expect(stopped == 4, "stages stopped at the hooks")

        for index in 0..<40 {
            let result = try runNsexec(["--container", container.id, "--", "true"])
            #expect(result.status == 0, "exec \(index): \(result.stderr)")
        }
        for index in 0..<10 {
            var spec = ExecSpec(target: .container(id: container.id), arguments: ["true"])
            spec.spawnMode = .helper
            spec.helperPath = Machine.nsexecBinary
            #expect(try NSExec.run(spec) == .exited(0), "library exec \(index)")
        }

        #expect(FileManager.default.createFile(atPath: container.rootfs + "/tmp/attack.stop", contents: nil),
                "cannot create the stop file for the attacker")
        #expect(attacker.wait(timeout: 10) == 0, "the attacker did not finish")
        let report = String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        let lines = report.split(separator: "\n").map(String.init)

        #expect(lines.filter { $0.hasPrefix("success ") }.isEmpty, "the attacker reached a stage:\n\(report)")
        let summary = try #require(lines.last, "no summary from the attacker")
        let fields = Dictionary(uniqueKeysWithValues: summary.split(separator: " ").compactMap { field -> (String, Int)? in
            let parts = field.split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { return nil }
            return (String(parts[0]), value)
        })
        #expect(fields["successes"] == 0, "summary: \(summary)")
        #expect((fields["stages"] ?? 0) >= stopped, "the attacker saw too few stages to mean anything: \(summary)")
        #expect((fields["attempts"] ?? 0) > 0, "summary: \(summary)")
    }

    @Test("working directory never in a host directory")
    func workingDirectoryNeverOnHost() throws {
        let host = try HostDirectory()
        let container = try HostileContainer()
        defer { container.stop() }

        // The container plants links out of its root: to the host path, far up, and to a leaked fd.
        let planted = try container.exec(["/bin/sh", "-c",
            "ln -s \(host.path) /tmp/abs && ln -s ../../../../../../../.. /tmp/up && ln -s /proc/self/fd/7 /tmp/fdlink && ln -s \(host.path)/sub /tmp/abssub"])
        try #require(planted.status == 0, "runc exec: \(planted.stderr)")

        var directories = (0..<64).map { "/proc/self/fd/\($0)" }
        directories += ["/proc/thread-self/fd/7", "/proc/self/cwd", "/proc/self/root", "/proc/1/cwd", "/proc/self/fd/7/sub",
                        "/tmp/abs", "/tmp/abssub", "/tmp/up", "/tmp/up/tmp", "/tmp/fdlink", "/tmp/fdlink/sub",
                        "..", "../../../..", "/../../..", "/tmp/../../..", host.path, host.path + "/sub"]
        for dir in directories {
            let wd = try runHoldingHostFDs(host, ["--container", container.id, "--wd=\(dir)", "--"] + whereAmI)
            expectNotOnHost(wd, rootfs: container.rootfs, "--wd=\(dir)")
            let wdns = try runHoldingHostFDs(host, ["--container", container.id, "-W", dir, "--"] + whereAmI)
            expectNotOnHost(wdns, rootfs: container.rootfs, "-W \(dir)")
        }

        // Every fd that a stage can hold is refused as a magic link, before or after the chroot.
        let leaked = try runHoldingHostFDs(host, ["--container", container.id, "--wd=/proc/self/fd/7", "--"] + whereAmI)
        #expect(leaked.stderr.hasPrefix("nsexec: cannot use working directory /proc/self/fd/7: "), "stderr: \(leaked.stderr)")
    }

    @Test("root directory never a host directory")
    func rootNeverOnHost() throws {
        let host = try HostDirectory()
        let container = try HostileContainer()
        defer { container.stop() }
        let planted = try container.exec(["/bin/sh", "-c", "ln -s \(host.path) /jail && ln -s ../../../../../../.. /tmp/up"])
        try #require(planted.status == 0, "runc exec: \(planted.stderr)")

        // The root is resolved by the supervisor on the host, from the target's /proc/PID/root.
        for dir in [host.path, "jail", "/jail", "tmp/up", "/tmp/up", "../../..", "/proc/self/fd/7", "/proc/1/root"] {
            let result = try runHoldingHostFDs(host, ["--container", container.id, "--root=\(dir)", "--"] + whereAmI)
            #expect(!result.stdout.contains(HostDirectory.marker), "--root=\(dir): the program ran in a host root: \(result.stdout)")
            if result.status != 0 {
                #expect(result.status == 125, "--root=\(dir): status \(result.status), stderr \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "--root=\(dir): stderr \(result.stderr)")
            }
        }
    }

    @Test("program linked to a host path resolves inside the container")
    func shellLinkedToHost() throws {
        let host = try HostDirectory()
        let container = try HostileContainer()
        defer { container.stop() }

        // The container swaps its own /bin/sh for a link to a path that exists only on the host.
        let swapped = try container.exec(["/bin/busybox", "ln", "-sf", host.path + "/bin/sh", "/bin/sh"])
        try #require(swapped.status == 0, "runc exec: \(swapped.stderr)")

        let notFound = "cannot execute /bin/sh: No such file or directory; check that the program exists inside the container"
        let cases: [(arguments: [String], error: String)] = [
            (["--", "/bin/sh", "-c", "ls -a /"], notFound),
            (["--", "sh", "-c", "ls -a /"], "cannot execute sh: No such file or directory; check that the program exists inside the container"),
            (["-S", "app", "--", "/bin/sh", "-c", "ls -a /"], notFound),
            (["-W", "/bin", "--", "./sh", "-c", "ls -a /"], "cannot execute ./sh: No such file or directory; check that the program exists inside the container"),
        ]
        for (arguments, error) in cases {
            let result = try runNsexec(["--container", container.id] + arguments)
            #expect(result.status == 127, "\(arguments): stderr \(result.stderr)")
            #expect(result.stderr == "nsexec: \(error)\n", "\(arguments)")
            #expect(!result.stdout.contains(HostDirectory.marker), "\(arguments): ran the host's program")
        }

        // Without PROGRAM, nsexec runs $SHELL, here the swapped /bin/sh.
        let shell = try runCommand([Machine.nsexecBinary, "--container", container.id], environment: ["SHELL": "/bin/sh"], stdin: "ls -a /\n")
        #expect(shell.status == 127, "stderr: \(shell.stderr)")
        #expect(shell.stderr == "nsexec: \(notFound)\n")
    }

    @Test("program linked out of a chrooted target's root")
    func shellLinkedOutOfTargetRoot() throws {
        // The init chroots into /inner; /outer-only lies in the container but outside the target's root.
        let container = try HostileContainer(initArguments: ["/bin/chroot", "/inner", "/bin/sleep", "1000000"]) { rootfs in
            let files = FileManager.default
            try files.createDirectory(atPath: rootfs + "/inner/bin", withIntermediateDirectories: true)
            try files.createDirectory(atPath: rootfs + "/inner/tmp", withIntermediateDirectories: true)
            try files.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/inner/bin/busybox")
            for applet in ["sh", "sleep", "ls"] {
                try files.createSymbolicLink(atPath: "\(rootfs)/inner/bin/\(applet)", withDestinationPath: "busybox")
            }
            try files.createDirectory(atPath: rootfs + "/outer-only", withIntermediateDirectories: true)
            try "#!/bin/busybox sh\necho \(HostDirectory.marker)\n".write(toFile: rootfs + "/outer-only/sh", atomically: false, encoding: .utf8)
            try files.setAttributes([.posixPermissions: 0o755], ofItemAtPath: rootfs + "/outer-only/sh")
        }
        defer { container.stop() }
        let swapped = try container.exec(["/bin/busybox", "ln", "-sf", "/outer-only/sh", "/inner/bin/sh"])
        try #require(swapped.status == 0, "runc exec: \(swapped.stderr)")

        let inner = try runNsexec(["--container", container.id, "--", "/bin/ls", "/"])
        #expect(inner.status == 0, "stderr: \(inner.stderr)")
        #expect(inner.stdout == "bin\ntmp\n", "the program sees the target's root")

        for program in [["/bin/sh", "-c", "true"], ["sh", "-c", "true"]] {
            let result = try runNsexec(["--container", container.id, "--"] + program)
            #expect(result.status == 127, "\(program): stderr \(result.stderr)")
            #expect(!result.stdout.contains(HostDirectory.marker), "\(program) ran from outside the target's root")
        }
    }
}
