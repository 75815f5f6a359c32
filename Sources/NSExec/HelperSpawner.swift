import CNSExec
import Glibc

/// The helper path: starts the nsexec binary with an init pipe and drives it with a
/// bootstrap message, as runc drives its own nsexec. Safe from a multi-threaded process,
/// because the stages run in the helper before any runtime starts there.
struct HelperSpawner {
    var spec: ExecSpec
    var plan: Plan
    var terminal: TerminalSession

    /// Child fd numbers: the init pipe and the log pipe, then every other passed fd.
    static let initPipeFD: Int32 = 3
    static let logPipeFD: Int32 = 4

    func spawn() throws -> StartedStages {
        let helper = try helperPath()

        var initPipe: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &initPipe) == 0 else {
            throw NSExecError.system("cannot create the init pipe")
        }
        defer { close(initPipe[0]) }
        var logPipe: [Int32] = [-1, -1]
        guard nsexec_pipe_cloexec(&logPipe) == 0 else {
            close(initPipe[1])
            throw NSExecError.system("cannot create the log pipe")
        }
        defer { close(logPipe[0]) }

        // Every fd the helper inherits, as (fd here, fd in the helper).
        var passed: [(Int32, Int32)] = [(initPipe[1], Self.initPipeFD), (logPipe[1], Self.logPipeFD)]
        var opened: [Int32] = [initPipe[1], logPipe[1]]
        defer { for fd in opened { close(fd) } }
        func pass(_ fd: Int32) -> Int32 {
            let number = Int32(passed.count) + Self.initPipeFD
            passed.append((fd, number))
            return number
        }

        // The wire format carries paths only: pass open fds and name them /proc/self/fd/N.
        var paths: [(Namespace, String)] = []
        for namespace in Namespace.allCases where plan.pidfdFlags & namespace.cloneFlag != 0 {
            let path = namespace.path(pid: plan.target.pid)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw NSExecError(.target, "cannot open \(path): \(FileIO.errorText(errno)); \(plan.target.label) may have exited")
            }
            opened.append(fd)
            paths.append((namespace, "/proc/self/fd/\(pass(fd))"))
        }
        // The files were opened by pid, so check through the pidfd that the pid is still the target.
        guard nsexec_pidfd_send_signal(plan.target.pidfd, 0) == 0 else {
            throw NSExecError(.target, "\(plan.target.label) exited before nsexec could enter it; start it again")
        }
        for join in plan.fileJoins {
            paths.append((join.namespace, "/proc/self/fd/\(pass(join.fd))"))
        }

        var bootstrap = BootstrapMessage()
        if !paths.isEmpty { bootstrap.setNamespacePaths(paths) }

        var process = BootstrapMessage(type: UInt16(NSEXEC_PROCESS_MSG))
        for index in 0..<plan.arguments.count {
            process.append(type: NSEXEC_PROCESS_ARG_ATTR, cString: plan.arguments.pointers[index]!)
        }
        for index in 0..<plan.environment.count {
            process.append(type: NSEXEC_PROCESS_ENV_ATTR, cString: plan.environment.pointers[index]!)
        }
        if let cwd = spec.workingDirectory.path { process.append(type: NSEXEC_PROCESS_CWD_ATTR, cString: cwd) }
        if let cwd = plan.targetCwd { process.append(type: NSEXEC_PROCESS_TARGET_CWD_ATTR, cString: cwd) }
        if let user = spec.user { process.append(type: NSEXEC_PROCESS_USER_ATTR, cString: user) }
        if let group = spec.group { process.append(type: NSEXEC_PROCESS_GROUP_ATTR, cString: group) }
        var flags = UInt32(NSEXEC_PROCESS_SET_HOME)
        if spec.preserveCredentials { flags |= UInt32(NSEXEC_PROCESS_PRESERVE_CREDENTIALS) }
        if plan.entered.contains(.user) { flags |= UInt32(NSEXEC_PROCESS_ENTERED_USERNS) }
        if case .mountNamespace = spec.workingDirectory { flags |= UInt32(NSEXEC_PROCESS_CWD_FROM_NAMESPACE_ROOT) }
        process.append(type: NSEXEC_PROCESS_FLAGS_ATTR, uint32: flags)
        if plan.rootFD >= 0 { process.append(type: NSEXEC_PROCESS_ROOT_ATTR, uint32: UInt32(pass(plan.rootFD))) }
        if plan.lookupRootFD >= 0 {
            process.append(type: NSEXEC_PROCESS_LOOKUP_ROOT_ATTR, uint32: UInt32(pass(plan.lookupRootFD)))
        }
        for fd in plan.cgroupFDs { process.append(type: NSEXEC_PROCESS_CGROUP_ATTR, uint32: UInt32(pass(fd))) }
        if terminal.isActive { process.append(type: NSEXEC_PROCESS_TTY_ATTR, uint32: UInt32(pass(terminal.stageSocket))) }

        var started = StartedStages(stage2: -1, others: [], target: plan.target)
        if spec.forwardSignals { started.blockForwardedSignals() }

        let stage0 = try launch(helper: helper, passed: passed)
        for fd in opened { close(fd) }
        opened = []
        terminal.closeStageEnds()

        // Both messages go at once: stage 0 reads exactly the first, stage 2 the second.
        guard FileIO.writeAll(fd: initPipe[0], bootstrap.encoded() + process.encoded()) else {
            let error = errno
            reap(stage0)
            throw NSExecError.system("cannot send the bootstrap message to the helper", errno: error)
        }

        let records = StageReport.read(fd: initPipe[0])
        let stage0Status = reap(stage0)
        if records.error != nil || records.stage2 == nil {
            started.restoreSignalMask()
            for pid in Set(records.pids + [records.stage1 ?? 0, records.stage2 ?? 0]) where pid > 0 { reap(pid) }
            if records.error == nil {
                let how = stage0Status.map { Termination(waitStatus: $0).description } ?? "in an unknown way"
                throw NSExecError(.stage, "the nsexec helper \(helper) \(how) without reporting stage pids")
            }
            throw records.failure(prefix: "")
        }

        started.stage2 = records.stage2 ?? -1
        started.others = records.stage1.map { [$0] } ?? []
        if terminal.isActive { started.ttyMaster = try terminal.receiveMaster() }
        return started
    }

    /// Starts the helper with passed fds at their numbers, an empty signal mask and
    /// only the init pipe variables in its environment.
    private func launch(helper: String, passed: [(Int32, Int32)]) throws -> Int32 {
        // Move sources above every target number so no dup2 overwrites a later source.
        var high: [(Int32, Int32)] = []
        defer { for (fd, _) in high { close(fd) } }
        for (fd, number) in passed {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 100)
            guard copy >= 0 else { throw NSExecError.system("cannot duplicate fd \(fd) for the helper") }
            high.append((copy, number))
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let stdio = [spec.standardInput, spec.standardOutput, spec.standardError]
        for (number, fd) in stdio.enumerated() {
            if let fd { posix_spawn_file_actions_adddup2(&actions, fd, Int32(number)) }
        }
        for (fd, number) in high { posix_spawn_file_actions_adddup2(&actions, fd, number) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in forwardedSignals + [SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = CStringArray([helper])
        let envp = CStringArray([
            "_LIBCONTAINER_INITPIPE=\(Self.initPipeFD)",
            "_LIBCONTAINER_LOGPIPE=\(Self.logPipeFD)",
            "_LIBCONTAINER_LOGLEVEL=\(NSEXEC_LOG_ERROR.rawValue)",
        ])
        var pid: pid_t = 0
        let result = posix_spawn(&pid, helper, &actions, &attributes, argv.pointers, envp.pointers)
        guard result == 0 else {
            throw NSExecError.system("cannot start the nsexec helper \(helper)", errno: result,
                                     hint: "build it with swift build, or set NSEXEC_HELPER")
        }
        return pid
    }

    /// The helper binary: the spec's, `NSEXEC_HELPER`, or `nsexec` next to the running executable.
    private func helperPath() throws -> String {
        if let path = spec.helperPath { return path }
        if let path = getenv("NSEXEC_HELPER"), path.pointee != 0 { return String(cString: path) }
        if let exe = FileIO.readLink("/proc/self/exe"), let slash = exe.lastIndex(of: "/") {
            let candidate = String(exe[..<slash]) + "/nsexec"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw NSExecError(.usage, "cannot find the nsexec helper binary next to this executable; set NSEXEC_HELPER to its path")
    }
}
