import Foundation
import Glibc
import Testing

/// Returns a pid that is free now: that of a child that has exited and been reaped.
private func exitedPid() throws -> Int32 {
    let result = try runCommand(["/bin/sh", "-c", "sh -c 'echo $$' "])
    return Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
}

@Suite("Bad input", .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct BadInputTests {
    /// Each bad command line: what to pass and a fragment of the one error line expected.
    static let cases: [(arguments: [String], message: String)] = [
        (["-t", "0", "-a", "true"], "invalid target pid '0': expected a positive process id"),
        (["-t", "abc", "-a", "true"], "invalid target pid 'abc': expected a positive process id"),
        (["-t", "-5", "-a", "true"], "invalid target pid '-5': expected a positive process id"),
        (["--bogus", "true"], "unknown option --bogus; see nsexec --help"),
        (["-q", "true"], "unknown option -q; see nsexec --help"),
        (["-t"], "option -t requires a value; see nsexec --help"),
        (["-a", "true"], "no target given; use -t/--target PID or --container ID"),
        (["--env", "NOVALUE", "-t", "1", "true"], "invalid --env value 'NOVALUE': expected NAME=VALUE"),
        (["--all=yes", "true"], "option --all takes no value; see nsexec --help"),
        (["--log-level", "loud", "true"], "invalid --log-level 'loud'"),
    ]

    @Test("usage errors give one line and status 125", arguments: cases)
    func usageError(arguments: [String], message: String) throws {
        let result = try runNsexec(arguments)
        #expect(result.status == 125)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("nsexec: "))
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }

    @Test("no namespace selected")
    func noNamespace() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: no namespace selected: give -a/--all or at least one of -m -u -i -n -p -C -U -T\n")
    }

    @Test("pid that does not exist")
    func missingPid() throws {
        // PIDs above pid_max never exist.
        let result = try runNsexec(["-t", "2147483647", "-a", "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: target pid 2147483647 not found: No such process; check the pid with ps\n")
    }

    @Test("pid that exited before entry")
    func exitedTarget() throws {
        let pid = try exitedPid()
        try #require(pid > 0)
        let result = try runNsexec(["-t", "\(pid)", "-a", "true"])
        #expect(result.status == 125)
        #expect(result.stderr.contains("target pid \(pid) not found") || result.stderr.contains("exited"),
                "stderr: \(result.stderr)")
    }

    @Test("target that exits while nsexec starts")
    func targetExitsDuringEntry() throws {
        // The target lives for a moment. Whichever side wins, nsexec runs the program,
        // or fails with one line, or the program dies with the PID namespace (the
        // kernel kills every process in it when its init exits: 137). Nothing is left.
        for _ in 0..<10 {
            let target = try UnshareTarget()
            let pid = target.pid
            let stopper = Thread { target.stop() }
            stopper.start()
            let result = try runNsexec(["-t", "\(pid)", "-a", "true"])
            #expect([0, 125, 137].contains(result.status), "status \(result.status), stderr: \(result.stderr)")
            if result.status == 125 {
                #expect(result.stderr.split(separator: "\n").count == 1, "stderr: \(result.stderr)")
            }
            while target.pid != 0 { usleep(1000) }
        }
    }

    @Test("namespace file that is not a namespace")
    func notANamespaceFile() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "--net=/etc/hostname", "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: /etc/hostname is not a namespace file; give a path such as /proc/PID/ns/net or a bind mount of one\n")
    }

    @Test("namespace file of another type")
    func wrongNamespaceType() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let result = try runNsexec(["-t", "\(target.pid)", "--net=/proc/\(target.pid)/ns/uts", "true"])
        #expect(result.status == 125)
        #expect(result.stderr == "nsexec: /proc/\(target.pid)/ns/uts is a uts namespace, not a net namespace; give a net namespace file such as /proc/PID/ns/net\n")
    }

    @Test("help and version exit 0")
    func helpAndVersion() throws {
        let help = try runNsexec(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.hasPrefix("Usage: nsexec"))
        let version = try runNsexec(["-V"])
        #expect(version.status == 0)
        #expect(version.stdout.hasPrefix("nsexec "))
    }
}
