import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

/// Kills an UnshareTarget and waits until its process has exited, so that the next step of
/// the test finds the target dead. Returns the pid it had.
private func killAndWait(_ target: UnshareTarget) -> Int32 {
    let pid = target.pid
    target.stop()
    let deadline = Date().addingTimeInterval(5)
    while let state = processState(pid), state != "Z", Date() < deadline {
        usleep(1000)
    }
    return pid
}

/// Continues a stopped stage, unless it is already gone: a pid is signalled only while it
/// still carries the test's marker, so that a reused pid is never touched.
private func continueStage(_ pid: Int32, marker: String) {
    if processes(withEnvironmentEntry: marker).contains(pid) { kill(pid, SIGCONT) }
}

/// The points where nsexec_test_hook stops a stage, in the order a run passes them.
private let hookPoints = ["stage1-start", "stage1-joined", "stage2-start", "stage2-exec"]

/// Faults in the middle of a run: a target, a stage or the parent dies, or the parent
/// closes the init pipe. Each run must end with one clear error (the first error record,
/// on the init pipe) and leave no process behind.
@Suite("Reliability: faults", .serialized, .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct ReliabilityFaultTests {
    // MARK: - The target dies

    // The CLI takes the direct path: one child, born in the target's PID namespace, does
    // the work of stage 1 and stage 2 and passes all four hooks.

    @Test("target killed while the direct child joins, CLI")
    func targetKilledCLI() throws {
        let target = try UnshareTarget()
        let cli = try BackgroundCLI(["-t", "\(target.pid)", "-a", "--", "true"],
                                    environment: ["NSEXEC_TEST_STOP_AT": "stage1-start"])
        let child = try #require(waitForStoppedProcess(marker: cli.marker), "the child did not stop at its hook")

        // The init of the target's PID namespace takes the child with it.
        let pid = killAndWait(target)
        continueStage(child, marker: cli.marker)

        #expect(cli.wait() == 125)
        #expect(cli.stderr == "nsexec: cannot enter pid \(pid): the target process exited while nsexec joined it; start it again or pick a running one\n",
                "stderr: \(cli.stderr)")
        #expect(cli.stdout.isEmpty)
        #expect(waitUntilNoProcess(marker: cli.marker).isEmpty)
    }

    @Test("target killed while stage 1 joins, init pipe")
    func targetKilledInitPipe() throws {
        let target = try UnshareTarget()
        let run = try InitPipeRun(environment: ["NSEXEC_TEST_STOP_AT=stage1-start"])
        #expect(run.send(bootstrapMessage(joining: target.pid)))
        let stage1 = try #require(waitForStoppedProcess(marker: run.marker), "stage 1 did not stop at its hook")

        let pid = killAndWait(target)
        continueStage(stage1, marker: run.marker)

        let records = errorRecords(run.readToEnd())
        #expect(describe(waitStatus: waitForChild(run.pid)) == "exited with status 125")
        #expect(describe(waitStatus: waitForChild(stage1)) == "exited with status 125")
        let first = try #require(records.first, "no error record")
        #expect(first.error == "cannot open ipc namespace file /proc/\(pid)/ns/ipc: No such file or directory; check that the process or namespace file exists")
        #expect(first.status == 125)
        #expect(waitUntilNoProcess(marker: run.marker).isEmpty)
    }

    // MARK: - A stage dies

    @Test("stage killed at each hook, CLI", arguments: hookPoints)
    func stageKilledCLI(point: String) throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        let cli = try BackgroundCLI(["-t", "\(target.pid)", "-a", "--", "true"], environment: ["NSEXEC_TEST_STOP_AT": point])
        let stage = try #require(waitForStoppedProcess(marker: cli.marker), "no stage stopped at \(point)")

        kill(stage, SIGKILL)

        let status = cli.wait()
        switch point {
        case "stage1-start", "stage1-joined", "stage2-start":
            // Killed before it reported being in every namespace: a failed entry.
            #expect(status == 125)
            #expect(cli.stderr == "nsexec: cannot enter pid \(target.pid): stage 2 exited before it started\n")
        default:
            // Past its last sync, stage 2 is the program to the supervisor: a SIGKILL just
            // before execve and one just after look the same, 128 + 9 and no message.
            #expect(status == 137)
            #expect(cli.stderr.isEmpty, "stderr: \(cli.stderr)")
        }
        #expect(waitUntilNoProcess(marker: cli.marker).isEmpty)
    }

    @Test("CLI starts one child per run")
    func directChildPassesEveryHook() throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        for point in hookPoints {
            let cli = try BackgroundCLI(["-t", "\(target.pid)", "-a", "--", "true"], environment: ["NSEXEC_TEST_STOP_AT": point])
            let child = try #require(waitForStoppedProcess(marker: cli.marker), "nothing stopped at \(point)")

            // nsexec and its child carry the marker. No third process does.
            #expect(Set(processes(withEnvironmentEntry: cli.marker)) == [cli.process.pid, child], "at \(point)")
            #expect(parentPID(of: child) == cli.process.pid, "at \(point)")

            kill(child, SIGCONT)
            #expect(cli.wait() == 0, "at \(point): \(cli.stderr)")
            #expect(cli.stderr.isEmpty)
        }
    }

    @Test("stage killed at each hook, init pipe", arguments: hookPoints)
    func stageKilledInitPipe(point: String) throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        let run = try InitPipeRun(environment: ["NSEXEC_TEST_STOP_AT=\(point)"])
        #expect(run.send(bootstrapMessage(joining: target.pid)))

        // stage2-exec comes after the process message, which the parent sends once it has the pids.
        var pids: (stage1: Int32, stage2: Int32)?
        if point == "stage2-exec" {
            pids = stagePIDs(run.readLine())
            try #require(pids != nil, "no pid line")
            #expect(run.send(processMessage(["/bin/true"])))
        }
        let stage = try #require(waitForStoppedProcess(marker: run.marker), "no stage stopped at \(point)")

        kill(stage, SIGKILL)

        let rest = run.readToEnd()
        let helper = describe(waitStatus: waitForChild(run.pid))
        let records = errorRecords(rest)
        let known = Set([stage, pids?.stage1 ?? 0, pids?.stage2 ?? 0] + records.flatMap(\.pids)).filter { $0 > 0 }
        var statuses: [Int32: String] = [:]
        for pid in known { statuses[pid] = describe(waitStatus: waitForChild(pid)) }

        #expect(statuses[stage] == "killed by signal 9")
        switch point {
        case "stage1-start", "stage1-joined":
            #expect(helper == "exited with status 125")
            #expect(records.first?.error == "stage 1 exited before it finished", "records: \(records)")
        case "stage2-start":
            #expect(helper == "exited with status 125")
            #expect(records.first?.error == "stage 2 exited before it started", "records: \(records)")
        default:
            #expect(helper == "exited with status 0")
            #expect(records.isEmpty, "records: \(records)")
        }
        #expect(waitUntilNoProcess(marker: run.marker).isEmpty)
    }

    // MARK: - The parent gives up or dies

    /// How far the parent gets before it closes the init pipe.
    enum CloseAfter: String, CaseIterable, CustomTestStringConvertible {
        case nothing, partialHeader, partialAttributes, bootstrapMessage, pidLine, partialProcessMessage
        var testDescription: String { rawValue }
    }

    @Test("init pipe closed early by the parent", arguments: CloseAfter.allCases)
    func initPipeClosedEarly(after: CloseAfter) throws {
        // Closed right after the bootstrap message, the pipe carries no pid line to the
        // test. So a shell takes the stages in the test's place, and they are reaped
        // through init once the shell is killed.
        let run = try InitPipeRun(viaShell: after == .bootstrapMessage)
        let message = bootstrapMessage(joining: getpid(), [.uts])
        var pids: (stage1: Int32, stage2: Int32)?

        switch after {
        case .nothing:
            break
        case .partialHeader:
            run.send(Array(message[0..<10]))
        case .partialAttributes:
            run.send(Array(message[0..<(message.count - 4)]))
        case .bootstrapMessage:
            run.send(message)
        case .pidLine, .partialProcessMessage:
            run.send(message)
            pids = stagePIDs(run.readLine())
            try #require(pids != nil, "no pid line")
            if after == .partialProcessMessage { run.send(Array(processMessage(["/bin/true"]).prefix(20))) }
        }
        run.closeInitPipe()

        if after == .bootstrapMessage {
            // Whether or not the pid line got in before the close, stage 2 reports the closed
            // pipe. It is the only one, because stage 0 exits without a report when its pid
            // line finds the pipe closed.
            let deadline = Date().addingTimeInterval(10)
            while run.stderrLines.isEmpty || processes(withEnvironmentEntry: run.marker).contains(where: { $0 != run.pid }),
                  Date() < deadline {
                usleep(5000)
            }
            kill(run.pid, SIGKILL)
            waitForChild(run.pid)
            #expect(run.stderrLines == ["nsexec: process message: invalid bootstrap message: the init pipe sent no data"])
            #expect(waitUntilNoProcess(marker: run.marker).isEmpty)
            return
        }

        let helper = describe(waitStatus: waitForChild(run.pid))
        let stage2 = pids.map { describe(waitStatus: waitForChild($0.stage2)) }
        if let pids { waitForChild(pids.stage1) }
        let lines = run.stderrLines

        // A helper that died of SIGPIPE would print nothing at all.
        switch after {
        case .nothing:
            #expect(helper == "exited with status 125")
            #expect(lines == ["nsexec: invalid bootstrap message: the init pipe sent no data"])
        case .partialHeader:
            #expect(helper == "exited with status 125")
            #expect(lines == ["nsexec: invalid bootstrap message: 10 bytes is shorter than the 16-byte header"])
        case .partialAttributes:
            #expect(helper == "exited with status 125")
            #expect(lines.count == 1, "stderr: \(lines)")
            #expect(lines.first?.hasPrefix("nsexec: invalid bootstrap message: ") == true, "stderr: \(lines)")
        case .bootstrapMessage:
            break
        case .pidLine:
            #expect(helper == "exited with status 0")
            #expect(stage2 == "exited with status 125")
            #expect(lines == ["nsexec: process message: invalid bootstrap message: the init pipe sent no data"])
        case .partialProcessMessage:
            #expect(helper == "exited with status 0")
            #expect(stage2 == "exited with status 125")
            #expect(lines.count == 1, "stderr: \(lines)")
            #expect(lines.first?.hasPrefix("nsexec: process message: invalid bootstrap message: ") == true, "stderr: \(lines)")
        }
        #expect(waitUntilNoProcess(marker: run.marker).isEmpty)
    }

    @Test("parent killed at each hook, CLI", arguments: hookPoints)
    func parentKilledCLI(point: String) throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        let cli = try BackgroundCLI(["-t", "\(target.pid)", "-a", "--", "sh", "-c", "echo started"],
                                    environment: ["NSEXEC_TEST_STOP_AT": point])
        let stage = try #require(waitForStoppedProcess(marker: cli.marker), "no stage stopped at \(point)")

        cli.process.kill(SIGKILL)
        #expect(cli.wait() == 137)
        continueStage(stage, marker: cli.marker)

        if point == "stage2-exec" {
            // The death signal is cleared just before this hook, because the program may
            // outlive nsexec. So the program starts and runs to its end, as it would have
            // a moment later.
            let deadline = Date().addingTimeInterval(5)
            while cli.stdout.isEmpty && Date() < deadline { usleep(5000) }
            #expect(cli.stdout == "started\n")
        } else {
            // PR_SET_PDEATHSIG kills the stage even while it is stopped.
            #expect(waitUntilNoProcess(marker: cli.marker).isEmpty)
            #expect(cli.stdout.isEmpty)
        }
        #expect(waitUntilNoProcess(marker: cli.marker).isEmpty)
    }

    @Test("parent killed at each hook, init pipe", arguments: hookPoints)
    func parentKilledInitPipe(point: String) throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        let run = try InitPipeRun(environment: ["NSEXEC_TEST_STOP_AT=\(point)"], viaShell: true)
        #expect(run.send(bootstrapMessage(joining: target.pid)))
        if point == "stage2-exec" {
            try #require(stagePIDs(run.readLine()) != nil, "no pid line")
            #expect(run.send(processMessage(["/bin/true"])))
        }
        let stage = try #require(waitForStoppedProcess(marker: run.marker), "no stage stopped at \(point)")

        // The shell is the parent of every stage. Stage 0 is its child too and lives on.
        kill(run.pid, SIGKILL)
        #expect(describe(waitStatus: waitForChild(run.pid)) == "killed by signal 9")
        continueStage(stage, marker: run.marker)

        let records = errorRecords(run.readToEnd())
        switch point {
        case "stage1-start", "stage1-joined":
            #expect(records.first?.error == "stage 1 exited before it finished", "records: \(records)")
        case "stage2-start":
            // Stage 1 may not have exited yet, and then its death signal comes too.
            let first = records.first?.error ?? ""
            #expect(first == "stage 2 exited before it started" || first == "stage 1 exited before it finished",
                    "records: \(records)")
        default:
            // As with the CLI: the program starts.
            #expect(records.isEmpty, "records: \(records)")
        }
        #expect(waitUntilNoProcess(marker: run.marker).isEmpty)
    }
}

/// Programs that exist in the container but cannot run: exit status 126 or 127 with one
/// error line from the CLI, and the same error from the library's helper path.
@Suite("Reliability: programs that cannot run", .serialized,
       .enabled(if: Machine.isRoot && Machine.hasRunc && Machine.hasBusybox, "needs root, runc and busybox-static"))
struct ReliabilityUnrunnableProgramTests {
    /// Each program as the CLI is given it, the exit status, and the error after "nsexec: ".
    static let cases: [(program: String, status: Int32, error: String)] = [
        ("/home/app/not-executable", 126, "cannot execute /home/app/not-executable: Permission denied; check the program's permissions and format"),
        ("/home/app/directory", 126, "cannot execute /home/app/directory: Permission denied; check the program's permissions and format"),
        ("/home/app/dangling", 127, "cannot execute /home/app/dangling: No such file or directory; check that the program exists inside the container"),
        ("/home/app/loop", 126, "cannot execute /home/app/loop: Too many levels of symbolic links; check the program's permissions and format"),
        ("/home/app/garbage", 126, "cannot execute /home/app/garbage: Exec format error; check the program's permissions and format"),
        ("/home/app/directory/", 126, "cannot execute /home/app/directory/: Permission denied; check the program's permissions and format"),
        ("nsexec-not-executable", 126, "cannot execute nsexec-not-executable: Permission denied; check the program's permissions and format"),
        ("nsexec-directory", 126, "cannot execute nsexec-directory: Permission denied; check the program's permissions and format"),
        ("nsexec-dangling", 127, "cannot execute nsexec-dangling: No such file or directory; check that the program exists inside the container"),
    ]

    /// Creates the programs of `cases` in the container: under /home/app by path, and in
    /// /usr/local/bin, the first directory of the default PATH, by name.
    private func makePrograms(in rootfs: String) throws {
        let files = FileManager.default
        for dir in ["/home/app", "/usr/local/bin"] {
            let base = rootfs + dir
            try files.createDirectory(atPath: base, withIntermediateDirectories: true)
            let prefix = dir == "/home/app" ? "" : "nsexec-"
            try "#!/bin/sh\necho ran\n".write(toFile: "\(base)/\(prefix)not-executable", atomically: false, encoding: .utf8)
            try files.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(base)/\(prefix)not-executable")
            try files.createDirectory(atPath: "\(base)/\(prefix)directory", withIntermediateDirectories: true)
            try files.createSymbolicLink(atPath: "\(base)/\(prefix)dangling", withDestinationPath: "/nsexec-nowhere")
        }
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/home/app/loop", withDestinationPath: "loop")
        try Data([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]).write(to: URL(fileURLWithPath: rootfs + "/home/app/garbage"))
        try files.setAttributes([.posixPermissions: 0o755], ofItemAtPath: rootfs + "/home/app/garbage")
    }

    @Test("exit status 126 or 127 with one error line, CLI and library")
    func unrunnable() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }
        try makePrograms(in: container.rootfs)

        for (program, status, error) in Self.cases {
            let result = try runNsexec(["--container", container.id, "--", program])
            #expect(result.status == status, "\(program): stderr \(result.stderr)")
            #expect(result.stderr == "nsexec: \(error)\n", "\(program)")
            #expect(result.stdout.isEmpty, "\(program)")

            var spec = ExecSpec(target: .container(id: container.id), arguments: [program])
            spec.spawnMode = .helper
            spec.helperPath = Machine.nsexecBinary
            let kind: NSExecError.Kind = status == 126 ? .notExecutable : .notFound
            #expect(throws: NSExecError(kind, error), "\(program)") { try NSExec.run(spec) }
        }
    }
}
