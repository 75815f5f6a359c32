import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

/// Runs spec with stdout captured through a pipe.
func runCapturing(_ spec: ExecSpec) throws -> (Termination, String) {
    var fds: [Int32] = [-1, -1]
    guard nsexec_pipe_cloexec(&fds) == 0 else { throw TargetError("pipe failed") }
    var spec = spec
    spec.standardOutput = fds[1]
    let termination: Termination
    do {
        termination = try NSExec.run(spec)
    } catch {
        close(fds[0])
        close(fds[1])
        throw error
    }
    close(fds[1])
    let output = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
    return (termination, String(decoding: output, as: UTF8.self))
}

@Suite("Library", .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct LibraryTests {
    @Test("in-process call from the multi-threaded runner enters the namespaces")
    func inProcess() throws {
        #expect(NSExec.currentThreadCount() > 1, "the test runner is expected to be multi-threaded")
        let target = try UnshareTarget()
        defer { target.stop() }

        var spec = ExecSpec(target: .pid(target.pid), arguments: ["/bin/sh", "-c", "hostname; readlink /proc/self/ns/net"])
        spec.allNamespaces = true
        spec.helperPath = Machine.nsexecBinary
        let (termination, output) = try runCapturing(spec)
        #expect(termination == .exited(0))
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first == target.hostname)
        #expect(lines.last == namespaceLink(pid: target.pid, "net"))
    }

    @Test("missing target throws a clear error")
    func missingTarget() throws {
        var spec = ExecSpec(target: .pid(2147483647), arguments: ["true"])
        spec.allNamespaces = true
        #expect(throws: NSExecError(.target, "target pid 2147483647 not found: No such process; check the pid with ps")) {
            try NSExec.run(spec)
        }
    }

    @Test("exit status and signal come back as Termination")
    func termination() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        var spec = ExecSpec(target: .pid(target.pid), arguments: ["sh", "-c", "exit 3"])
        spec.allNamespaces = true
        spec.helperPath = Machine.nsexecBinary
        #expect(try NSExec.run(spec) == .exited(3))
        spec.arguments = ["sh", "-c", "kill -KILL $$"]
        #expect(try NSExec.run(spec) == .signaled(9))
        spec.arguments = ["nsexec-no-such-program"]
        #expect(throws: NSExecError.self) { try NSExec.run(spec) }
    }

    @Test("Namespace mirrors the C namespace table")
    func namespaceTable() {
        #expect(Namespace.allCases.count == 8)
        for namespace in Namespace.allCases {
            #expect(Namespace(cloneFlag: namespace.cloneFlag) == namespace)
            #expect(namespace.procName == namespace.rawValue)
        }
        #expect(Namespace.net.cloneFlag == 0x4000_0000)
        #expect(Namespace.user.cloneFlag == 0x1000_0000)
        #expect(Namespace.time.cloneFlag == 0x80)
    }
}
