import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

/// Drives the nsexec binary over its init pipe the way runc drives its own nsexec. It starts
/// nsexec with one end of a socketpair as `_LIBCONTAINER_INITPIPE` and a pipe as
/// `_LIBCONTAINER_LOGPIPE`, and sends the bootstrap message. It reads the pid line, then
/// sends the process message that stage 2 execs. Stage 1 and stage 2 are `CLONE_PARENT`
/// siblings of stage 0, so they are children of the test process, which reaps them by pid.
/// The runner runs other tests at the same time, so `waitpid(-1)` would steal their children.
enum BootstrapDriver {
    /// How long a run may take before the test fails instead of hanging, in milliseconds.
    static let timeoutMilliseconds: Int32 = 30_000

    /// The search path that nsexec and the programs it runs get.
    static let searchPath = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

    /// Options of one run.
    struct Run {
        /// The bytes sent as the bootstrap message.
        var bootstrap: [UInt8]
        /// The argv that stage 2 execs.
        var program: [String] = ["/bin/true"]
        /// The program's environment; the run's marker is added.
        var environment: [String] = [BootstrapDriver.searchPath]
        var logLevel: Int32 = Int32(NSEXEC_LOG_DEBUG.rawValue)
        /// Capture the helper's stdout, which stage 2 and the program inherit.
        var captureOutput = false
        /// Shut down the test's sending side after the bootstrap message, so that a short one ends in EOF.
        var endAfterBootstrap = false
        /// Called with the stage 1 and stage 2 pids while stage 2 waits for its process message.
        var inspectStage2: ((Int32, Int32) -> Void)?
    }

    /// An error record `{"error":"...","status":N,"pids":[A,B]}` written by a failed stage.
    struct ErrorRecord {
        var error: String
        var status: Int
        var pids: [Int32]
    }

    /// The results of one run.
    struct Outcome {
        var helperPID: Int32 = -1
        /// Wait statuses; nil when the process was not reaped.
        var helperStatus: Int32?
        var stage1PID: Int32?
        var stage2PID: Int32?
        var stage1Status: Int32?
        var stage2Status: Int32?
        var errors: [ErrorRecord] = []
        /// Init pipe lines that are neither the pid line nor error records.
        var otherRecords: [String] = []
        var log = ""
        var output = ""
        /// Processes still carrying the run's environment marker after every stage was reaped.
        var leftovers: [Int32] = []

        var reportedPIDs: Bool { stage1PID != nil && stage2PID != nil }
        var logLines: [String] { log.split(separator: "\n").map(String.init) }
    }

    /// Returns whether a wait status is a normal exit with code.
    static func exited(_ status: Int32?, with code: Int32) -> Bool {
        guard let status else { return false }
        return status & 0x7f == 0 && (status >> 8) & 0xff == code
    }

    /// Runs nsexec once: sends the bootstrap message, reads the pid line, lets stage 2 exec
    /// the program, reaps every stage and collects what each pipe carried.
    static func run(_ run: Run) throws -> Outcome {
        let marker = "NSEXEC_TEST_MARKER=\(UUID().uuidString)"
        let helper = try Helper(logLevel: run.logLevel, captureOutput: run.captureOutput, marker: marker)
        defer { helper.closeAll() }
        var outcome = Outcome(helperPID: helper.pid)

        // nsexec may reject a message before reading all of it: a failed send is not an error here.
        _ = sendAll(fd: helper.initPipe, run.bootstrap)
        if run.endAfterBootstrap { shutdown(helper.initPipe, Int32(SHUT_WR)) }

        let first = readFrom(fd: helper.initPipe, stopAtNewline: true)
        var rest = ""
        if let pids = parsePIDLine(first) {
            outcome.stage1PID = pids.stage1
            outcome.stage2PID = pids.stage2
            run.inspectStage2?(pids.stage1, pids.stage2)
            let process = processMessage(program: run.program, environment: run.environment + [marker])
            #expect(sendAll(fd: helper.initPipe, process), "cannot send the process message: \(String(cString: strerror(errno)))")
        } else {
            rest = first
        }
        shutdown(helper.initPipe, Int32(SHUT_WR))
        rest += readFrom(fd: helper.initPipe, stopAtNewline: false)

        for line in rest.split(separator: "\n").map(String.init) where !line.isEmpty {
            if let record = parseErrorRecord(line) {
                outcome.errors.append(record)
            } else {
                outcome.otherRecords.append(line)
            }
        }

        outcome.helperStatus = waitFor(helper.pid)
        if let stage1 = outcome.stage1PID, let stage2 = outcome.stage2PID {
            outcome.stage1Status = waitFor(stage1)
            outcome.stage2Status = waitFor(stage2)
        }
        let known = Set([outcome.stage1PID, outcome.stage2PID].compactMap { $0 })
        for pid in Set(outcome.errors.flatMap(\.pids)) where pid > 0 && !known.contains(pid) {
            _ = waitFor(pid)
        }

        outcome.log = readFrom(fd: helper.logPipe, stopAtNewline: false)
        if helper.output >= 0 { outcome.output = readFrom(fd: helper.output, stopAtNewline: false) }
        outcome.leftovers = processes(withEnvironmentEntry: marker)
        return outcome
    }

    // MARK: - Messages

    /// Builds the process message that makes stage 2 exec program with environment.
    static func processMessage(program: [String], environment: [String]) -> [UInt8] {
        var message = BootstrapMessage(type: UInt16(NSEXEC_PROCESS_MSG))
        for argument in program { message.append(type: NSEXEC_PROCESS_ARG_ATTR, cString: argument) }
        for entry in environment { message.append(type: NSEXEC_PROCESS_ENV_ATTR, cString: entry) }
        return message.encoded()
    }

    /// Builds a bare 16-byte netlink header with the given stated length and type.
    static func header(length: UInt32, type: UInt16) -> [UInt8] {
        var bytes = withUnsafeBytes(of: length) { Array($0) }
        bytes += withUnsafeBytes(of: type) { Array($0) }
        bytes += [UInt8](repeating: 0, count: 10)
        return bytes
    }

    /// Parses the line `{"stage1_pid":N,"stage2_pid":M}` plus newline, exactly.
    static func parsePIDLine(_ line: String) -> (stage1: Int32, stage2: Int32)? {
        guard line.hasSuffix("\n"),
              let object = jsonObject(String(line.dropLast())),
              Set(object.keys) == ["stage1_pid", "stage2_pid"],
              let stage1 = object["stage1_pid"] as? Int, let stage2 = object["stage2_pid"] as? Int,
              stage1 > 0, stage2 > 0 else { return nil }
        return (Int32(stage1), Int32(stage2))
    }

    static func parseErrorRecord(_ line: String) -> ErrorRecord? {
        guard let object = jsonObject(line),
              Set(object.keys) == ["error", "status", "pids"],
              let error = object["error"] as? String,
              let status = object["status"] as? Int,
              let pids = object["pids"] as? [Int] else { return nil }
        return ErrorRecord(error: error, status: status, pids: pids.map { Int32($0) })
    }

    /// Parses a log line `{"level":"...","msg":"..."}` with exactly these two string keys.
    static func parseLogLine(_ line: String) -> (level: String, msg: String)? {
        guard let object = jsonObject(line),
              Set(object.keys) == ["level", "msg"],
              let level = object["level"] as? String,
              let msg = object["msg"] as? String else { return nil }
        return (level, msg)
    }

    private static func jsonObject(_ text: String) -> [String: Any]? {
        guard let data = text.data(using: .utf8),
              let value = try? JSONSerialization.jsonObject(with: data) else { return nil }
        return value as? [String: Any]
    }

    // MARK: - Processes and pipes

    /// A started nsexec and the test's ends of its pipes.
    final class Helper {
        let pid: Int32
        let initPipe: Int32
        let logPipe: Int32
        let output: Int32

        /// Starts nsexec with the init pipe on fd 3, the log pipe on fd 4 and, when
        /// captureOutput, stdout on a pipe. Every fd the test keeps is close-on-exec, so that
        /// no process that other tests start at the same time keeps a pipe open.
        init(logLevel: Int32, captureOutput: Bool, marker: String) throws {
            var initPair: [Int32] = [-1, -1]
            var logPair: [Int32] = [-1, -1]
            var outputPair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &initPair) == 0 else {
                throw TargetError("cannot create the init pipe: \(String(cString: strerror(errno)))")
            }
            guard nsexec_pipe_cloexec(&logPair) == 0, !captureOutput || nsexec_pipe_cloexec(&outputPair) == 0 else {
                let error = String(cString: strerror(errno))
                for fd in initPair + logPair + outputPair where fd >= 0 { close(fd) }
                throw TargetError("cannot create the log or output pipe: \(error)")
            }
            defer {
                close(initPair[1])
                close(logPair[1])
                if outputPair[1] >= 0 { close(outputPair[1]) }
            }

            let binary = Machine.nsexecBinary
            guard access(binary, X_OK) == 0 else {
                for fd in [initPair[0], logPair[0], outputPair[0]] where fd >= 0 { close(fd) }
                throw TargetError("nsexec binary \(binary) is missing; run swift build first")
            }

            // Sources go above the target numbers first, so that no dup2 overwrites a later source.
            let initCopy = fcntl(initPair[1], F_DUPFD_CLOEXEC, 100)
            let logCopy = fcntl(logPair[1], F_DUPFD_CLOEXEC, 100)
            defer {
                close(initCopy)
                close(logCopy)
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, initCopy, 3)
            posix_spawn_file_actions_adddup2(&actions, logCopy, 4)
            if captureOutput { posix_spawn_file_actions_adddup2(&actions, outputPair[1], 1) }

            let argv = [binary]
            let envp = ["_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGPIPE=4", "_LIBCONTAINER_LOGLEVEL=\(logLevel)",
                        BootstrapDriver.searchPath, marker]
            var child: pid_t = 0
            let result = withCStrings(argv) { argvPointers in
                withCStrings(envp) { envpPointers in
                    posix_spawn(&child, binary, &actions, nil, argvPointers, envpPointers)
                }
            }
            guard result == 0 else {
                for fd in [initPair[0], logPair[0], outputPair[0]] where fd >= 0 { close(fd) }
                throw TargetError("cannot start \(binary): \(String(cString: strerror(result)))")
            }

            pid = child
            initPipe = initPair[0]
            logPipe = logPair[0]
            output = outputPair[0]
        }

        func closeAll() {
            for fd in [initPipe, logPipe, output] where fd >= 0 { close(fd) }
        }
    }

    /// Calls body with a NULL-terminated array of C strings.
    static func withCStrings<Result>(_ strings: [String],
                                     _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result) -> Result {
        let copies = strings.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        return (copies + [nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Sends bytes with MSG_NOSIGNAL; returns false when the peer is gone instead of raising SIGPIPE.
    static func sendAll(fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += count
        }
        return true
    }

    /// Reads until end of file, or through the first newline when stopAtNewline (one byte
    /// at a time, so that nothing after the line is consumed). Records an issue on timeout.
    static func readFrom(fd: Int32, stopAtNewline: Bool) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)

        while true {
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let count = poll(&ready, 1, left)
            if count < 0 && errno == EINTR { continue }
            if count == 0 {
                Issue.record("fd \(fd) sent nothing within \(timeoutMilliseconds) ms")
                break
            }
            if count < 0 { break }

            let length = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, stopAtNewline ? 1 : $0.count) }
            if length < 0 && errno == EINTR { continue }
            if length <= 0 { break }
            bytes += buffer[0..<length]
            if stopAtNewline && buffer[0] == UInt8(ascii: "\n") { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits for one child of the test process and returns its wait status, or nil when it is
    /// not a child. A child still running after the timeout is killed and the test fails.
    static func waitFor(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return status }
            if result < 0 && errno != EINTR { return nil }
            if Date() > deadline {
                Issue.record("pid \(pid) still running after \(timeoutMilliseconds) ms; killing it")
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return status
            }
            usleep(1000)
        }
    }
}
