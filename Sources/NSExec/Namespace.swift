import CNSExec

/// A Linux namespace type, mirroring the C core's namespace table.
public enum Namespace: String, CaseIterable, Sendable, Hashable {
    case cgroup, ipc, mnt, net, pid, time, user, uts

    /// The `CLONE_NEW*` flag, read from the C table so the two cannot disagree.
    public var cloneFlag: UInt32 {
        let name = rawValue
        let entry = name.withCString { nsexec_namespace_by_name($0, name.utf8.count) }
        guard let entry else {
            preconditionFailure("namespace \(name) is missing from the C namespace table")
        }
        return entry.pointee.flag
    }

    /// The file name under `/proc/PID/ns`.
    public var procName: String { rawValue }

    /// The namespace for a single `CLONE_NEW*` flag.
    public init?(cloneFlag: UInt32) {
        guard let entry = nsexec_namespace_by_flag(cloneFlag),
              let name = entry.pointee.name else { return nil }
        self.init(rawValue: String(cString: name))
    }

    /// Returns the namespace file of a process, `/proc/PID/ns/NAME`.
    public func path(pid: Int32) -> String {
        "/proc/\(pid)/ns/\(rawValue)"
    }
}
