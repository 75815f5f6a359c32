import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

// The "Bad input" table of docs/CONFORMANCE.md lists every case below, next to the cases
// of BadInputTests.swift, ContainerGradeTests.swift and the Bootstrap suites.

/// Checks one rejected CLI run: status 125, nothing on stdout, exactly the expected line.
private func expectRejected(_ result: CommandResult, _ error: String, _ what: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 125, "\(what): status \(result.status)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "\(what): stdout \(result.stdout)", sourceLocation: sourceLocation)
    #expect(result.stderr == "nsexec: \(error)\n", "\(what)", sourceLocation: sourceLocation)
}

/// A runtime root with one container's state file, for --runtime-root. Removed on deinit.
private final class StateDirectory {
    let root: String
    let file: String

    /// Writes contents as the state of container `box`: runc's state.json, or crun's status.
    init(runtime: BusyboxContainer.Runtime, contents: [UInt8]? = nil) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-state-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/box", withIntermediateDirectories: true)
        file = root + (runtime == .runc ? "/box/state.json" : "/box/status")
        if let contents { try Data(contents).write(to: URL(fileURLWithPath: file)) }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// Special files to give where a namespace file or a state file belongs. Removed on deinit.
private final class SpecialFiles {
    let directory: String
    var fifo: String { directory + "/fifo" }
    var socket: String { directory + "/socket" }
    var linkToFIFO: String { directory + "/link-to-fifo" }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-special-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard mkfifo(fifo, 0o600) == 0 else { throw TargetError("mkfifo \(fifo): \(String(cString: strerror(errno)))") }
        try FileManager.default.createSymbolicLink(atPath: linkToFIFO, withDestinationPath: fifo)

        // A bound Unix socket leaves a socket file; the fd can go at once.
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in socket.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw TargetError("bind \(socket): \(String(cString: strerror(errno)))") }
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

/// Runs a bootstrap message that joins nothing but the caller's own UTS namespace, then
/// sends `process` as the process message. Returns the wait statuses of stage 0 and
/// stage 2, the error records, the stderr lines and the processes left.
private func runProcessMessage(_ process: [UInt8]) throws -> (stage0: String, stage2: String, records: [BootstrapDriver.ErrorRecord], stderr: [String], leftovers: [Int32]) {
    let run = try InitPipeRun()
    run.send(bootstrapMessage(joining: getpid(), [.uts]))
    guard let pids = stagePIDs(run.readLine()) else { throw TargetError("no pid line; stderr \(run.stderrLines)") }
    run.send(process)
    shutdown(run.initPipe, Int32(SHUT_WR))
    let records = errorRecords(run.readToEnd())
    let stage0 = describe(waitStatus: waitForChild(run.pid))
    waitForChild(pids.stage1)
    let stage2 = describe(waitStatus: waitForChild(pids.stage2))
    return (stage0, stage2, records, run.stderrLines, waitUntilNoProcess(marker: run.marker))
}

/// Builds a process message from raw attributes (type, payload) and sets the header's length.
private func rawProcessMessage(type: Int32 = NSEXEC_PROCESS_MSG, _ attributes: [(Int32, [UInt8])]) -> [UInt8] {
    var message = BootstrapMessage(type: UInt16(type))
    for (attributeType, payload) in attributes { message.append(type: attributeType, payload: payload) }
    return message.encoded()
}

/// Bad input at every entry point of nsexec: the command line, the namespace files it is
/// given, the state files of runc and crun, and the bootstrap and process messages of the
/// init pipe. Each is rejected with one error line, status 125 and nothing left running.
@Suite("Reliability: bad input", .serialized, .enabled(if: Machine.isRoot, "needs root to enter namespaces"))
struct ReliabilityBadInputTests {
    // MARK: - Command line

    /// Arguments (TARGET stands for a live target's pid) and the error after "nsexec: ".
    static let commandLines: [(arguments: [String], error: String)] = [
        (["--container", "", "true"], "invalid container id '': an id is a single path component; list ids with runc list"),
        (["--container", "a/b", "true"], "invalid container id 'a/b': an id is a single path component; list ids with runc list"),
        (["--container", "..", "true"], "invalid container id '..': an id is a single path component; list ids with runc list"),
        (["--container", "box", "--runtime-root", "/nsexec-missing", "true"],
         "container box not found (no /nsexec-missing/box/state.json and /nsexec-missing/box/status); check the id with runc --root /nsexec-missing list or crun --root /nsexec-missing list"),
        (["-t", "12abc", "-a", "true"], "invalid target pid '12abc': expected a positive process id"),
        (["-t", "99999999999", "-a", "true"], "invalid target pid '99999999999': expected a positive process id"),
        (["-t", "", "-a", "true"], "invalid target pid '': expected a positive process id"),
        (["-t", " 12", "-a", "true"], "invalid target pid ' 12': expected a positive process id"),
        (["--log-format", "xml", "true"], "invalid --log-format 'xml': expected text or json"),
        (["-t", "TARGET", "-a", "--setuid=", "true"], "option --setuid requires a uid or user name"),
        (["-t", "TARGET", "-a", "-W", "", "true"], "option --wdns requires a directory"),
        (["-t", "TARGET", "-a", "--wd=", "true"], "invalid working directory '': give a directory path"),
        (["-t", "TARGET", "-a", "--env", "=x", "true"], "invalid --env value '=x': expected NAME=VALUE"),
        (["-t", "TARGET", "--net=", "true"], "invalid namespace file '' for --net: give a path or no value"),
        (["-t", "TARGET", "-a", "--root=/nsexec-missing", "true"],
         "cannot use root directory /nsexec-missing inside the target's root: No such file or directory; give a directory that exists in the container"),
        (["-t", "TARGET", "-a", "-G", "nsexec-nogroup", "true"],
         "group nsexec-nogroup not found in the container's /etc/group; give a numeric gid or a group listed in the container"),
        (["-t", "TARGET", "-a", "-S", "4294967296", "true"],
         "user 4294967296 not found in the container's /etc/passwd; give a numeric uid or a user listed in the container"),
        (["-t", "TARGET", "-a", "--", ""], "no program to execute"),
    ]

    @Test("command line arguments")
    func commandLine() throws {
        let target = try UnshareTarget()
        defer { target.stop() }

        for (arguments, error) in Self.commandLines {
            let substituted = arguments.map { $0 == "TARGET" ? "\(target.pid)" : $0 }
            expectRejected(try runNsexec(substituted), error, substituted.joined(separator: " "))
        }
    }

    // MARK: - Namespace files

    @Test("namespace files of other file types, CLI")
    func namespaceFileTypesCLI() throws {
        let target = try UnshareTarget()
        defer { target.stop() }
        let special = try SpecialFiles()
        let notNamespace = "is not a namespace file; give a path such as /proc/PID/ns/net or a bind mount of one"

        // A FIFO is never opened for reading, so it cannot block; a device is never opened at all.
        for file in [special.fifo, special.linkToFIFO, special.socket, "/dev/null", "/dev/zero", "/tmp", "/proc/\(target.pid)/ns"] {
            let result = try runNsexec(["-t", "\(target.pid)", "--net=\(file)", "true"], timeout: 10)
            expectRejected(result, "\(file) \(notNamespace)", file)
        }
        let missing = try runNsexec(["-t", "\(target.pid)", "--net=/nsexec-missing", "true"])
        expectRejected(missing, "cannot open net namespace file /nsexec-missing: No such file or directory; give a path such as /proc/PID/ns/net or /run/netns/NAME",
                       "missing file")
    }

    @Test("namespace files of other file types, init pipe")
    func namespaceFileTypesInitPipe() throws {
        let special = try SpecialFiles()
        let notNamespace = "is not a namespace file; give a file under /proc/PID/ns or a bind mount of one"
        let cases: [(path: String, error: String)] = [
            (special.fifo, "\(special.fifo) \(notNamespace)"),
            (special.socket, "\(special.socket) \(notNamespace)"),
            ("/dev/null", "/dev/null \(notNamespace)"),
            ("/tmp", "/tmp \(notNamespace)"),
            ("/etc/hostname", "/etc/hostname \(notNamespace)"),
            ("proc/self/ns/net", "cannot open net namespace file proc/self/ns/net: No such file or directory; check that the process or namespace file exists"),
        ]

        for (path, error) in cases {
            let run = try InitPipeRun()
            var message = BootstrapMessage()
            message.setNamespacePaths([(.net, path)])
            run.send(message.encoded())
            shutdown(run.initPipe, Int32(SHUT_WR))
            let records = errorRecords(run.readToEnd())
            #expect(describe(waitStatus: waitForChild(run.pid)) == "exited with status 125", "\(path)")
            for pid in Set(records.flatMap(\.pids)) where pid > 0 { waitForChild(pid) }
            // Stage 1 reports the cause; stage 0 adds that stage 1 failed.
            #expect(records.first?.error == error, "\(path): records \(records)")
            #expect(waitUntilNoProcess(marker: run.marker).isEmpty, "\(path)")
        }
    }

    // MARK: - State files

    /// crun status files and the error after "nsexec: " (PATH is the state file).
    static let crunStates: [(contents: String, error: String)] = [
        ("", "cannot parse state of container box (PATH): unexpected end of data at byte 0; the file is damaged, recreate the container"),
        ("{", "cannot parse state of container box (PATH): expected a key at byte 1; the file is damaged, recreate the container"),
        ("not json", "cannot parse state of container box (PATH): invalid literal at byte 1; the file is damaged, recreate the container"),
        (#"{"pid": 12"#, "cannot parse state of container box (PATH): unexpected end of data at byte 10; the file is damaged, recreate the container"),
        (#"{"pid": 12, "process-start-time": 5} x"#, "cannot parse state of container box (PATH): trailing data at byte 37; the file is damaged, recreate the container"),
        (String(repeating: "[", count: 100), "cannot parse state of container box (PATH): nesting too deep at byte 64; the file is damaged, recreate the container"),
        ("\u{01}\u{02}", "cannot parse state of container box (PATH): invalid value at byte 0; the file is damaged, recreate the container"),
        (#"{"process-start-time": 5}"#, "state of container box (PATH) has no valid pid; the container is not running or the file is damaged"),
        (#"{"pid": -3, "process-start-time": 5}"#, "state of container box (PATH) has no valid pid; the container is not running or the file is damaged"),
        (#"{"pid": "12", "process-start-time": 5}"#, "state of container box (PATH) has no valid pid; the container is not running or the file is damaged"),
        (#"{"pid": 1.5, "process-start-time": 5}"#, "state of container box (PATH) has no valid pid; the container is not running or the file is damaged"),
        (#"{"pid": 2147483648, "process-start-time": 5}"#, "state of container box (PATH) has no valid pid; the container is not running or the file is damaged"),
        ("[1, 2]", "state of container box (PATH) has no valid pid; the container is not running or the file is damaged"),
        (#"{"pid": 12}"#, "state of container box (PATH) has no valid process-start-time; the file is damaged"),
        (#"{"pid": 12, "process-start-time": -1}"#, "state of container box (PATH) has no valid process-start-time; the file is damaged"),
    ]

    @Test("crun state files, damaged and truncated")
    func crunStateFiles() throws {
        for (contents, error) in Self.crunStates {
            let state = try StateDirectory(runtime: .crun, contents: Array(contents.utf8))
            let result = try runNsexec(["--container", "box", "--runtime-root", state.root, "true"])
            expectRejected(result, error.replacingOccurrences(of: "PATH", with: state.file), "status \(contents.debugDescription)")
        }
    }

    @Test("state files that are not regular files", arguments: [BusyboxContainer.Runtime.runc, .crun])
    func stateFileTypes(runtime: BusyboxContainer.Runtime) throws {
        let special = try SpecialFiles()
        for source in [special.fifo, special.socket, "/dev/zero", "/tmp"] {
            let state = try StateDirectory(runtime: runtime)
            try FileManager.default.createSymbolicLink(atPath: state.file, withDestinationPath: source)
            let result = try runNsexec(["--container", "box", "--runtime-root", state.root, "true"], timeout: 10)
            expectRejected(result, "cannot read state of container box (\(state.file)): not a regular file; the runtime writes its state as one, recreate the container",
                           "\(runtime) state linked to \(source)")
        }
    }

    // MARK: - Bootstrap message

    /// Messages that the parser rejects and that the Bootstrap suites do not cover, with the error.
    static let bootstrapMessages: [(name: String, message: [UInt8], error: String)] = {
        func message(_ build: (inout BootstrapMessage) -> Void) -> [UInt8] {
            var message = BootstrapMessage()
            build(&message)
            return message.encoded()
        }
        var trailing = message { $0.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "0") }
        trailing += [0, 0]
        withUnsafeBytes(of: UInt32(trailing.count)) { trailing.replaceSubrange(0..<4, with: $0) }
        return [
            ("u32 of 2 bytes", message { $0.append(type: NSEXEC_CLONE_FLAGS_ATTR, payload: [0, 0]) },
             "invalid bootstrap message: attribute 27281 has a 2-byte payload, expected 4"),
            ("u8 of 4 bytes", message { $0.append(type: NSEXEC_SETGROUP_ATTR, uint32: 1) },
             "invalid bootstrap message: attribute 27285 has a 4-byte payload, expected 1"),
            ("rootless euid of 4 bytes", message { $0.append(type: NSEXEC_ROOTLESS_EUID_ATTR, uint32: 1) },
             "invalid bootstrap message: attribute 27287 has a 4-byte payload, expected 1"),
            ("attribute twice", message {
                $0.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "0")
                $0.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "0")
            }, "invalid bootstrap message: attribute 27286 appears twice"),
            ("empty uid map helper path", message { $0.append(type: NSEXEC_UIDMAPPATH_ATTR, payload: []) },
             "invalid bootstrap message: attribute 27288 is not a valid path"),
            ("empty namespace path", message { $0.append(type: NSEXEC_NS_PATHS_ATTR, text: "net:") },
             "invalid bootstrap message: empty path for net namespace"),
            ("NUL inside namespace paths", message { $0.append(type: NSEXEC_NS_PATHS_ATTR, payload: Array("net:/a\u{0}b".utf8)) },
             "invalid bootstrap message: namespace paths contain a NUL byte"),
            ("trailing bytes", trailing, "invalid bootstrap message: 2 trailing bytes after the last attribute"),
        ]
    }()

    @Test("bootstrap message fields the parser rejects")
    func bootstrapFields() throws {
        for (name, message, error) in Self.bootstrapMessages {
            let parsed = parseBootstrapError(message)
            #expect(parsed.error == error, "\(name): parser")
            #expect(parsed.storageFreed, "\(name)")

            let run = try InitPipeRun()
            run.send(message)
            shutdown(run.initPipe, Int32(SHUT_WR))
            let records = errorRecords(run.readToEnd())
            #expect(describe(waitStatus: waitForChild(run.pid)) == "exited with status 125", "\(name)")
            #expect(records.map(\.error) == [error], "\(name): records")
            #expect(records.first?.pids == [0, 0], "\(name): no stage started")
            #expect(run.stderrLines == ["nsexec: \(error)"], "\(name)")
        }
    }

    /// Messages that parse, with values that the kernel rejects when stage 0 writes them.
    static let bootstrapValues: [(name: String, message: [UInt8], error: String)] = {
        func message(_ build: (inout BootstrapMessage) -> Void) -> [UInt8] {
            var message = BootstrapMessage()
            build(&message)
            return message.encoded()
        }
        return [
            ("uid map text", message {
                $0.setCloneFlags(Namespace.user.cloneFlag)
                $0.append(type: NSEXEC_UIDMAP_ATTR, text: "not a map")
            }, "cannot write uid map of stage 1 (pid STAGE1): Invalid argument; check the map and that the caller may map these ids"),
            ("gid map text", message {
                $0.setCloneFlags(Namespace.user.cloneFlag)
                $0.append(type: NSEXEC_GIDMAP_ATTR, text: "0 0")
            }, "cannot write gid map of stage 1 (pid STAGE1): Invalid argument; check the map and that the caller may map these ids"),
            ("oom_score_adj text", message { $0.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "abc") },
             "cannot write oom_score_adj: Invalid argument; give an integer from -1000 to 1000"),
            ("oom_score_adj range", message { $0.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "5000") },
             "cannot write oom_score_adj: Invalid argument; give an integer from -1000 to 1000"),
            ("time offsets text", message {
                $0.setCloneFlags(Namespace.time.cloneFlag)
                $0.append(type: NSEXEC_TIMENSOFFSET_ATTR, text: "monotonic x y")
            }, "cannot write time offsets to /proc/STAGE1/timens_offsets: Invalid argument; offsets are lines of 'monotonic|boottime SECONDS NANOSECONDS'"),
        ]
    }()

    @Test("bootstrap message values the kernel rejects")
    func bootstrapValuesRejected() throws {
        for (name, message, error) in Self.bootstrapValues {
            let run = try InitPipeRun()
            run.send(message)
            shutdown(run.initPipe, Int32(SHUT_WR))
            let records = errorRecords(run.readToEnd())
            #expect(describe(waitStatus: waitForChild(run.pid)) == "exited with status 125", "\(name)")
            let stages = Set(records.flatMap(\.pids)).filter { $0 > 0 }
            for pid in stages { waitForChild(pid) }

            // Stage 0 reports it, naming stage 1 where the file is stage 1's.
            let first = try #require(records.first, "\(name): no error record")
            let stage1 = first.pids.first ?? 0
            #expect(first.error == error.replacingOccurrences(of: "STAGE1", with: "\(stage1)"), "\(name)")
            #expect(waitUntilNoProcess(marker: run.marker).isEmpty, "\(name)")
        }
    }

    // MARK: - Process message

    /// Process messages and the error stage 2 reports.
    static let processMessages: [(name: String, message: [UInt8], error: String)] = {
        let program = (NSEXEC_PROCESS_ARG_ATTR, Array("/bin/true".utf8) + [0])
        var pastEnd = rawProcessMessage([program])
        withUnsafeBytes(of: UInt16(64)) { pastEnd.replaceSubrange(16..<18, with: $0) }
        var belowHeader = rawProcessMessage([program])
        withUnsafeBytes(of: UInt16(2)) { belowHeader.replaceSubrange(16..<18, with: $0) }
        let manyArguments = rawProcessMessage(Array(repeating: program, count: 4097))
        let manyCgroups = rawProcessMessage([program] + (0..<17).map { _ in (NSEXEC_PROCESS_CGROUP_ATTR, withUnsafeBytes(of: UInt32(1)) { Array($0) }) })
        return [
            ("wrong type", rawProcessMessage(type: 62002, [program]), "invalid process message: type 62002, expected 62001"),
            ("no program", rawProcessMessage([(NSEXEC_PROCESS_ENV_ATTR, Array("PATH=/bin".utf8) + [0])]), "invalid process message: no program"),
            ("empty program", rawProcessMessage([(NSEXEC_PROCESS_ARG_ATTR, [0])]), "no program to execute"),
            ("argument without NUL", rawProcessMessage([(NSEXEC_PROCESS_ARG_ATTR, Array("/bin/true".utf8))]),
             "invalid process message: bad string in attribute 27401"),
            ("argument with inner NUL", rawProcessMessage([(NSEXEC_PROCESS_ARG_ATTR, Array("/bin\u{0}/true".utf8) + [0])]),
             "invalid process message: bad string in attribute 27401"),
            ("working directory without NUL", rawProcessMessage([program, (NSEXEC_PROCESS_CWD_ATTR, Array("/tmp".utf8))]),
             "invalid process message: bad string in attribute 27403"),
            ("u32 of 2 bytes", rawProcessMessage([program, (NSEXEC_PROCESS_FLAGS_ATTR, [0, 0])]),
             "invalid process message: attribute 27406 is not a u32"),
            ("unknown attribute", rawProcessMessage([program, (27499, Array("x".utf8) + [0])]),
             "invalid process message: unknown attribute type 27499"),
            ("attribute past end", pastEnd, "invalid process message: attribute 27401 has length 64"),
            ("attribute length below 4", belowHeader, "invalid process message: attribute 27401 has length 2"),
            ("over 4096 arguments", manyArguments, "invalid process message: over 4096 entries"),
            ("over 16 cgroup fds", manyCgroups, "invalid process message: too many cgroup fds"),
            ("root fd not open", rawProcessMessage([program, (NSEXEC_PROCESS_ROOT_ATTR, withUnsafeBytes(of: UInt32(999)) { Array($0) })]),
             "cannot change to the target's root directory: Bad file descriptor"),
        ]
    }()

    @Test("process message fields")
    func processMessageFields() throws {
        for (name, message, error) in Self.processMessages {
            let outcome = try runProcessMessage(message)
            #expect(outcome.stage0 == "exited with status 0", "\(name)")
            #expect(outcome.stage2 == "exited with status 125", "\(name)")
            #expect(outcome.records.map(\.error) == [error], "\(name)")
            #expect(outcome.stderr == ["nsexec: \(error)"], "\(name)")
            #expect(outcome.leftovers.isEmpty, "\(name)")
        }
    }
}
