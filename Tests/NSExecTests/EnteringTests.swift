import Foundation
import Glibc
import Testing

/// The namespace names and CLI flags checked one by one, in /proc/PID/ns spelling.
private let singleFlags: [(flag: String, name: String)] = [
    ("-m", "mnt"), ("-u", "uts"), ("-i", "ipc"), ("-n", "net"), ("-p", "pid"), ("-C", "cgroup"), ("-T", "time"),
]
private let checkedNamespaces = ["mnt", "uts", "ipc", "net", "pid", "cgroup", "time", "user"]

/// Prints `name=link` for every namespace, from inside; pid and time show the
/// program's own namespaces because it is the child that entered them.
private let printNamespaces = "for n in \(checkedNamespaces.joined(separator: " ")); do echo $n=$(readlink /proc/self/ns/$n); done"

private func parseLinks(_ output: String) -> [String: String] {
    var links: [String: String] = [:]
    for line in output.split(separator: "\n") {
        let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
        if parts.count == 2 { links[parts[0]] = parts[1] }
    }
    return links
}

@Suite("Entering namespaces", .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct EnteringTests {
    /// With only the mount namespace entered, /proc inside belongs to the target's PID
    /// namespace and /proc/self does not resolve, so the links are read from the host:
    /// the program sleeps, and the test reads /proc/PID/ns of the CLI's child.
    @Test("single namespace flag enters only that namespace", arguments: singleFlags)
    func singleFlag(flag: String, name: String) throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let cli = try Subprocess([Machine.nsexecBinary, "-t", "\(target.pid)", flag, "--", "sleep", "30"])
        defer {
            cli.kill(SIGKILL)
            cli.wait()
        }

        var program: Int32 = 0
        let deadline = Date().addingTimeInterval(10)
        while program == 0 && Date() < deadline {
            program = UnshareTarget.children(of: cli.pid).first { pid in
                (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("sleep") == true
            } ?? 0
            usleep(2000)
        }
        try #require(program > 0, "nsexec \(flag) did not start the program")

        for namespace in checkedNamespaces {
            let expected = namespace == name ? namespaceLink(pid: target.pid, namespace) : ownNamespaceLink(namespace)
            #expect(namespaceLink(pid: program, namespace) == expected, "\(namespace) after \(flag)")
        }
        kill(program, SIGKILL)
        #expect(cli.wait() == 137, "the CLI reports the program's SIGKILL as 137")
    }

    @Test("--all enters every namespace that differs")
    func allNamespaces() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["--target", "\(target.pid)", "--all", "--", "/bin/sh", "-c", printNamespaces])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let links = parseLinks(result.stdout)
        for namespace in checkedNamespaces {
            #expect(links[namespace] == namespaceLink(pid: target.pid, namespace), "\(namespace) after --all")
        }
    }

    /// The direct child is then born in nsexec's own PID namespace, where its parent's pid
    /// is not 0 as it is across namespaces.
    @Test("--all on a target in nsexec's PID namespace")
    func allSharingPIDNamespace() throws {
        let target = try UnshareTarget(sharingPID: true)
        defer { target.stop() }

        let result = try runNsexec(["--target", "\(target.pid)", "--all", "--", "/bin/sh", "-c", printNamespaces + "; hostname"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let links = parseLinks(result.stdout)
        for namespace in checkedNamespaces {
            #expect(links[namespace] == namespaceLink(pid: target.pid, namespace), "\(namespace) after --all")
        }
        #expect(result.stdout.hasSuffix("\(target.hostname)\n"))
    }

    @Test("long flags match short flags")
    func longFlags() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["--target=\(target.pid)", "--uts", "--net", "--", "/bin/sh", "-c", printNamespaces])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let links = parseLinks(result.stdout)
        #expect(links["uts"] == namespaceLink(pid: target.pid, "uts"))
        #expect(links["net"] == namespaceLink(pid: target.pid, "net"))
        #expect(links["ipc"] == ownNamespaceLink("ipc"))
    }

    @Test("PID namespace shows the target's process tree and hostname")
    func processTreeAndHostname() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-a", "--", "/bin/sh", "-c",
                                    "hostname; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == target.hostname)
        #expect(lines.dropFirst().first == "sleep", "PID 1 inside is the target's sleep")
        // sleep, the shell, grep and ls: a handful of processes, not the host's table.
        let count = Int(lines.last ?? "") ?? 0
        #expect(count >= 2, "processes visible inside: \(count)")
        #expect(count <= 8, "processes visible inside: \(count)")
    }

    @Test("namespace file argument joins that file")
    func namespaceFile() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["--net=/proc/\(target.pid)/ns/net", "-t", "\(target.pid)", "--",
                                    "/bin/readlink", "/proc/self/ns/net"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == namespaceLink(pid: target.pid, "net"))
    }
}

@Suite("Exit status", .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct ExitStatusTests {
    @Test("program status, signal and missing program", arguments: [
        (["sh", "-c", "exit 7"], Int32(7)),
        (["sh", "-c", "exit 0"], Int32(0)),
        (["sh", "-c", "kill -KILL $$"], Int32(137)),
        (["sh", "-c", "kill -TERM $$"], Int32(143)),
        (["nsexec-no-such-program"], Int32(127)),
        (["/etc/hostname"], Int32(126)),
    ])
    func status(program: [String], expected: Int32) throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-a", "--"] + program)
        #expect(result.status == expected, "stderr: \(result.stderr)")
    }

    @Test("missing program reports one error line")
    func missingProgramMessage() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-a", "nsexec-no-such-program"])
        #expect(result.status == 127)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("nsexec-no-such-program"))
        #expect(result.stderr.contains("No such file or directory"))
    }

    @Test("stdin, stdout and stderr are nsexec's own")
    func standardStreams() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "-a", "--", "sh", "-c", "read line; echo out:$line; echo err:$line >&2"],
                                   stdin: "hello\n")
        #expect(result.status == 0)
        #expect(result.stdout == "out:hello\n")
        #expect(result.stderr == "err:hello\n")
    }

    @Test("program arguments pass byte for byte")
    func argumentBytes() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        // The CLI hands its own argv on, so bytes that are not UTF-8, empty arguments and
        // arguments that look like options reach the program unchanged. A shell builds the
        // byte 0xff, which a Swift String argument cannot carry.
        let script = #"""
            exec "$0" -t "$1" -a -- /bin/sh -c 'for a in "$@"; do printf "[%s]" "$a" | od -An -tx1; done' x \
                "$(printf 'a\377b')" "" "--all" "two words"
            """#
        let result = try runCommand(["/bin/sh", "-c", script, Machine.nsexecBinary, "\(target.pid)"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { line in line.split(separator: " ").joined(separator: " ") }
        #expect(lines == [
            "5b 61 ff 62 5d",
            "5b 5d",
            "5b 2d 2d 61 6c 6c 5d",
            "5b 74 77 6f 20 77 6f 72 64 73 5d",
        ], "output: \(result.stdout)")
    }
}
