import CNSExec
import Glibc

/// Runs programs inside the namespaces of running processes.
public enum NSExec {
    /// Runs `spec` and waits for the program: returns how it ended, or throws why it could not start.
    public static func run(_ spec: ExecSpec) throws -> Termination {
        let plan = try spec.makePlan()
        defer { plan.close() }

        let mode: SpawnMode
        switch spec.spawnMode {
        case .automatic: mode = currentThreadCount() > 1 ? .helper : .fork
        case .fork, .helper: mode = spec.spawnMode
        }

        let terminal = spec.tty ? try TerminalSession.prepare() : TerminalSession.inactive()
        defer { terminal.close() }

        let started = mode == .fork
            ? try ForkSpawner(spec: spec, plan: plan, terminal: terminal).spawn()
            : try HelperSpawner(spec: spec, plan: plan, terminal: terminal).spawn()
        return try Supervisor(started: started, terminal: terminal).wait()
    }

    /// Counts the threads of the calling process in /proc/self/task.
    public static func currentThreadCount() -> Int {
        max(entryCount(of: "/proc/self/task"), 1)
    }

    /// Counts the open fds of the calling process in /proc/self/fd, or returns -1. The
    /// library benchmark and load test check with it that runs leave no fd behind.
    package static func openDescriptorCount() -> Int {
        let count = entryCount(of: "/proc/self/fd")
        // The directory stream has one fd of its own open while counting.
        return count < 0 ? -1 : count - 1
    }

    /// Counts the entries of a directory whose names do not start with ".", or returns -1.
    private static func entryCount(of path: StaticString) -> Int {
        guard let dir = opendir(FileIO.cString(path)) else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
        }
        return count
    }
}

/// Stage 2 running (or about to exec), with what the supervisor needs to wait for it.
struct StartedStages {
    var stage2: Int32
    /// Other children to reap: stage 0 (helper path) and stage 1.
    var others: [Int32]
    /// The pty master, with --tty.
    var ttyMaster: Int32 = -1
    /// Signals blocked for forwarding, with the mask to restore afterwards. Plain fields,
    /// not a sigset_t?: copying an Optional of it goes through runtime metadata.
    var forwarding = false
    var blocked = sigset_t()
    var savedMask = sigset_t()
    /// On the direct path, the report pipe, read once the program has ended: one wakeup
    /// of the supervisor per run instead of two. -1 when the report was read at the start.
    var pendingReport: Int32 = -1
    /// The target, for the error when the direct child never got in.
    var target: ResolvedTarget
}

extension StartedStages {
    /// Returns the error for a direct child that died before it reported being in every namespace.
    func directChildFailure() -> NSExecError {
        // A PID namespace's init kills the processes in it before it counts as exited, and
        // waits until they are reaped. The child is reaped by now, so the exit follows.
        let targetExited = target.pidfd >= 0 && nsexec_pidfd_exited(target.pidfd, 200)
        return NSExecError(.stage, "cannot enter \(target.label): " + (targetExited
            ? "the target process exited while nsexec joined it; start it again or pick a running one"
            : "stage 2 exited before it started"))
    }
}

/// The signals the CLI forwards to the program.
let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH]

/// The records that the stages wrote on the init pipe: the pid line and error records.
struct StageReport {
    var stage1: Int32?
    var stage2: Int32?
    /// The direct child is in every namespace: after this, its end is the program's.
    var entered = false
    var error: String?
    var status: Int32 = 125
    /// Stages that a failing stage had started, to reap.
    var pids: [Int32] = []

    /// Reads records from fd until every writer has closed it.
    static func read(fd: Int32) -> StageReport {
        // Plain memory, not [UInt8]: the first array of bytes sets up the standard library's
        // table of prespecialized array types, whose pages the CLI's run otherwise never maps.
        // It starts small and grows to limit, because the usual report is one short line.
        let limit = 1 << 16
        var capacity = 1024
        var buffer = malloc(capacity)!.assumingMemoryBound(to: UInt8.self)
        defer { free(buffer) }
        var length = 0
        while length < limit {
            if length == capacity {
                capacity *= 2
                buffer = realloc(buffer, capacity)!.assumingMemoryBound(to: UInt8.self)
            }
            let count = Glibc.read(fd, buffer + length, capacity - length)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            length += count
        }

        var report = StageReport()
        let bytes = UnsafeBufferPointer(start: buffer, count: length)
        var start = 0
        while start < length {
            var end = start
            while end < length && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            if end > start { report.add(line: UnsafeBufferPointer(rebasing: bytes[start..<end])) }
            start = end + 1
        }
        return report
    }

    private mutating func add(line: UnsafeBufferPointer<UInt8>) {
        // The CLI's only record when a run works. Matching it without the JSON parser keeps
        // Dictionary off the CLI's path: its first use scans every protocol conformance
        // in the binary.
        if line.elementsEqual("{\"entered\":true}".utf8) {
            entered = true
            return
        }
        guard let record = try? JSONParser.parse(Array(line)) else {
            error = error ?? "a stage wrote an unreadable record: \(String(decoding: line, as: UTF8.self))"
            return
        }
        if let pid = record["stage1_pid"]?.integerValue { stage1 = Int32(pid) }
        if let pid = record["stage2_pid"]?.integerValue { stage2 = Int32(pid) }
        if let message = record["error"]?.stringValue, error == nil {
            error = message
            status = Int32(record["status"]?.integerValue ?? 125)
        }
        if case .array(let pids)? = record["pids"] {
            self.pids += pids.compactMap { $0.integerValue }.filter { $0 > 0 }.map { Int32($0) }
        }
    }

    /// Builds the error to throw for a failed record.
    func failure(prefix: String) -> NSExecError {
        let message = prefix + (error ?? "a stage failed without a message")
        switch status {
        case 126: return NSExecError(.notExecutable, message)
        case 127: return NSExecError(.notFound, message)
        default: return NSExecError(.stage, message)
        }
    }
}

/// Waits for a child, retrying on EINTR; returns its wait status or nil.
@discardableResult
func reap(_ pid: Int32) -> Int32? {
    guard pid > 0 else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        if errno != EINTR { return nil }
    }
    return status
}

/// A NULL-terminated vector of C strings for the C core: copies, freed with the vector, or
/// the strings of a vector that outlives it, such as the CLI's argv. Plain memory, not an
/// array, for the reason given at CStringPool.
final class CStringArray {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private(set) var count = 0
    private let capacity: Int
    private let ownsStrings: Bool

    /// Copies strings.
    init(_ strings: [String]) {
        capacity = strings.count
        ownsStrings = true
        pointers = .allocate(capacity: capacity + 1)
        for string in strings {
            pointers[count] = duplicate(string)
            count += 1
        }
        pointers[count] = nil
    }

    /// Points at the strings of vector, which ends with a NULL pointer, without copying them.
    init(borrowing vector: ArgumentVector) {
        var length = 0
        while vector.pointer[length] != nil { length += 1 }
        capacity = length
        count = length
        ownsStrings = false
        pointers = .allocate(capacity: length + 1)
        pointers.initialize(from: UnsafeMutablePointer(mutating: vector.pointer), count: length + 1)
    }

    /// Creates an empty vector for copies of up to capacity C strings.
    init(copyingCapacity capacity: Int) {
        self.capacity = capacity
        ownsStrings = true
        pointers = .allocate(capacity: capacity + 1)
        pointers[0] = nil
    }

    /// Appends a copy of a C string.
    func append(copying string: UnsafePointer<CChar>) {
        precondition(ownsStrings && count < capacity, "CStringArray has room for \(capacity) strings")
        pointers[count] = strdup(string)
        count += 1
        pointers[count] = nil
    }

    deinit {
        if ownsStrings {
            for index in 0..<count { free(pointers[index]) }
        }
        pointers.deallocate()
    }
}

/// NUL-terminated copies of up to `capacity` strings that live as long as the pool. Plain
/// memory, not an array: an array of pointers would instantiate generic metadata, about
/// 25 µs of the CLI's run in a profile.
final class CStringPool {
    private let copies: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let capacity: Int
    private var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        copies = .allocate(capacity: capacity)
    }

    /// Returns a copy of value, or nil for nil.
    func add(_ value: String?) -> UnsafePointer<CChar>? {
        precondition(count < capacity, "CStringPool holds \(capacity) strings")
        guard let value, let copy = duplicate(value) else { return nil }
        copies[count] = copy
        count += 1
        return UnsafePointer(copy)
    }

    deinit {
        for index in 0..<count { free(copies[index]) }
        copies.deallocate()
    }
}

/// Returns a strdup copy of string. withCString reads a native String in place, whereas
/// passing the String as a pointer argument first copies a small string into a new array.
private func duplicate(_ string: String) -> UnsafeMutablePointer<CChar>? {
    string.withCString { strdup($0) }
}

extension StartedStages {
    /// Blocks the forwarded signals in the caller and keeps the previous mask, which stage 2
    /// restores before the exec.
    mutating func blockForwardedSignals() {
        sigemptyset(&blocked)
        for signal in forwardedSignals { sigaddset(&blocked, signal) }
        pthread_sigmask(SIG_BLOCK, &blocked, &savedMask)
        forwarding = true
    }

    /// Sets the caller's signal mask back to the one from before blockForwardedSignals.
    func restoreSignalMask() {
        guard forwarding else { return }
        var saved = savedMask
        pthread_sigmask(SIG_SETMASK, &saved, nil)
    }
}
