import CNSExec
import Glibc
import Testing

/// clone_parent (clone.c), checked from Swift. Swift cannot call setjmp, so
/// nsexec_probe_clone_parent runs the STAGE_PARENT/STAGE_CHILD sequence in C, in
/// an intermediate process, and reaps the intermediate and the CLONE_PARENT child.
@Suite struct CloneParentConformance {
    /// Runs the probe once.
    static func probe() throws -> nsexec_clone_probe {
        var probe = nsexec_clone_probe()
        try #require(nsexec_probe_clone_parent(&probe) == 0, "clone probe failed: \(errorText(errno))")
        return probe
    }

    @Test("clone_parent.returns_child_pid")
    func returnsChildPID() throws {
        let probe = try Self.probe()

        #expect(probe.clone_result > 0)
        #expect(probe.clone_result == probe.child_pid)
        #expect(probe.clone_result != probe.parent_pid)
    }

    @Test("clone_parent.child_is_sibling")
    func childIsSibling() throws {
        let probe = try Self.probe()

        #expect(probe.parent_ppid == getpid())
        #expect(probe.child_ppid == probe.parent_ppid)
        #expect(probe.child_ppid != probe.parent_pid)

        // Only the caller's parent can reap the child, and did.
        #expect(probe.child_exit_status == 0)
    }

    @Test("clone_parent.child_sees_memory_at_call")
    func childSeesMemoryAtCall() throws {
        let probe = try Self.probe()

        // The probe's marker is 1 when clone_parent is called and 2 right after.
        #expect(probe.marker_seen == 1)
    }

    @Test("clone_parent.child_unshares_user_namespace")
    func childUnsharesUserNamespace() throws {
        let probe = try Self.probe()

        #expect(probe.child_unshare_errno == 0, "\(errorText(probe.child_unshare_errno))")
        #expect(probe.parent_userns != 0)
        #expect(probe.parent_userns == ownNamespaceInode("user"))
        #expect(probe.child_userns != 0)
        #expect(probe.child_userns != probe.parent_userns)
    }

    @Test("clone_parent.pid_reaches_parent")
    func pidReachesParent() throws {
        let probe = try Self.probe()

        #expect(probe.bytes_written == MemoryLayout<pid_t>.size)
        #expect(probe.bytes_read == MemoryLayout<pid_t>.size)
        #expect(probe.pid_received == probe.clone_result)
        #expect(probe.child_exit_status == 0)
    }
}
