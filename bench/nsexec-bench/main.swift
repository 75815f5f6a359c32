// nsexec-bench: calls the NSExec library in a loop and from concurrent threads,
// and checks that nothing leaks. scripts/bench runs it against a container.
//
// Usage: nsexec-bench PID [COUNT]
//
// Runs /bin/true in every namespace of PID that differs from ours, COUNT times
// (default 1000) one after another, then COUNT times split over 4 threads.
// Prints one line per phase as key=value pairs and exits 1 if any exec failed
// or if fds or child processes were left behind.
import Glibc
import NSExec

/// Returns the monotonic clock in seconds.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Counts the processes whose parent is this process, zombies included, from /proc/PID/stat.
func childCount() -> Int {
    guard let dir = opendir("/proc") else { return -1 }
    defer { closedir(dir) }
    let me = getpid()
    var count = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = Int32(name), let ppid = parentPID(of: pid), ppid == me else { continue }
        count += 1
    }
    return count
}

/// Returns field 4 of /proc/PID/stat, the parent pid, or nil when the process is gone.
func parentPID(of pid: Int32) -> Int32? {
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let count = read(fd, &buffer, buffer.count)
    guard count > 0 else { return nil }
    let text = String(decoding: buffer[0..<count], as: UTF8.self)
    // The command name in field 2 may contain spaces; the fields after its ")" are plain.
    guard let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? Int32(fields[1]) : nil
}

/// Runs /bin/true in the target's namespaces; returns whether it ran and exited 0.
func execTrue(_ spec: ExecSpec) -> Bool {
    do {
        return try NSExec.run(spec) == .exited(0)
    } catch {
        let line = Array("nsexec-bench: \(error)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        return false
    }
}

/// One thread's share of the concurrent phase and what came of it.
final class Worker {
    let spec: ExecSpec
    let count: Int
    var failures = 0

    init(spec: ExecSpec, count: Int) {
        self.spec = spec
        self.count = count
    }

    func run() {
        for _ in 0..<count where !execTrue(spec) {
            failures += 1
        }
    }
}

/// Runs the Worker passed, retained, as context: the start routine of a worker thread.
/// It is a plain function because a closure written in top-level code is isolated to
/// the main actor, and the runtime traps when such a closure runs on another thread.
func runWorker(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    Unmanaged<Worker>.fromOpaque(context).takeRetainedValue().run()
    return nil
}

/// Prints one result line of a phase.
func report(_ phase: String, execs: Int, failures: Int, seconds: Double, fds: (Int, Int), children: (Int, Int), extra: String = "") {
    let rate = Double(execs) / seconds
    print("\(phase) execs=\(execs) failures=\(failures) seconds=\(rounded(seconds, 3)) execs_per_second=\(rounded(rate, 1))"
        + " fds_before=\(fds.0) fds_after=\(fds.1) children_before=\(children.0) children_after=\(children.1)\(extra)")
}

func rounded(_ value: Double, _ digits: Int) -> Double {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    return (value * scale).rounded() / scale
}

/// Runs the benchmark. It is a function, not top-level code, so that its state is local:
/// scripts/build-release builds without Swift Concurrency, where top-level
/// variables would be unprotected globals.
func main() -> Never {
    let arguments = CommandLine.arguments
    guard arguments.count >= 2, let pid = Int32(arguments[1]), pid > 0 else {
        print("usage: nsexec-bench PID [COUNT]")
        exit(2)
    }
    let count = arguments.count >= 3 ? Int(arguments[2]) ?? 1000 : 1000
    let threads = 4

    var spec = ExecSpec(target: .pid(pid), arguments: ["/bin/true"])
    spec.allNamespaces = true

    var leaked = false

    // Sequential: this process has one thread here, so NSExec takes the fork path.
    let sequentialMode = NSExec.currentThreadCount() > 1 ? "helper" : "fork"
    var fds = (NSExec.openDescriptorCount(), 0)
    var children = (childCount(), 0)
    var failures = 0
    var latencies: [Double] = []
    latencies.reserveCapacity(count)
    var start = now()
    for _ in 0..<count {
        let begin = now()
        if !execTrue(spec) { failures += 1 }
        latencies.append(now() - begin)
    }
    var seconds = now() - start
    fds.1 = NSExec.openDescriptorCount()
    children.1 = childCount()
    latencies.sort()
    let median = latencies.isEmpty ? 0 : latencies[latencies.count / 2]
    report("sequential", execs: count, failures: failures, seconds: seconds, fds: fds, children: children,
           extra: " median_ms=\(rounded(median * 1000, 3)) mode=\(sequentialMode)")
    leaked = leaked || failures > 0 || fds.1 > fds.0 || children.1 > children.0

    // Concurrent: with several threads running, NSExec takes the helper path. Plain
    // threads, not Swift tasks, because NSExec.run blocks in waitpid and the
    // cooperative pool has only as many threads as there are cores.
    let workers = (0..<threads).map { index in
        Worker(spec: spec, count: count / threads + (index < count % threads ? 1 : 0))
    }
    fds = (NSExec.openDescriptorCount(), 0)
    children = (childCount(), 0)
    start = now()
    var handles: [pthread_t] = []
    for worker in workers {
        var handle = pthread_t()
        let context = Unmanaged.passRetained(worker).toOpaque()
        let result = pthread_create(&handle, nil, runWorker, context)
        guard result == 0 else {
            print("nsexec-bench: pthread_create failed: \(String(cString: strerror(result)))")
            exit(1)
        }
        handles.append(handle)
    }
    for handle in handles {
        pthread_join(handle, nil)
    }
    seconds = now() - start
    fds.1 = NSExec.openDescriptorCount()
    children.1 = childCount()
    failures = workers.reduce(0) { $0 + $1.failures }
    report("concurrent", execs: count, failures: failures, seconds: seconds, fds: fds, children: children,
           extra: " threads=\(threads) mode=helper")
    leaked = leaked || failures > 0 || fds.1 > fds.0 || children.1 > children.0

    exit(leaked ? 1 : 0)
}

main()
