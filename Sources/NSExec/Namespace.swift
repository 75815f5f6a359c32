import CNSExec

/// A Linux namespace type, mirroring the C core's namespace table.
public enum Namespace: String, CaseIterable, Sendable, Hashable {
    case cgroup, ipc, mnt, net, pid, time, user, uts

    /// The `CLONE_NEW*` flag, read from the C table so the two cannot disagree.
    public var cloneFlag: UInt32 {
        guard let entry = nsexec_namespace_at(tableIndex) else {
            preconditionFailure("namespace \(rawValue) is missing from the C namespace table")
        }
        return entry.pointee.flag
    }

    /// The index of this namespace's entry in the C table (namespaces.c). Tests check that
    /// each case gets the flag of the entry with its name. Looking an entry up by index keeps
    /// the CLI's hot path free of String work.
    var tableIndex: Int {
        switch self {
        case .cgroup: return 0
        case .ipc: return 1
        case .net: return 2
        case .pid: return 3
        case .time: return 4
        case .uts: return 5
        case .mnt: return 6
        case .user: return 7
        }
    }

    /// Calls body for every namespace in the order of allCases, without the array that
    /// allCases builds: its first use instantiates generic metadata.
    static func forEach(_ body: (Namespace) throws -> Void) rethrows {
        for position in 0..<8 {
            let namespace: Namespace
            switch position {
            case 0: namespace = .cgroup
            case 1: namespace = .ipc
            case 2: namespace = .mnt
            case 3: namespace = .net
            case 4: namespace = .pid
            case 5: namespace = .time
            case 6: namespace = .user
            default: namespace = .uts
            }
            try body(namespace)
        }
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
