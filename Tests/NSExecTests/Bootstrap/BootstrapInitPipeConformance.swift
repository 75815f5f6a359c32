import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

/// Builds the bootstrap message of runc's nsenter tests: unshare the network namespace, join paths.
private func runcTestMessage(paths: String) -> [UInt8] {
    var message = BootstrapMessage()
    message.setCloneFlags(Namespace.net.cloneFlag)
    message.append(type: NSEXEC_NS_PATHS_ATTR, text: paths)
    return message.encoded()
}

/// Returns the test process's own namespace file of a type, named by pid as runc's tests name it.
private func ownNamespaceFile(_ name: String) -> String {
    "/proc/\(getpid())/ns/\(name)"
}

/// Reads the first field of /proc/uptime: CLOCK_BOOTTIME as the reader's time namespace shows it.
private func readUptime() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8) else { return nil }
    return text.split(separator: " ").first.flatMap { Double($0) }
}

private func readMonotonic() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// The clock_gettime system call number, for the perl one-liner below.
#if arch(x86_64)
private let clockGettimeSyscall = 228
#elseif arch(arm64)
private let clockGettimeSyscall = 113
#else
#error("add the clock_gettime system call number of this architecture")
#endif

/// Prints "UPTIME MONOTONIC" as read inside. perl-base is essential in Debian, and its
/// `syscall` needs no module; the system call, like the vDSO, applies time namespace offsets.
private let printClocksScript = """
    open(my $f, "<", "/proc/uptime") or die "/proc/uptime: $!"; my ($up) = split(" ", <$f>);
    my $t = "\\0" x 16; syscall(\(clockGettimeSyscall), \(CLOCK_MONOTONIC), $t) == 0 or die "clock_gettime: $!";
    my ($s, $n) = unpack("q q", $t); printf("%s %d.%09d\\n", $up, $s, $n);
    """

/// The nsexec binary driven over its init pipe: ports of the scenarios of runc's
/// libcontainer/nsenter tests (valid paths, invalid path, wrong namespace type, child
/// logging), plus a new user namespace with a uid map and a time namespace with offsets.
@Suite("Bootstrap: init pipe", .enabled(if: Machine.isRoot, "needs root to create namespaces"))
struct BootstrapInitPipeConformance {
    /// Checks a run that must succeed: pid line, every stage exited 0, nothing left.
    func expectSuccess(_ outcome: BootstrapDriver.Outcome, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(BootstrapDriver.exited(outcome.helperStatus, with: 0),
                "stage 0 wait status \(String(describing: outcome.helperStatus)); errors \(outcome.errors)",
                sourceLocation: sourceLocation)
        try #require(outcome.reportedPIDs, "no pid line; errors \(outcome.errors)", sourceLocation: sourceLocation)
        #expect(BootstrapDriver.exited(outcome.stage1Status, with: 0), sourceLocation: sourceLocation)
        #expect(BootstrapDriver.exited(outcome.stage2Status, with: 0),
                "program wait status \(String(describing: outcome.stage2Status)); output \(outcome.output)",
                sourceLocation: sourceLocation)
        #expect(outcome.errors.isEmpty, "errors: \(outcome.errors)", sourceLocation: sourceLocation)
        #expect(outcome.otherRecords.isEmpty, "unexpected init pipe lines: \(outcome.otherRecords)",
                sourceLocation: sourceLocation)
        #expect(outcome.leftovers.isEmpty, "processes left: \(outcome.leftovers)", sourceLocation: sourceLocation)
    }

    /// Checks a run that stage 1 must fail: non-zero exit, an error naming detail, nothing joined or left.
    func expectStage1Failure(_ outcome: BootstrapDriver.Outcome, _ detail: String,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(BootstrapDriver.exited(outcome.helperStatus, with: NSEXEC_EXIT_FAILURE),
                "wait status \(String(describing: outcome.helperStatus))", sourceLocation: sourceLocation)
        #expect(!outcome.reportedPIDs, sourceLocation: sourceLocation)
        let first = try #require(outcome.errors.first, "no error record", sourceLocation: sourceLocation)
        #expect(first.error.contains(detail), "first error: \(first.error)", sourceLocation: sourceLocation)
        #expect(!outcome.log.contains("joined"), "log: \(outcome.log)", sourceLocation: sourceLocation)
        #expect(outcome.leftovers.isEmpty, "processes left: \(outcome.leftovers)", sourceLocation: sourceLocation)
    }

    @Test("bootstrap.joins_own_pid_namespace")
    func joinsOwnPIDNamespace() throws {
        // Joining the PID namespace one is already in is allowed, unlike the user namespace.
        var stage2PID = "", stage2Net = ""
        var run = BootstrapDriver.Run(bootstrap: runcTestMessage(paths: "pid:\(ownNamespaceFile("pid"))"))
        run.inspectStage2 = { _, stage2 in
            stage2PID = namespaceLink(pid: stage2, "pid")
            stage2Net = namespaceLink(pid: stage2, "net")
        }
        let outcome = try BootstrapDriver.run(run)

        try expectSuccess(outcome)
        #expect(outcome.stage1PID != outcome.helperPID)
        #expect(outcome.stage2PID != outcome.helperPID)
        #expect(outcome.stage1PID != outcome.stage2PID)
        #expect(stage2PID == ownNamespaceLink("pid"))
        #expect(stage2Net != "missing")
        #expect(stage2Net != ownNamespaceLink("net"), "stage 2 did not get a new network namespace")
    }

    @Test("bootstrap.rejects_invalid_path")
    func invalidPath() throws {
        let outcome = try BootstrapDriver.run(.init(bootstrap: runcTestMessage(paths: "pid:/proc/-1/ns/pid")))
        try expectStage1Failure(outcome, "cannot open pid namespace file /proc/-1/ns/pid")
    }

    @Test("bootstrap.rejects_wrong_namespace_type")
    func wrongNamespaceType() throws {
        let outcome = try BootstrapDriver.run(.init(bootstrap: runcTestMessage(paths: "net:\(ownNamespaceFile("pid"))")))
        try expectStage1Failure(outcome, "is a pid namespace, not a net namespace")
    }

    @Test("bootstrap.logs_json_lines")
    func logsJSONLines() throws {
        let outcome = try BootstrapDriver.run(.init(bootstrap: runcTestMessage(paths: "pid:\(ownNamespaceFile("pid"))")))
        try expectSuccess(outcome)
        let stage1 = try #require(outcome.stage1PID)
        let stage2 = try #require(outcome.stage2PID)

        let lines = outcome.logLines
        try #require(!lines.isEmpty, "no log line at debug level")
        let stagePIDs = [outcome.helperPID, stage1, stage2]
        var seen = [false, false, false]
        for line in lines {
            let entry = try #require(BootstrapDriver.parseLogLine(line), "not {\"level\",\"msg\"} JSON: \(line)")
            #expect(!entry.level.isEmpty, "\(line)")
            #expect(!entry.msg.isEmpty, "\(line)")
            #expect(entry.level == "debug", "\(line)")

            // Every line names its stage and that stage's pid: "stage-N[PID]: ...".
            let stage = (0..<3).first { entry.msg.hasPrefix("stage-\($0)[\(stagePIDs[$0])]: ") }
            #expect(stage != nil, "line names no stage with its pid: \(line)")
            if let stage { seen[stage] = true }
        }
        #expect(seen == [true, true, true], "stages seen in the log: \(seen)")

        // The steps of this run, each logged by the stage that took it.
        #expect(outcome.log.contains("stage-1[\(stage1)]: joined pid namespace \(ownNamespaceFile("pid"))"))
        #expect(outcome.log.contains("stage-1[\(stage1)]: unshared namespaces 0x40000000"))
        #expect(outcome.log.contains("stage-2[\(stage2)]: executing /bin/true"))
    }

    @Test("bootstrap.logs_nothing_below_error_level")
    func logsNothingBelowErrorLevel() throws {
        var run = BootstrapDriver.Run(bootstrap: runcTestMessage(paths: "pid:\(ownNamespaceFile("pid"))"))
        run.logLevel = Int32(NSEXEC_LOG_ERROR.rawValue)
        let outcome = try BootstrapDriver.run(run)
        try expectSuccess(outcome)
        #expect(outcome.log == "")
    }

    /// The caller's own uid, as an unprivileged caller would map it, and an unrelated uid that root may map.
    @Test("bootstrap.new_user_namespace_maps_root", arguments: [getuid(), 65534])
    func newUserNamespaceMapsRoot(outside: uid_t) throws {
        let gid = outside == getuid() ? getgid() : outside
        var message = BootstrapMessage()
        message.setCloneFlags(Namespace.user.cloneFlag)
        message.append(type: NSEXEC_UIDMAP_ATTR, text: "0 \(outside) 1\n")
        message.append(type: NSEXEC_GIDMAP_ATTR, text: "0 \(gid) 1\n")

        var stage2User = ""
        var run = BootstrapDriver.Run(bootstrap: message.encoded())
        run.program = ["/bin/sh", "-c", "id -u && cat /proc/self/uid_map"]
        run.captureOutput = true
        run.inspectStage2 = { _, stage2 in stage2User = namespaceLink(pid: stage2, "user") }
        let outcome = try BootstrapDriver.run(run)
        try expectSuccess(outcome)

        #expect(stage2User != "missing")
        #expect(stage2User != ownNamespaceLink("user"), "stage 2 did not get a new user namespace")
        let lines = outcome.output.split(separator: "\n").map(String.init)
        try #require(lines.count == 2, "output: \(outcome.output)")
        #expect(lines[0] == "0")
        #expect(lines[1].split(separator: " ").map(String.init) == ["0", "\(outside)", "1"])
    }

    @Test("bootstrap.time_namespace_offsets")
    func timeNamespaceOffsets() throws {
        var message = BootstrapMessage()
        message.setCloneFlags(Namespace.time.cloneFlag)
        message.append(type: NSEXEC_TIMENSOFFSET_ATTR, text: "monotonic 1000 0\nboottime 1000 0\n")

        var stage2Time = ""
        var run = BootstrapDriver.Run(bootstrap: message.encoded())
        run.program = ["/usr/bin/perl", "-e", printClocksScript]
        run.captureOutput = true
        run.inspectStage2 = { _, stage2 in stage2Time = namespaceLink(pid: stage2, "time") }

        let uptimeBefore = try #require(readUptime())
        let monotonicBefore = readMonotonic()
        let outcome = try BootstrapDriver.run(run)
        let uptimeAfter = try #require(readUptime())
        let monotonicAfter = readMonotonic()
        try expectSuccess(outcome)

        #expect(stage2Time != "missing")
        #expect(stage2Time != ownNamespaceLink("time"), "stage 2 did not get a new time namespace")
        let fields = outcome.output.split(whereSeparator: \.isWhitespace).compactMap { Double($0) }
        try #require(fields.count == 2, "output: \(outcome.output)")

        // Inside = outside + 1000 s at some moment between before and after; /proc/uptime has 10 ms steps.
        #expect(fields[0] >= uptimeBefore + 1000 - 0.02)
        #expect(fields[0] <= uptimeAfter + 1000 + 0.02)
        #expect(fields[1] >= monotonicBefore + 1000)
        #expect(fields[1] <= monotonicAfter + 1000)
    }
}
