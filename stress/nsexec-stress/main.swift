// nsexec-stress: runs many programs through the NSExec library and checks each
// one's output and exit status. scripts/stress runs it against a container.
//
// Usage: nsexec-stress PID SEQUENTIAL WORKERS PER_WORKER
//
// The program is a shell that prints a token and its open fds, then exits with
// a status from 0 to 6, in every namespace of PID that differs from ours. It
// runs SEQUENTIAL times one after another while this process has one thread
// (the fork path). Then WORKERS threads run it PER_WORKER times each (the
// helper path, with the nsexec binary next to this executable or NSEXEC_HELPER).
// Prints one key=value line per phase and exits 1 if any exec returned the
// wrong output or status, or if fds or child processes were left behind.
import CNSExec
import Glibc
import NSExec

/// Tells whether this process has children, zombies included, with a waitid that neither blocks nor reaps.
func hasChildren() -> Bool {
    var info = siginfo_t()
    return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0
}

/// Reads fd to its end.
func readAll(_ fd: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { return result }
        result += buffer[0..<count]
    }
}

/// Writes one line to stderr with a single write, so that lines of threads do not mix.
func printError(_ line: String) {
    let bytes = Array("nsexec-stress: \(line)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// The program of every exec: it prints its first argument and its open fds (fd 3 is the
/// glob's own directory stream), then exits with its second argument.
let program = ["sh", "-c", "cd /proc/self/fd && echo \"$1\" *; exit \"$2\"", "sh"]

/// Runs the program once with token and status; returns nil when its output and status
/// are as expected, else what was wrong.
func execOnce(_ base: ExecSpec, token: String, status: Int32) -> String? {
    var spec = base
    spec.arguments = program + [token, "\(status)"]

    var output: [Int32] = [-1, -1]
    guard nsexec_pipe_cloexec(&output) == 0 else { return "\(token): cannot create a pipe: \(String(cString: strerror(errno)))" }
    defer { close(output[0]) }
    spec.standardOutput = output[1]

    let termination: Termination
    do {
        termination = try NSExec.run(spec)
    } catch {
        close(output[1])
        return "\(token): \(error)"
    }
    close(output[1])

    let printed = String(decoding: readAll(output[0]), as: UTF8.self)
    if termination != .exited(status) { return "\(token): \(termination), expected exit status \(status)" }
    let expected = token + " 0 1 2 3\n"
    if printed != expected { return "\(token): printed \(printed.debugDescription), expected \(expected.debugDescription)" }
    return nil
}

/// One thread's share of the concurrent phase and what came of it.
final class Worker {
    let spec: ExecSpec
    let index: Int
    let count: Int
    var failures = 0

    init(spec: ExecSpec, index: Int, count: Int) {
        self.spec = spec
        self.index = index
        self.count = count
    }

    func run() {
        for exec in 0..<count {
            if let problem = execOnce(spec, token: "lib-thread\(index)-\(exec)", status: Int32(exec % 7)) {
                failures += 1
                if failures <= 5 { printError(problem) }
            }
        }
    }
}

/// Runs the Worker passed, retained, as context: the pthread start routine of a worker.
/// It is a plain function, because a closure written in top-level code would be isolated
/// to the main actor, and the runtime traps when it runs on another thread.
func runWorker(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    Unmanaged<Worker>.fromOpaque(context).takeRetainedValue().run()
    return nil
}

let arguments = CommandLine.arguments
guard arguments.count == 5, let pid = Int32(arguments[1]), pid > 0,
      let sequential = Int(arguments[2]), let workerCount = Int(arguments[3]), let perWorker = Int(arguments[4]),
      sequential >= 0, workerCount >= 0, perWorker >= 0 else {
    printError("usage: nsexec-stress PID SEQUENTIAL WORKERS PER_WORKER")
    exit(2)
}

var spec = ExecSpec(target: .pid(pid))
spec.allNamespaces = true
var failed = false

// Sequential: this process has one thread here, so NSExec takes the fork path.
let sequentialMode = NSExec.currentThreadCount() > 1 ? "helper" : "fork"
var fdsBefore = NSExec.openDescriptorCount()
var failures = 0
for exec in 0..<sequential {
    if let problem = execOnce(spec, token: "lib-seq-\(exec)", status: Int32(exec % 7)) {
        failures += 1
        if failures <= 5 { printError(problem) }
    }
}
var fdsAfter = NSExec.openDescriptorCount()
var leftChildren = hasChildren()
print("library-sequential execs=\(sequential) failures=\(failures) mode=\(sequentialMode)"
    + " fds_before=\(fdsBefore) fds_after=\(fdsAfter) children_left=\(leftChildren)")
failed = failed || failures > 0 || fdsAfter != fdsBefore || leftChildren

// Concurrent: with several threads running, NSExec takes the helper path. Plain
// threads, not Swift tasks, because NSExec.run blocks in waitpid.
let workers = (0..<workerCount).map { Worker(spec: spec, index: $0, count: perWorker) }
fdsBefore = NSExec.openDescriptorCount()
var handles: [pthread_t] = []
for worker in workers {
    var handle = pthread_t()
    let result = pthread_create(&handle, nil, runWorker, Unmanaged.passRetained(worker).toOpaque())
    guard result == 0 else {
        printError("pthread_create failed: \(String(cString: strerror(result)))")
        exit(1)
    }
    handles.append(handle)
}
for handle in handles {
    pthread_join(handle, nil)
}
fdsAfter = NSExec.openDescriptorCount()
leftChildren = hasChildren()
failures = workers.reduce(0) { $0 + $1.failures }
print("library-concurrent execs=\(workerCount * perWorker) failures=\(failures) threads=\(workerCount) mode=helper"
    + " fds_before=\(fdsBefore) fds_after=\(fdsAfter) children_left=\(leftChildren)")
failed = failed || failures > 0 || fdsAfter != fdsBefore || leftChildren

exit(failed ? 1 : 0)
