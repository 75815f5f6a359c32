import CNSExec
import Foundation
import Glibc
import Testing

private let containerTrait = Testing.ConditionTrait.enabled(
    if: Machine.isRoot && Machine.hasRunc && Machine.hasBusybox, "needs root, runc and busybox-static")

@Suite("Signals", .serialized, containerTrait)
struct SignalTests {
    @Test("forwarded signals reach the program", arguments: [
        ("INT", SIGINT), ("TERM", SIGTERM), ("HUP", SIGHUP), ("QUIT", SIGQUIT),
        ("USR1", SIGUSR1), ("USR2", SIGUSR2), ("WINCH", SIGWINCH),
    ])
    func forwarded(name: String, number: Int32) throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }

        var output: [Int32] = [-1, -1]
        try #require(nsexec_pipe_cloexec(&output) == 0)
        // The shell waits in a child sleep so that the trap runs as soon as the signal arrives.
        let cli = try Subprocess([Machine.nsexecBinary, "--container", container.id, "--", "sh", "-c",
                                  "trap 'echo got \(name); exit 42' \(name); echo ready; while true; do sleep 1 & wait; done"],
                                 stdout: output[1])
        close(output[1])
        let reader = FileHandle(fileDescriptor: output[0], closeOnDealloc: true)
        defer {
            cli.kill(SIGKILL)
            cli.wait()
        }

        let ready = reader.availableLine()
        #expect(ready == "ready")
        cli.kill(number)
        #expect(cli.wait() == 42, "the CLI exits with the program's status")
        let rest = String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest == "got \(name)\n")
    }
}

@Suite("Hardening", .serialized, containerTrait)
struct HardeningTests {
    /// NOTE: switching to app also makes the stage non-dumpable, and the prober lacks
    /// capabilities anyway, so this passes without PR_SET_DUMPABLE too. The attacker
    /// test in Reliability, in a container with its own user namespace, is the one
    /// that fails when the protection is removed.
    @Test("stage 2 is non-dumpable inside the container")
    func stageNotDumpable() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }

        let cli = try Subprocess([Machine.nsexecBinary, "--container", container.id, "-S", "app", "--", "sleep", "30"],
                                 environment: ["NSEXEC_TEST_STOP_AT": "stage2-exec"])
        defer {
            cli.kill(SIGKILL)
            cli.wait()
        }

        // Stage 2 stops itself just before exec, already running as app inside the container.
        var stage2: Int32 = 0
        let deadline = Date().addingTimeInterval(10)
        while stage2 == 0 && Date() < deadline {
            stage2 = UnshareTarget.children(of: cli.pid).first { pid in
                (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") T ") == true
            } ?? 0
            usleep(2000)
        }
        try #require(stage2 > 0, "stage 2 did not stop at the hook")
        defer { kill(stage2, SIGCONT) }

        // Its pid inside the container: the last field of NSpid.
        let status = try String(contentsOfFile: "/proc/\(stage2)/status", encoding: .utf8)
        let nspid = status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(separator: "\t").last.map(String.init) ?? ""
        try #require(!nspid.isEmpty)

        // A process of the same uid inside the container may not look into the stage.
        let probe = try runNsexec(["--container", container.id, "-S", "app", "--", "sh", "-c",
                                   "readlink /proc/\(nspid)/exe || echo denied-exe; ls /proc/\(nspid)/fd >/dev/null 2>&1 || echo denied-fd; cat /proc/\(nspid)/environ >/dev/null 2>&1 || echo denied-environ"])
        #expect(probe.stdout.contains("denied-exe"), "stdout: \(probe.stdout)")
        #expect(probe.stdout.contains("denied-fd"))
        #expect(probe.stdout.contains("denied-environ"))
    }
}

@Suite("User namespaces", .serialized, .enabled(if: Machine.isRoot, "needs root"))
struct UserNamespaceTests {
    /// Starts a target in a user namespace where ids 0-65535 map to 100000-165535 outside,
    /// so that the caller's uid 0 is not mapped. The maps are written from here.
    private func makeTarget() throws -> UnshareTarget {
        let target = try UnshareTarget(extraFlags: ["--user"], setHostname: false)
        try "0 100000 65536\n".write(toFile: "/proc/\(target.pid)/uid_map", atomically: false, encoding: .utf8)
        try "0 100000 65536\n".write(toFile: "/proc/\(target.pid)/gid_map", atomically: false, encoding: .utf8)
        return target
    }

    @Test("entering a user namespace makes the program its root")
    func rootInUserNamespace() throws {
        let target = try makeTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-U", "-u", "-n", "--", "sh", "-c", "id -u; id -g; readlink /proc/self/ns/user"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "0\n0\n\(namespaceLink(pid: target.pid, "user"))\n")
    }

    @Test("-U alone enters the user namespace")
    func userFlagAlone() throws {
        let target = try makeTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-U", "--", "readlink", "/proc/self/ns/user"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == namespaceLink(pid: target.pid, "user"))
    }

    @Test("--preserve-credentials keeps the caller's ids")
    func preserveCredentials() throws {
        let target = try makeTarget()
        defer { target.stop() }

        // The caller's uid 0 has no mapping inside, so it shows as the overflow uid.
        let overflow = try String(contentsOfFile: "/proc/sys/kernel/overflowuid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let result = try runNsexec(["-t", "\(target.pid)", "-U", "--preserve-credentials", "--", "id", "-u"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == overflow)
    }
}

@Suite("Terminal", .serialized, containerTrait)
struct TerminalTests {
    @Test("--tty session under tmux: echo, resize, exit status", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func interactive() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }
        let session = "nsexec-\(UUID().uuidString.prefix(8))"
        let tmux = ["/usr/bin/tmux", "-L", session]
        defer { _ = try? runCommand(tmux + ["kill-server"]) }

        let command = "\(Machine.nsexecBinary) --tty --container \(container.id) sh; echo EXIT=$?; sleep 60"
        try #require(try runCommand(tmux + ["new-session", "-d", "-s", session, "-x", "100", "-y", "30", command]).status == 0)

        func screen() -> String { (try? runCommand(tmux + ["capture-pane", "-p", "-t", session]).stdout) ?? "" }
        func waitFor(_ text: String) throws -> Bool {
            for _ in 0..<200 {
                if screen().contains(text) { return true }
                usleep(25_000)
            }
            return false
        }
        func type(_ text: String) throws {
            _ = try runCommand(tmux + ["send-keys", "-t", session, text, "Enter"])
        }

        try type("echo h''i; tty; stty size")
        #expect(try waitFor("\nhi\n"), "screen: \(screen())")
        #expect(try waitFor("/dev/pts/"), "the terminal is a pty")
        #expect(try waitFor("30 100"), "the initial window size is copied")

        _ = try runCommand(tmux + ["resize-window", "-t", session, "-x", "120", "-y", "40"])
        usleep(200_000)
        try type("stty size")
        #expect(try waitFor("40 120"), "a resize reaches the program: \(screen())")

        try type("exit 3")
        #expect(try waitFor("EXIT=3"), "the exit status comes back: \(screen())")
    }
}

extension FileHandle {
    /// Reads one line byte by byte, without reading past it.
    func availableLine() -> String {
        var bytes: [UInt8] = []
        while true {
            let data = readData(ofLength: 1)
            guard let byte = data.first, byte != UInt8(ascii: "\n") else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
