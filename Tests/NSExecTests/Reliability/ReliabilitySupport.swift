import CNSExec
import Foundation
import Glibc
import NSExec
import Testing

/// Returns a fresh `NSEXEC_TEST_MARKER=UUID` environment entry. Every stage inherits it from the
/// nsexec process that the test starts, so the test can find stages by it.
func makeMarker() -> String {
    "NSEXEC_TEST_MARKER=\(UUID().uuidString)"
}

/// Returns the state letter of a process from /proc/PID/stat ("R", "S", "T", "Z", ...), or nil
/// when the process is gone.
func processState(_ pid: Int32) -> Character? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    return text[text.index(after: close)...].split(separator: " ").first?.first
}

/// Waits until a process is a zombie or gone; returns false when it still runs after timeout seconds.
func waitForExit(_ pid: Int32, timeout: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        guard let state = processState(pid) else { return true }
        if state == "Z" || state == "X" { return true }
        usleep(2000)
    }
    return false
}

/// Returns the parent pid of a process from /proc/PID/stat, or nil when the process is gone.
func parentPID(of pid: Int32) -> Int32? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? Int32(fields[1]) : nil
}

/// Waits until a process carrying marker is stopped, as nsexec_test_hook leaves a stage,
/// and returns its pid; nil after timeout seconds.
func waitForStoppedProcess(marker: String, timeout: TimeInterval = 10) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let pid = processes(withEnvironmentEntry: marker).first(where: { processState($0) == "T" }) {
            return pid
        }
        usleep(2000)
    }
    return nil
}

/// Waits until no live process carries marker; returns the pids still left after timeout.
func waitUntilNoProcess(marker: String, timeout: TimeInterval = 5) -> [Int32] {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let left = processes(withEnvironmentEntry: marker)
        if left.isEmpty || Date() > deadline { return left }
        usleep(5000)
    }
}

/// Waits for a child of the test process by pid, so that the children of tests running in
/// parallel are left alone. Returns its wait status, or nil when it is not a child. A child
/// still running after timeout seconds is killed and reported.
@discardableResult
func waitForChild(_ pid: Int32, timeout: TimeInterval = 30) -> Int32? {
    var status: Int32 = 0
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return status }
        if result < 0 && errno != EINTR { return nil }
        if Date() > deadline {
            Issue.record("pid \(pid) still running after \(timeout) s; killing it")
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return status
        }
        usleep(1000)
    }
}

/// Returns a wait status as text: "exited with status N" or "killed by signal N".
func describe(waitStatus status: Int32?) -> String {
    guard let status else { return "not reaped" }
    let signal = status & 0x7f
    return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "killed by signal \(signal)"
}

/// The nsexec CLI running in the background with a marker in its environment and stdout
/// and stderr going to files, for tests that act on it while it runs.
final class BackgroundCLI {
    let marker: String
    let process: Subprocess
    private let directory: String

    init(_ arguments: [String], environment: [String: String] = [:], workingDirectory: String? = nil) throws {
        marker = makeMarker()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let out = open(directory + "/out", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        let err = open(directory + "/err", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        defer {
            close(out)
            close(err)
        }

        let parts = marker.split(separator: "=", maxSplits: 1).map(String.init)
        var argv = [Machine.nsexecBinary] + arguments
        if let workingDirectory {
            // Subprocess has no cwd option: a shell changes directory, then becomes nsexec.
            argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", workingDirectory] + argv
        }
        process = try Subprocess(argv, environment: environment.merging([parts[0]: parts[1]]) { $1 },
                                 stdout: out, stderr: err)
    }

    var stdout: String { (try? String(contentsOfFile: directory + "/out", encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: directory + "/err", encoding: .utf8)) ?? "" }

    /// Waits for the CLI; returns its exit status (128 + N for signal N), or nil on timeout.
    func wait(timeout: TimeInterval = 30) -> Int32? {
        process.wait(timeout: timeout)
    }

    deinit {
        process.kill(SIGKILL)
        process.wait()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The nsexec binary driven over its init pipe by the test, as runc drives its own
/// nsexec, with a test hook or a marker in its environment. Stage 1 and stage 2 are
/// CLONE_PARENT siblings of stage 0, so they are children of the process that started
/// nsexec: the test itself, or with `viaShell` a shell between the two. The shell waits
/// for nsexec, then sleeps until it is killed. A test can kill it to play a parent that
/// dies, or let it take the stages whose pids the test cannot learn.
final class InitPipeRun {
    /// The process the test started: nsexec (stage 0), or the shell.
    let pid: Int32
    /// The test's end of the init pipe, a socketpair; -1 once closed.
    private(set) var initPipe: Int32
    let marker: String
    private let stderrPath: String

    init(environment: [String] = [], viaShell: Bool = false) throws {
        marker = makeMarker()
        stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-initpipe-\(UUID().uuidString)").path

        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw TargetError("cannot create the init pipe: \(String(cString: strerror(errno)))")
        }
        let err = open(stderrPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        // Above every target number, so that no dup2 below overwrites a later source.
        let child = fcntl(pair[1], F_DUPFD_CLOEXEC, 100)
        close(pair[1])
        defer {
            close(child)
            close(err)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, err, 2)
        posix_spawn_file_actions_adddup2(&actions, child, 3)

        // A parent that is not nsexec itself: the shell forks nsexec, then waits for it.
        let argv = viaShell ? ["/bin/sh", "-c", "\"$0\"; exec sleep 600", Machine.nsexecBinary] : [Machine.nsexecBinary]
        let envp = ["_LIBCONTAINER_INITPIPE=3", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", marker] + environment
        var spawned: pid_t = 0
        let result = BootstrapDriver.withCStrings(argv) { argvPointers in
            BootstrapDriver.withCStrings(envp) { envpPointers in
                posix_spawn(&spawned, argv[0], &actions, nil, argvPointers, envpPointers)
            }
        }
        guard result == 0 else {
            close(pair[0])
            throw TargetError("cannot start \(argv[0]): \(String(cString: strerror(result)))")
        }
        pid = spawned
        initPipe = pair[0]
    }

    /// Sends bytes; false when nsexec has closed its end.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        BootstrapDriver.sendAll(fd: initPipe, bytes)
    }

    /// Closes the test's end of the init pipe, as a parent that gives up early.
    func closeInitPipe() {
        if initPipe >= 0 { close(initPipe) }
        initPipe = -1
    }

    /// Reads one line from the init pipe (the pid line or an error record).
    func readLine() -> String {
        BootstrapDriver.readFrom(fd: initPipe, stopAtNewline: true)
    }

    /// Reads the init pipe until every stage has closed it.
    func readToEnd() -> String {
        BootstrapDriver.readFrom(fd: initPipe, stopAtNewline: false)
    }

    /// The lines that nsexec and its stages wrote to stderr.
    var stderrLines: [String] {
        let text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    deinit {
        closeInitPipe()
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}

/// Builds a bootstrap message that joins the target's namespaces by /proc/PID/ns paths, as runc sends it.
func bootstrapMessage(joining pid: Int32, _ namespaces: [Namespace] = [.ipc, .uts, .net, .pid, .mnt]) -> [UInt8] {
    var message = BootstrapMessage()
    message.setNamespacePaths(namespaces.map { ($0, "/proc/\(pid)/ns/\($0.rawValue)") })
    return message.encoded()
}

/// Builds the process message that makes stage 2 exec program.
func processMessage(_ program: [String]) -> [UInt8] {
    BootstrapDriver.processMessage(program: program, environment: [BootstrapDriver.searchPath])
}

/// Parses a pid line `{"stage1_pid":N,"stage2_pid":M}`; nil for any other line.
func stagePIDs(_ line: String) -> (stage1: Int32, stage2: Int32)? {
    BootstrapDriver.parsePIDLine(line)
}

/// Parses the error records among init pipe lines.
func errorRecords(_ text: String) -> [BootstrapDriver.ErrorRecord] {
    text.split(separator: "\n").compactMap { BootstrapDriver.parseErrorRecord(String($0)) }
}
