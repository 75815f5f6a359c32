import Foundation
import Glibc
import Testing

private let containerTrait = Testing.ConditionTrait.enabled(
    if: Machine.isRoot && Machine.hasRunc && Machine.hasBusybox, "needs root, runc and busybox-static")

/// Writes a runc state.json under a fresh runtime root and returns that root.
private func fakeRuncState(id: String, pid: Int32, start: UInt64, contents: String? = nil) throws -> String {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-state-\(UUID().uuidString)")
    let dir = root.appendingPathComponent(id)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let text = contents ?? #"{"id":"\#(id)","init_process_pid":\#(pid),"init_process_start":\#(start)}"#
    try text.write(to: dir.appendingPathComponent("state.json"), atomically: true, encoding: .utf8)
    return root.path
}

/// Field 22 of /proc/PID/stat.
private func startTime(pid: Int32) -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 19 ? UInt64(fields[19]) : nil
}

@Suite("Container targets", .serialized, containerTrait)
struct ContainerTargetTests {
    @Test("crun container by id", .enabled(if: Machine.hasCrun, "needs crun"))
    func crunContainer() throws {
        let container = try BusyboxContainer(runtime: .crun)
        defer { container.stop() }

        let result = try runNsexec(["--container", container.id, "--", "sh", "-c", "hostname; cat /proc/1/comm"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "\(container.hostname)\nsleep\n")
    }

    @Test("unknown container id")
    func unknownContainer() throws {
        let result = try runNsexec(["--container", "nsexec-no-such-box", "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: container nsexec-no-such-box not found (no /run/runc/nsexec-no-such-box/state.json and /run/crun/nsexec-no-such-box/status); check the id with runc list or crun list, or set --runtime-root\n")
    }

    @Test("recycled pid is detected")
    func recycledPid() throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        let start = try #require(startTime(pid: target.pid))

        // The state names a live pid with another start time: the pid was reused.
        let root = try fakeRuncState(id: "recycled", pid: target.pid, start: start + 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try runNsexec(["--container", "recycled", "--runtime-root", root, "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: container recycled is no longer running (pid \(target.pid) now belongs to another process; state \(root)/recycled/state.json)\n")

        // The same state with the right start time enters it.
        let good = try fakeRuncState(id: "recycled", pid: target.pid, start: start)
        defer { try? FileManager.default.removeItem(atPath: good) }
        let entered = try runNsexec(["--container", "recycled", "--runtime-root", good, "hostname"])
        #expect(entered.status == 0, "stderr: \(entered.stderr)")
        #expect(entered.firstLine == target.hostname)
    }

    @Test("stopped container")
    func stoppedContainer() throws {
        let root = try fakeRuncState(id: "stopped", pid: 2147483646, start: 1)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try runNsexec(["--container", "stopped", "--runtime-root", root, "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: container stopped is not running (pid 2147483646 has exited; state \(root)/stopped/state.json); start it again\n")
    }

    @Test("damaged state files", arguments: [
        ("", "cannot parse state of container damaged"),
        (#"{"init_process_pid": 12"#, "cannot parse state of container damaged"),
        ("not json at all", "cannot parse state of container damaged"),
        (#"{"init_process_start": 5}"#, "has no valid init_process_pid"),
        (#"{"init_process_pid": -3, "init_process_start": 5}"#, "has no valid init_process_pid"),
        (#"{"init_process_pid": 12}"#, "has no valid init_process_start"),
    ])
    func damagedState(contents: String, message: String) throws {
        let root = try fakeRuncState(id: "damaged", pid: 0, start: 0, contents: contents)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let result = try runNsexec(["--container", "damaged", "--runtime-root", root, "true"])
        #expect(result.status == 125)
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("\(root)/damaged/state.json"), "names the state path")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test("killed runc container")
    func killedContainer() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }
        try #require(try runCommand(["/usr/sbin/runc", "kill", container.id, "KILL"]).status == 0)
        // runc kill returns once the signal is sent. Until the init has died, an exec can
        // still get in, so the test waits for that. The init may linger as a zombie until its
        // parent reaps it; either way it is not running.
        try #require(waitForExit(container.pid, timeout: 10), "the init outlived SIGKILL")

        let result = try runNsexec(["--container", container.id, "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: container \(container.id) is not running (pid \(container.pid) has exited; state /run/runc/\(container.id)/state.json); start it again\n")
    }

    @Test("paused container")
    func pausedContainer() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }
        try #require(try runCommand(["/usr/sbin/runc", "pause", container.id]).status == 0)

        let result = try runNsexec(["--container", container.id, "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: container \(container.id) is paused (state /run/runc/\(container.id)/state.json); resume it with runc resume \(container.id)\n")
        _ = try runCommand(["/usr/sbin/runc", "resume", container.id])
    }

    @Test("conflicting --target and --container")
    func conflictingTargets() throws {
        let result = try runNsexec(["--target", "1", "--container", "box", "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: --target and --container are mutually exclusive; give one of them\n")
    }

    @Test("network namespace file from ip netns")
    func netnsFile() throws {
        let name = "nsexec-test-\(UUID().uuidString.prefix(8).lowercased())"
        try #require(try runCommand(["/usr/sbin/ip", "netns", "add", name]).status == 0)
        defer { _ = try? runCommand(["/usr/sbin/ip", "netns", "delete", name]) }
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-u", "--net=/run/netns/\(name)", "--",
                                    "sh", "-c", "hostname; readlink /proc/self/ns/net"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let expected = try FileManager.default.attributesOfItem(atPath: "/run/netns/\(name)")[.systemFileNumber] as? UInt64
        #expect(result.stdout == "\(target.hostname)\nnet:[\(expected ?? 0)]\n")
    }
}

@Suite("Container process setup", .serialized, containerTrait)
struct ContainerProcessTests {
    let container: BusyboxContainer

    init() throws {
        container = try BusyboxContainer(runtime: .runc)
    }

    private func run(_ arguments: [String], _ program: [String]) throws -> CommandResult {
        try runNsexec(["--container", container.id] + arguments + ["--"] + program)
    }

    @Test("user by name gets its uid, gid, HOME and no extra groups")
    func userByName() throws {
        let result = try run(["-S", "app"], ["sh", "-c", "id -u; id -g; id -G; echo $HOME"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "1000\n1000\n1000\n/home/app\n")
    }

    @Test("numeric uid and gid")
    func numericIds() throws {
        let result = try run(["-S", "1234", "-G", "4321"], ["sh", "-c", "id -u; id -g; id -G"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "1234\n4321\n4321\n")
    }

    @Test("group by name")
    func groupByName() throws {
        let result = try run(["-G", "app"], ["id", "-g"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == "1000")
    }

    @Test("names resolve in the target's passwd without its mount namespace")
    func namesWithoutMountNamespace() throws {
        let app = try runNsexec(["-t", "\(container.pid)", "-n", "-S", "app", "--", "/usr/bin/id", "-u"])
        #expect(app.status == 0, "stderr: \(app.stderr)")
        #expect(app.firstLine == "1000")

        // daemon is in the host's passwd only.
        let daemon = try runNsexec(["-t", "\(container.pid)", "-n", "-S", "daemon", "--", "/usr/bin/id", "-u"])
        #expect(daemon.status == 125)
        #expect(daemon.stderr == "nsexec: user daemon not found in the container's /etc/passwd; give a numeric uid or a user listed in the container\n")
    }

    @Test("user missing from the container's passwd")
    func unknownUser() throws {
        let result = try run(["-S", "nsexec-nobody"], ["id"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: user nsexec-nobody not found in the container's /etc/passwd; give a numeric uid or a user listed in the container\n")
    }

    @Test("working directory inside the root")
    func workingDirectory() throws {
        let tmp = try run(["--wd=/tmp"], ["pwd"])
        #expect(tmp.stdout == "/tmp\n", "stderr: \(tmp.stderr)")
        let wdns = try run(["-W", "/etc"], ["pwd"])
        #expect(wdns.stdout == "/etc\n", "stderr: \(wdns.stderr)")
        let target = try run([], ["pwd"])
        #expect(target.stdout == "/\n", "the container's init runs in /")
    }

    @Test("missing working directory")
    func missingWorkingDirectory() throws {
        let result = try run(["--wd=/nsexec-missing"], ["pwd"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: cannot use working directory /nsexec-missing: No such file or directory; give a directory that exists inside the container\n")
    }

    @Test("working directory cannot escape the root", arguments: ["/../../..", "../../../..", "/tmp/up", "/tmp/up/.."])
    func escapeByDotDot(dir: String) throws {
        // A symlink inside the container that points far above its root.
        try FileManager.default.createSymbolicLink(atPath: container.rootfs + "/tmp/up", withDestinationPath: "../../../../../../..")
        let result = try run(["--wd=\(dir)"], ["sh", "-c", "pwd; ls /"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == "/")
        #expect(result.stdout.contains("\nbin\n"), "listing is the container's root")
    }

    @Test("working directory through /proc magic links", arguments: ["/proc/self/fd/3", "/proc/self/cwd", "/proc/1/root", "/proc/self/root/.."])
    func escapeByMagicLink(dir: String) throws {
        let result = try run(["--wd=\(dir)"], ["pwd"])
        #expect(result.status == 125, "stdout: \(result.stdout)")
        #expect(result.stderr.hasPrefix("nsexec: cannot use working directory \(dir): "), "stderr: \(result.stderr)")
    }

    @Test("root directory inside the container")
    func rootDirectory() throws {
        try FileManager.default.createDirectory(atPath: container.rootfs + "/jail/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: container.rootfs + "/jail/bin/sh")
        let result = try run(["--root=/jail"], ["/bin/sh", "-c", "echo *; cd /..; echo *"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "bin\nbin\n")
    }

    @Test("clean environment by default")
    func cleanEnvironment() throws {
        let result = try runNsexec(["--container", container.id, "--", "env"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let entries = Set(result.stdout.split(separator: "\n").map(String.init))
        #expect(entries.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        #expect(entries.contains("HOME=/root"))
        #expect(!entries.contains { $0.hasPrefix("NSEXEC_TEST_MARKER=") }, "the caller's environment stays out")
    }

    @Test("target environment and overrides")
    func targetEnvironment() throws {
        let result = try run(["-e", "--env", "FOO=bar", "--env", "TERM=dumb"], ["env"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let entries = result.stdout.split(separator: "\n").map(String.init)
        #expect(entries.contains("FOO=bar"))
        #expect(entries.filter { $0.hasPrefix("TERM=") } == ["TERM=dumb"])
        // runc spec puts HOME and TERM=xterm in the init's environment.
        #expect(entries.contains("HOME=/root"))
    }

    @Test("many --env overrides, last one counts")
    func manyEnvironmentOverrides() throws {
        // 31 overrides take the one-pass path: V0 to V9 three times each, then TERM.
        var options = ["-e"]
        for index in 0..<30 { options += ["--env", "V\(index % 10)=\(index)"] }
        options += ["--env", "TERM=dumb"]
        let result = try run(options, ["env"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let entries = result.stdout.split(separator: "\n").map(String.init)
        #expect(entries.filter { $0.hasPrefix("V") } == (0..<10).map { "V\($0)=\(20 + $0)" })
        #expect(entries.filter { $0.hasPrefix("TERM=") } == ["TERM=dumb"])
        #expect(entries.contains("HOME=/root"))
    }

    @Test("--env without = is rejected")
    func envWithoutEquals() throws {
        let result = try run(["--env", "FOO"], ["env"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: invalid --env value 'FOO': expected NAME=VALUE\n")
    }

    @Test("no-fork runs without stage 2")
    func noFork() throws {
        let result = try runNsexec(["-t", "\(container.pid)", "-F", "-u", "-n", "--", "hostname"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == container.hostname)
    }

    @Test("join-cgroup moves the program into the target's cgroups")
    func joinCgroup() throws {
        let result = try runNsexec(["-t", "\(container.pid)", "-c", "-m", "-p", "--", "cat", "/proc/self/cgroup"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        // Read from the host's cgroup namespace, as the target's own file.
        let expected = try String(contentsOfFile: "/proc/\(container.pid)/cgroup", encoding: .utf8)
        #expect(result.stdout == expected)
    }

    @Test("only fds 0, 1 and 2 reach the program")
    func noLeakedFds() throws {
        let script = "exec 7</etc/passwd 8>/dev/null 9</; exec \(Machine.nsexecBinary) --container \(container.id) -- sh -c 'ls /proc/$$/fd; true'"
        let result = try runCommand(["/bin/bash", "-c", script])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.split(separator: "\n").map(String.init) == ["0", "1", "2"])
    }

    @Test("--tty without a terminal")
    func ttyWithoutTerminal() throws {
        let result = try run(["--tty"], ["true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: --tty needs a terminal on stdin, but fd 0 is not one; run from a terminal or drop --tty\n")
    }
}
