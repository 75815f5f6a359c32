import CNSExec
import Glibc

/// The fork path: the calling process is stage 0 and the parent of stages 1 and 2, or
/// on the direct path the parent of one child that does the work of both. Only safe in a
/// single-threaded process.
struct ForkSpawner {
    var spec: ExecSpec
    var plan: Plan
    var terminal: TerminalSession

    func spawn() throws -> StartedStages {
        guard let report = FileIO.pipe() else { throw NSExecError.system("cannot create the report pipe") }
        var keepReport = false
        defer { if !keepReport { close(report.read) } }

        let argv = plan.arguments
        let envp = plan.environment
        // The pool takes one path per namespace file and the three strings below.
        let strings = CStringPool(capacity: plan.fileJoins.count + 3)

        var config = nsexec_config()
        nsexec_config_init(&config)
        config.pidfd = plan.target.pidfd
        config.pidfd_flags = plan.pidfdFlags
        config.target_pid = plan.target.pid
        config.no_fork = spec.noFork && !plan.entered.contains(.pid) && !plan.entered.contains(.time)
        for join in plan.fileJoins {
            nsexec_config_add_join(&config, join.namespace.cloneFlag, join.fd, strings.add(join.path))
        }

        var process = nsexec_process()
        nsexec_process_init(&process)
        process.root_fd = plan.rootFD
        process.lookup_root_fd = plan.lookupRootFD
        process.user = strings.add(spec.user)
        process.group = strings.add(spec.group)
        process.cwd = strings.add(spec.workingDirectory.path)
        process.target_cwd = UnsafePointer(plan.targetCwd)
        if case .mountNamespace = spec.workingDirectory { process.cwd_from_namespace_root = true }
        process.preserve_credentials = spec.preserveCredentials
        process.entered_user_namespace = plan.entered.contains(.user)
        process.set_home = true
        process.stdio = (spec.standardInput ?? -1, spec.standardOutput ?? -1, spec.standardError ?? -1)
        for fd in plan.cgroupFDs { nsexec_process_add_cgroup_fd(&process, fd) }
        if terminal.isActive {
            process.tty_socket = terminal.stageSocket
            process.host_ptmx_fd = terminal.hostPtmx
        }

        // The program starts with no signal blocked, as with runc exec, whatever the caller blocks.
        var started = StartedStages(stage2: -1, others: [], target: plan.target)
        if spec.forwardSignals { started.blockForwardedSignals() }

        var pids = nsexec_stage_pids()
        let errorCapacity = 1024
        let (result, errorText) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: errorCapacity) { error in
            error[0] = 0
            let result = withExtendedLifetime((argv, envp, strings)) { () -> Int32 in
                process.argv = UnsafePointer(argv.pointers)
                process.envp = UnsafePointer(envp.pointers)
                return nsexec_spawn_inline(&config, &process, report.write, &pids, error.baseAddress, errorCapacity)
            }
            return (result, result < 0 ? String(cString: error.baseAddress!) : "")
        }
        close(report.write)
        terminal.closeStageEnds()

        if result == 0 && pids.direct && !terminal.isActive {
            // The direct child can fail only by exiting, so its report is read after the
            // program ends: the supervisor then wakes once per run, not at the exec too.
            keepReport = true
            started.pendingReport = report.read
            started.stage2 = pids.stage2
            return started
        }

        // Stage errors arrive here; EOF comes when stage 2 execs or every stage exits.
        let records = StageReport.read(fd: report.read)
        if result < 0 || records.error != nil {
            started.restoreSignalMask()
            for pid in Set(records.pids + [pids.stage2, pids.stage1]) where pid > 0 { reap(pid) }
            if records.error == nil {
                throw NSExecError(.stage, "cannot enter \(plan.target.label): " + errorText)
            }
            throw records.failure(prefix: "")
        }

        // On the direct path, the child reports once it is in every namespace. A death
        // before that is a failed entry, not the program's end.
        if pids.direct && !records.entered {
            started.restoreSignalMask()
            reap(pids.stage2)
            throw started.directChildFailure()
        }

        started.stage2 = pids.stage2
        if pids.stage1 != pids.stage2 { started.others = [pids.stage1] }
        if terminal.isActive { started.ttyMaster = try terminal.receiveMaster() }
        return started
    }
}

extension WorkingDirectory {
    /// The directory string for the C core, or nil for the target's.
    var path: String? {
        switch self {
        case .target: return nil
        case .path(let dir), .mountNamespace(let dir): return dir
        }
    }
}
