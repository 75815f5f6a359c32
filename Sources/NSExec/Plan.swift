import CNSExec
import Glibc

/// The plan of a run, worked out before any stage starts. It owns the fds it opened.
struct Plan {
    var target: ResolvedTarget
    /// Namespaces joined through the target's pidfd.
    var pidfdFlags: UInt32 = 0
    /// Namespaces joined from files: the type, an open fd and the path for messages.
    var fileJoins: [(namespace: Namespace, fd: Int32, path: String)] = []
    /// Every namespace that will be entered.
    var entered = NamespaceFlags()

    var rootFD: Int32 = -1
    /// The target's root, for user and group names when the program keeps the caller's root.
    var lookupRootFD: Int32 = -1
    /// The target's cwd from its root, a C string that close() frees.
    var targetCwd: UnsafeMutablePointer<CChar>?
    /// The program's argv and envp.
    let arguments: CStringArray
    let environment: CStringArray
    var cgroupFDs: [Int32] = []

    /// Closes every fd the plan opened, the pidfd included, and frees the target's cwd.
    func close() {
        target.close()
        free(targetCwd)
        for join in fileJoins { _ = Glibc.close(join.fd) }
        if rootFD >= 0 { _ = Glibc.close(rootFD) }
        if lookupRootFD >= 0 { _ = Glibc.close(lookupRootFD) }
        for fd in cgroupFDs { _ = Glibc.close(fd) }
    }

    /// Whether the mount namespace comes from the target itself, not from a file.
    var entersTargetMountNamespace: Bool {
        pidfdFlags & Namespace.mnt.cloneFlag != 0
    }
}

/// Namespace types as a mask of CLONE_NEW* flags. A mask, not a Set<Namespace>, because
/// a Set costs hashing and generic metadata at first use, about 50 us of the CLI's startup.
struct NamespaceFlags {
    var rawValue: UInt32 = 0

    mutating func insert(_ namespace: Namespace) {
        rawValue |= namespace.cloneFlag
    }

    func contains(_ namespace: Namespace) -> Bool {
        rawValue & namespace.cloneFlag != 0
    }
}

/// The default search path inside a container, as runc and Docker set it. A StaticString,
/// so that the CLI's default environment can copy it without making a String.
let defaultPathEntry: StaticString = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extension ExecSpec {
    /// Resolves the target and opens everything the stages need; throws before any stage starts.
    func makePlan() throws -> Plan {
        try validate()
        let resolved = try target.resolve()
        let environment: CStringArray
        do {
            environment = try makeEnvironment(pid: resolved.pid)
        } catch {
            resolved.close()
            throw error
        }
        var plan = Plan(target: resolved, arguments: programArguments(), environment: environment)
        do {
            try selectNamespaces(&plan)
            try selectRoot(&plan)
            if joinCgroup {
                plan.cgroupFDs = try Cgroups.openProcsFiles(pid: plan.target.pid, label: plan.target.label)
            }

            // Every /proc read above named the pid; make sure it still meant the pidfd's process.
            guard nsexec_pidfd_send_signal(plan.target.pidfd, 0) == 0 else {
                throw NSExecError(.target, "\(plan.target.label) exited before nsexec could enter it; start it again")
            }
        } catch {
            plan.close()
            throw error
        }
        return plan
    }

    /// Checks option values that need no system call.
    func validate() throws {
        for entry in environment {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw NSExecError(.usage, "invalid --env value '\(entry)': expected NAME=VALUE")
            }
        }
        if case .path(let dir) = workingDirectory, dir.isEmpty {
            throw NSExecError(.usage, "invalid working directory '': give a directory path")
        }
        if case .mountNamespace(let dir) = workingDirectory, dir.isEmpty {
            throw NSExecError(.usage, "invalid --wdns value '': give a directory path")
        }
        if !allNamespaces && namespaces.isEmpty {
            if case .pid = target {
                throw NSExecError(.usage, "no namespace selected: give -a/--all or at least one of -m -u -i -n -p -C -U -T")
            }
        }
        if tty && isatty(0) == 0 {
            throw NSExecError(.usage, "--tty needs a terminal on stdin, but fd 0 is not one; run from a terminal or drop --tty")
        }
    }

    private func selectNamespaces(_ plan: inout Plan) throws {
        let pid = plan.target.pid

        // A container with no namespace option is entered whole, as runc exec does.
        let all: Bool
        if case .container = target, namespaces.isEmpty { all = true } else { all = allNamespaces }

        // Joining a namespace one is already in is pointless, and EINVAL for a user namespace.
        var toJoin: UInt32 = 0
        if all {
            var failed: UInt32 = 0
            guard nsexec_namespaces_to_join(pid, &toJoin, &failed) == 0 else {
                let error = errno
                let path = Namespace(cloneFlag: failed)?.path(pid: pid) ?? "/proc/\(pid)/ns"
                throw NSExecError(.target, "cannot read \(path): \(FileIO.errorText(error)); \(plan.target.label) may have exited")
            }
        }

        try Namespace.forEach { namespace in
            // A namespace option overrides --all, and of several for one type the last wins.
            let file: String?
            if let request = namespaces.last(where: { $0.namespace == namespace }) {
                file = request.file
            } else if toJoin & namespace.cloneFlag != 0 {
                file = nil
            } else {
                return
            }
            plan.entered.insert(namespace)
            guard let file else {
                plan.pidfdFlags |= namespace.cloneFlag
                return
            }
            // Opens nothing but a regular file, so that a FIFO or a device given by mistake is harmless.
            let fd = nsexec_open_namespace_file(file)
            guard fd >= 0 || errno != EINVAL else {
                throw NSExecError(.usage, "\(file) is not a namespace file; give a path such as /proc/PID/ns/\(namespace.rawValue) or a bind mount of one")
            }
            guard fd >= 0 else {
                throw NSExecError(.usage, "cannot open \(namespace.rawValue) namespace file \(file): \(FileIO.errorText(errno)); give a path such as /proc/PID/ns/\(namespace.rawValue) or /run/netns/NAME")
            }
            plan.fileJoins.append((namespace, fd, file))
            let type = nsexec_namespace_file_type(fd)
            guard type != 0 else {
                throw NSExecError(.usage, "\(file) is not a namespace file; give a path such as /proc/PID/ns/\(namespace.rawValue) or a bind mount of one")
            }
            guard type == namespace.cloneFlag else {
                let actual = Namespace(cloneFlag: type)?.rawValue ?? "unknown"
                throw NSExecError(.usage, "\(file) is a \(actual) namespace, not a \(namespace.rawValue) namespace; give a \(namespace.rawValue) namespace file such as /proc/PID/ns/\(namespace.rawValue)")
            }
        }
    }

    private func selectRoot(_ plan: inout Plan) throws {
        let pid = plan.target.pid
        let mountEntered = plan.entersTargetMountNamespace

        switch root {
        case .target:
            guard mountEntered else { break }
            plan.rootFD = nsexec_open_proc_directory(pid, "root")
            guard plan.rootFD >= 0 else {
                throw NSExecError(.target, "cannot open the root of \(plan.target.label): \(FileIO.errorText(errno))")
            }
        case .path(let dir):
            let targetRoot = nsexec_open_proc_directory(pid, "root")
            guard targetRoot >= 0 else {
                throw NSExecError(.target, "cannot open the root of \(plan.target.label): \(FileIO.errorText(errno))")
            }
            defer { _ = Glibc.close(targetRoot) }
            plan.rootFD = nsexec_open_in_root(targetRoot, dir)
            guard plan.rootFD >= 0 else {
                throw NSExecError(.usage, "cannot use root directory \(dir) inside the target's root: \(FileIO.errorText(errno)); give a directory that exists in the container")
            }
        }

        // Names resolve in the target's /etc/passwd and /etc/group, never the host's.
        if plan.rootFD < 0 && (user != nil || group != nil) {
            plan.lookupRootFD = nsexec_open_proc_directory(pid, "root")
            guard plan.lookupRootFD >= 0 else {
                throw NSExecError(.target, "cannot open the root of \(plan.target.label): \(FileIO.errorText(errno))")
            }
        }

        if case .target = workingDirectory, mountEntered {
            // The target's cwd as a path from its own root, or "/" when it cannot be read.
            plan.targetCwd = FileIO.readProcLink(pid: pid, name: "cwd") ?? strdup("/")
        }
    }

    private func programArguments() -> CStringArray {
        if let argumentVector, argumentVector.pointer[0] != nil { return CStringArray(borrowing: argumentVector) }
        if !arguments.isEmpty { return CStringArray(arguments) }
        let vector = CStringArray(copyingCapacity: 1)
        if let shell = getenv("SHELL"), shell.pointee != 0 {
            vector.append(copying: shell)
        } else {
            vector.append(copying: FileIO.cString("/bin/sh"))
        }
        return vector
    }

    private func makeEnvironment(pid: Int32) throws -> CStringArray {
        var result: [String]
        switch environmentSource {
        case .clean where environment.isEmpty:
            // The CLI's common case, copied from a constant and from environ without a String.
            // Copies, because a library caller's other threads may change the environment.
            let vector = CStringArray(copyingCapacity: 2)
            vector.append(copying: FileIO.cString(defaultPathEntry))
            if let term = nsexec_environment_entry("TERM") { vector.append(copying: term) }
            return vector
        case .clean:
            result = [defaultPathEntry.description]
            if let term = nsexec_environment_entry("TERM") { result.append(FileIO.string(cString: term)) }
        case .target:
            guard let bytes = FileIO.read("/proc/\(pid)/environ") else {
                throw NSExecError(.target, "cannot read the environment of pid \(pid) (/proc/\(pid)/environ): \(FileIO.errorText(errno))")
            }
            result = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }

        return CStringArray(Self.applyOverrides(environment, to: result))
    }

    /// Returns base with each NAME=VALUE entry of overrides replacing the entries of its name.
    /// Of several overrides of one name the last counts. The overrides follow the entries of
    /// base, in the order of those last ones. Names compare as bytes, as the kernel passes them.
    static func applyOverrides(_ overrides: [String], to base: [String]) -> [String] {
        // A few overrides: one pass over the result each, which needs no hashing. Many: one
        // pass in all, since a pass per entry took 4.4 s for 5000 of them (debug build).
        if overrides.count <= 16 {
            var result = base
            for entry in overrides {
                let name = variableName(entry)
                result.removeAll { variableName($0).elementsEqual(name) }
                result.append(entry)
            }
            return result
        }
        var last: [[UInt8]: Int] = [:]
        for (index, entry) in overrides.enumerated() { last[Array(variableName(entry))] = index }
        var result = base.filter { last[Array(variableName($0))] == nil }
        for (index, entry) in overrides.enumerated() where last[Array(variableName(entry))] == index {
            result.append(entry)
        }
        return result
    }

    /// Returns the bytes of entry before its first "=", or all of it.
    private static func variableName(_ entry: String) -> Substring.UTF8View {
        let utf8 = entry.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: "=")) ?? utf8.endIndex
        return entry[..<end].utf8
    }
}
