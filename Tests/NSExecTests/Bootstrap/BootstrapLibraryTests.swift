import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

/// A shell script that prints its hostname and its namespace links, one per line.
private let reportScript = """
    cat /proc/sys/kernel/hostname; for ns in net uts ipc pid mnt cgroup time; do readlink /proc/self/ns/$ns; done
    """

/// Returns the lines that reportScript prints when it runs in every namespace of target.
private func expectedReport(_ target: UnshareTarget) -> [String] {
    [target.hostname] + ["net", "uts", "ipc", "pid", "mnt", "cgroup", "time"].map { namespaceLink(pid: target.pid, $0) }
}

/// Runs reportScript in every namespace of target through `NSExec.run`, with stdout on a pipe;
/// returns how it ended and the lines it printed.
private func runReport(in target: UnshareTarget, mode: SpawnMode,
                       helperPath: String = Machine.nsexecBinary) throws -> (Termination, [String]) {
    var fds: [Int32] = [-1, -1]
    guard nsexec_pipe_cloexec(&fds) == 0 else {
        throw TargetError("cannot create the output pipe: \(String(cString: strerror(errno)))")
    }
    defer { close(fds[0]) }

    var spec = ExecSpec(target: .pid(target.pid), arguments: ["/bin/sh", "-c", reportScript])
    spec.allNamespaces = true
    spec.spawnMode = mode
    spec.helperPath = helperPath
    spec.standardOutput = fds[1]
    let termination: Termination
    do {
        termination = try NSExec.run(spec)
    } catch {
        close(fds[1])
        throw error
    }
    close(fds[1])

    // The program has exited, so everything it wrote is in the pipe.
    let output = BootstrapDriver.readFrom(fd: fds[0], stopAtNewline: false)
    return (termination, output.split(separator: "\n").map(String.init))
}

/// Runs body on a thread of its own, so that many blocking calls run at the same time
/// instead of queueing for the few threads of the cooperative pool.
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: Result { try body() }) }
        thread.start()
    }
}

/// The library's helper path (`NSExec.run` with the init pipe protocol) from the
/// multi-threaded test runner, also many calls at once, and the Swift encoder of the
/// bootstrap message. Swift-only, so these tests have no conformance id.
@Suite("Bootstrap: library helper path", .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct BootstrapLibraryTests {
    @Test("helper mode enters every namespace of the target")
    func helperMode() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        let (termination, lines) = try runReport(in: target, mode: .helper)
        #expect(termination == .exited(0))
        #expect(lines == expectedReport(target))
    }

    @Test("automatic mode takes the helper path when multi-threaded")
    func automaticModeUsesHelper() throws {
        try #require(NSExec.currentThreadCount() > 1, "the test runner is expected to be multi-threaded")
        let target = try UnshareTarget()
        defer { target.stop() }

        // A missing helper binary fails only on the helper path, so this shows which path was taken.
        let missing = "/nonexistent/nsexec-helper"
        do {
            _ = try runReport(in: target, mode: .automatic, helperPath: missing)
            Issue.record("automatic mode did not use the helper binary \(missing)")
        } catch {
            #expect("\(error)".contains("cannot start the nsexec helper \(missing)"), "error: \(error)")
        }

        let (termination, lines) = try runReport(in: target, mode: .automatic)
        #expect(termination == .exited(0))
        #expect(lines == expectedReport(target))
    }

    @Test("helper path reports exit status and signal")
    func reportsExitStatus() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        var spec = ExecSpec(target: .pid(target.pid), arguments: ["/bin/sh", "-c", "exit 7"])
        spec.allNamespaces = true
        spec.spawnMode = .helper
        spec.helperPath = Machine.nsexecBinary
        #expect(try NSExec.run(spec) == .exited(7))

        spec.arguments = ["/bin/sh", "-c", "kill -TERM $$"]
        #expect(try NSExec.run(spec) == .signaled(SIGTERM))
    }

    /// 20 calls at once on 20 threads, spread over 4 targets: each must land in its own
    /// target's namespaces, so that no call's config or pids reach another call.
    @Test("20 concurrent calls each enter their own target")
    func concurrentRuns() async throws {
        let targets = try (0..<4).map { _ in try UnshareTarget() }
        defer { for target in targets { target.stop() } }

        let results = await withTaskGroup(of: (Int, Result<(Termination, [String]), any Error>).self) { group in
            for index in 0..<20 {
                let target = targets[index % targets.count]
                group.addTask {
                    (index, await onOwnThread { try runReport(in: target, mode: .automatic) })
                }
            }
            var collected: [(Int, Result<(Termination, [String]), any Error>)] = []
            for await result in group { collected.append(result) }
            return collected
        }

        #expect(results.count == 20)
        for (index, result) in results.sorted(by: { $0.0 < $1.0 }) {
            let target = targets[index % targets.count]
            switch result {
            case .success(let (termination, lines)):
                #expect(termination == .exited(0), "call \(index)")
                #expect(lines == expectedReport(target), "call \(index) in target \(index % targets.count)")
            case .failure(let error):
                Issue.record("call \(index) failed: \(error)")
            }
        }
    }

    /// Parameterized cases run in parallel with each other and with the rest of the suite.
    @Test("parallel test cases each enter their own target", arguments: 0..<12)
    func parallelCases(index: Int) throws {
        let target = try UnshareTarget(hostname: "nsexec-case-\(index)")
        defer { target.stop() }

        let (termination, lines) = try runReport(in: target, mode: index.isMultiple(of: 2) ? .helper : .automatic)
        #expect(termination == .exited(0))
        #expect(lines == expectedReport(target))
    }

    @Test("BootstrapMessage pads attributes to 4 bytes")
    func encoderPadsAttributes() {
        // A 5-byte payload: 4-byte attribute header + 5 bytes, padded to 12; length field 9.
        var message = BootstrapMessage()
        message.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "-1000")
        let bytes = message.encoded()
        #expect(bytes.count == 16 + 12)
        #expect(Array(bytes[0..<4]) == withUnsafeBytes(of: UInt32(28)) { Array($0) })
        #expect(Array(bytes[4..<6]) == withUnsafeBytes(of: UInt16(NSEXEC_INIT_MSG)) { Array($0) })
        #expect(Array(bytes[16..<18]) == withUnsafeBytes(of: UInt16(9)) { Array($0) })
        #expect(Array(bytes[18..<20]) == withUnsafeBytes(of: UInt16(NSEXEC_OOM_SCORE_ADJ_ATTR)) { Array($0) })
        #expect(Array(bytes[20..<25]) == Array("-1000".utf8))
        #expect(Array(bytes[25..<28]) == [0, 0, 0])
    }
}
