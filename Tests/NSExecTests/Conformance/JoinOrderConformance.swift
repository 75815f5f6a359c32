import CNSExec
import Glibc
import Testing

/// Joining namespaces (join.c), checked from Swift through the C join probe, which
/// runs nsexec_open_namespace_files and nsexec_join_namespaces in a forked child.
@Suite struct JoinOrderConformance {
    /// Result of a join in a forked child.
    struct JoinOutcome {
        var status: Int32
        /// The "error" text of nsexec_fail's record on the report fd, or "".
        var error: String
        /// Namespace inodes of the child after the join, by name.
        var namespaces: [String: UInt64]
        var openJoinFDs: Int32
    }

    /// Extracts the "error" string of a record {"error":"...","status":N,...}, unescaped only as far as these tests need.
    static func recordError(_ record: String) -> String {
        let start = "{\"error\":\""
        guard record.hasPrefix(start), let end = record.range(of: "\",\"status\":") else { return record }
        return String(record[record.index(record.startIndex, offsetBy: start.count)..<end.lowerBound])
    }

    /// Joins the namespace files in the given order (or through config as set up by configure) in a
    /// child that switches to uid.
    static func join(_ files: [(flag: UInt32, path: String)], uid: uid_t = keepUID,
                     configure: (inout nsexec_config) -> Void = { _ in }) throws -> JoinOutcome {
        let pool = CStringPool()
        var config = nsexec_config()
        nsexec_config_init(&config)
        for file in files {
            try #require(nsexec_config_add_join(&config, file.flag, -1, pool.copy(file.path)) == 0, "config is full")
        }
        configure(&config)

        var probe = nsexec_join_probe()
        try #require(nsexec_probe_join(&config, uid, &probe) == 0, "join probe failed: \(errorText(errno))")

        var namespaces: [String: UInt64] = [:]
        for (index, inode) in uint64s(fromCArray: probe.namespaces).enumerated() {
            namespaces[String(cString: nsexec_namespace_at(index).pointee.name)] = inode
        }
        return JoinOutcome(status: probe.exit_status, error: recordError(string(fromCArray: probe.error)),
                           namespaces: namespaces, openJoinFDs: probe.open_join_fds)
    }

    @Test("join.privileged_joins_user_last", .enabled(if: Machine.isRoot, "needs root, to own both namespaces"))
    func privilegedJoinsUserLast() throws {
        // Two unrelated targets: a user namespace, and a UTS namespace of the initial user namespace.
        let userTarget = try ProbeTarget(flags: CloneFlag.newUser)
        let utsTarget = try ProbeTarget(flags: CloneFlag.newUTS)

        // Listed user first: only joining the user namespace last can succeed.
        let outcome = try Self.join([(CloneFlag.newUser, userTarget.path("user")),
                                     (CloneFlag.newUTS, utsTarget.path("uts"))])

        #expect(outcome.status == 0, "\(outcome.error)")
        #expect(outcome.namespaces["user"] == userTarget.inode("user"))
        #expect(outcome.namespaces["uts"] == utsTarget.inode("uts"))
    }

    @Test("join.unprivileged_joins_user_first", .enabled(if: Machine.isRoot, "needs root, to switch to uid 65534"))
    func unprivilegedJoinsUserFirst() throws {
        // The target's network namespace belongs to a user namespace that the unprivileged uid owns.
        let target = try ProbeTarget(flags: CloneFlag.newUser | CloneFlag.newNet, uid: unprivilegedUID)

        // Listed net first: an unprivileged caller can join it only after the user namespace.
        let outcome = try Self.join([(CloneFlag.newNet, target.path("net")), (CloneFlag.newUser, target.path("user"))],
                                    uid: unprivilegedUID)

        #expect(outcome.status == 0, "\(outcome.error)")
        #expect(outcome.namespaces["net"] == target.inode("net"))
        #expect(outcome.namespaces["user"] == target.inode("user"))

        // Control: without the user namespace the net join fails for lack of CAP_SYS_ADMIN.
        let netOnly = try Self.join([(CloneFlag.newNet, target.path("net"))], uid: unprivilegedUID)
        #expect(netOnly.status == NSEXEC_EXIT_FAILURE)
        #expect(netOnly.error.contains(errorText(EPERM)), "\(netOnly.error)")
    }

    @Test("join.pidfd_joins_namespaces")
    func pidfdJoinsNamespaces() throws {
        let flags = CloneFlag.newNet | CloneFlag.newUTS | CloneFlag.newIPC
        let target = try ProbeTarget(flags: flags)
        let pidfd = nsexec_pidfd_open(target.pid)
        try #require(pidfd >= 0, "pidfd_open failed: \(errorText(errno))")
        defer { close(pidfd) }

        let outcome = try Self.join([]) { config in
            config.pidfd = pidfd
            config.pidfd_flags = flags
            config.target_pid = target.pid
        }

        #expect(outcome.status == 0, "\(outcome.error)")
        for name in ["net", "uts", "ipc"] {
            #expect(outcome.namespaces[name] == target.inode(name), "\(name)")
        }
        for name in ["user", "mnt", "cgroup"] {
            #expect(outcome.namespaces[name] == ownNamespaceInode(name), "\(name)")
        }
    }

    @Test("join.closes_namespace_files")
    func closesNamespaceFiles() throws {
        let target = try ProbeTarget(flags: CloneFlag.newNet | CloneFlag.newUTS)

        let outcome = try Self.join([(CloneFlag.newNet, target.path("net")), (CloneFlag.newUTS, target.path("uts"))])

        #expect(outcome.status == 0, "\(outcome.error)")
        #expect(outcome.openJoinFDs == 0)
    }

    @Test("join.open_rejects_wrong_type")
    func openRejectsWrongType() throws {
        let outcome = try Self.join([(CloneFlag.newNet, "/proc/self/ns/uts")])

        #expect(outcome.status == NSEXEC_EXIT_FAILURE)
        #expect(outcome.error == "/proc/self/ns/uts is a uts namespace, not a net namespace")
    }

    @Test("join.open_rejects_non_namespace_file")
    func openRejectsNonNamespaceFile() throws {
        let outcome = try Self.join([(CloneFlag.newNet, "/dev/null")])

        #expect(outcome.status == NSEXEC_EXIT_FAILURE)
        #expect(outcome.error.contains("/dev/null is not a namespace file"), "\(outcome.error)")
    }

    @Test("join.open_missing_file_fails")
    func openMissingFileFails() throws {
        let outcome = try Self.join([(CloneFlag.newNet, "/nonexistent/ns/net")])

        #expect(outcome.status == NSEXEC_EXIT_FAILURE)
        let expected = "cannot open net namespace file /nonexistent/ns/net: \(errorText(ENOENT)); "
        #expect(outcome.error.hasPrefix(expected), "\(outcome.error)")
    }

    @Test("join.failure_names_namespace")
    func failureNamesNamespace() throws {
        // Joining the user namespace the caller is already in fails with EINVAL.
        let outcome = try Self.join([(CloneFlag.newUser, "/proc/self/ns/user")])

        #expect(outcome.status == NSEXEC_EXIT_FAILURE)
        let expected = "cannot join user namespace (/proc/self/ns/user): \(errorText(EINVAL))"
        #expect(outcome.error.hasPrefix(expected), "\(outcome.error)")
    }
}
