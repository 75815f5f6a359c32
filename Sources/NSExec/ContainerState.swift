import CNSExec
import Glibc

/// A container's init process as recorded by its runtime.
struct ContainerState {
    /// The runtime that wrote the state.
    enum Runtime: String { case runc, crun }

    var id: String
    var runtime: Runtime
    /// The state file it was read from.
    var path: String
    var pid: Int32
    /// The init process start time in clock ticks since boot.
    var startTime: UInt64
    /// The freezer file that shows whether the container is paused, if known.
    var freezerFile: String?

    /// Returns the state file of container id under root: runc's state.json or crun's status.
    static func statePath(runtime: Runtime, root: String?, id: String) -> String {
        switch runtime {
        case .runc: return (root ?? "/run/runc") + "/" + id + "/state.json"
        case .crun: return (root ?? "/run/crun") + "/" + id + "/status"
        }
    }

    /// Finds and reads the state of container id: runc first, then crun.
    static func load(id: String, runtimeRoot: String?) throws -> ContainerState {
        guard !id.isEmpty, id != ".", id != "..", !id.utf8.contains(UInt8(ascii: "/")), !id.utf8.contains(0) else {
            throw NSExecError(.usage, "invalid container id '\(id)': an id is a single path component; list ids with runc list")
        }

        // runc, then crun, by index: an array of runtimes or of (runtime, path) tuples
        // instantiates generic metadata at run time.
        for attempt in 0..<2 {
            let runtime: Runtime = attempt == 0 ? .runc : .crun
            let path = statePath(runtime: runtime, root: runtimeRoot, id: id)
            guard let bytes = FileIO.readRegularFile(path) else {
                let error = errno
                if error == ENOENT || error == ENOTDIR { continue }
                if error == EINVAL {
                    throw NSExecError(.target, "cannot read state of container \(id) (\(path)): not a regular file; the runtime writes its state as one, recreate the container")
                }
                let hint = error == EACCES || error == EPERM ? "; run as root" : ""
                throw NSExecError(.target, "cannot read state of container \(id) (\(path)): \(FileIO.errorText(error))\(hint)")
            }
            return try parse(id: id, runtime: runtime, path: path, bytes: bytes)
        }

        let looked = statePath(runtime: .runc, root: runtimeRoot, id: id) + " and " + statePath(runtime: .crun, root: runtimeRoot, id: id)
        // With --runtime-root given, the hint names the listing of that root, not the option.
        let hint = runtimeRoot.map { "runc --root \($0) list or crun --root \($0) list" }
        throw NSExecError(.target, "container \(id) not found (no \(looked)); check the id with "
            + (hint ?? "runc list or crun list, or set --runtime-root"))
    }

    /// Reads the fields nsexec needs from a runc state.json or a crun status file.
    static func parse(id: String, runtime: Runtime, path: String, bytes: [UInt8]) throws -> ContainerState {
        let pidKey = runtime == .runc ? "init_process_pid" : "pid"
        let startKey = runtime == .runc ? "init_process_start" : "process-start-time"
        // Of repeated keys the last counts, as in a parsed object.
        var pidValue: Int64?
        var startValue: Int64?
        var freezer: String?
        do {
            try JSONParser.readMembers(of: bytes) { key, parser in
                if key == pidKey {
                    pidValue = try parser.integer()
                } else if key == startKey {
                    startValue = try parser.integer()
                } else if key == "cgroup_paths" {
                    freezer = try freezerFile(&parser)
                } else {
                    return false
                }
                return true
            }
        } catch {
            throw NSExecError(.target, "cannot parse state of container \(id) (\(path)): \(error); the file is damaged, recreate the container")
        }

        guard let pid = pidValue, pid > 0, pid <= Int64(Int32.max) else {
            throw NSExecError(.target, "state of container \(id) (\(path)) has no valid \(pidKey); the container is not running or the file is damaged")
        }
        guard let start = startValue, start >= 0 else {
            throw NSExecError(.target, "state of container \(id) (\(path)) has no valid \(startKey); the file is damaged")
        }
        // NOTE: crun's status file names no freezer here, so a paused crun container is not detected.

        return ContainerState(id: id, runtime: runtime, path: path, pid: Int32(pid), startTime: UInt64(start), freezerFile: freezer)
    }

    /// Reads runc's cgroup_paths object and returns the freezer file it names: cgroup v1's
    /// freezer.state, else cgroup v2's cgroup.freeze in the unified path (key "").
    private static func freezerFile(_ parser: inout JSONParser) throws -> String? {
        var v1: String?
        var v2: String?
        try parser.readMembers { name, parser in
            if name == "freezer" {
                v1 = try parser.string()
            } else if name == "" {
                v2 = try parser.string()
            } else {
                return false
            }
            return true
        }
        if let v1 { return v1 + "/freezer.state" }
        return v2.map { $0 + "/cgroup.freeze" }
    }

    /// Whether the container's freezer shows it paused.
    var isPaused: Bool {
        guard let freezerFile, let bytes = FileIO.read(freezerFile, limit: 64) else { return false }
        let value = bytes.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: " ") }
        return value.elementsEqual("FROZEN".utf8) || value.elementsEqual("FREEZING".utf8) || value.elementsEqual("1".utf8)
    }

    /// Opens a pidfd on the init process and checks that the pid still belongs to it.
    func pin() throws -> ResolvedTarget {
        let pidfd = nsexec_pidfd_open(pid)
        guard pidfd >= 0 else {
            let error = errno
            if error == ESRCH {
                throw NSExecError(.target, "container \(id) is not running (pid \(pid) has exited; state \(path)); start it again")
            }
            throw NSExecError.system("cannot open a pidfd for pid \(pid) of container \(id)", errno: error)
        }

        // The pidfd pins whatever process has the pid now, and its start time shows whether that is the init.
        let status = processStatus(pid: pid)
        let alive = nsexec_pidfd_send_signal(pidfd, 0) == 0
        // A zombie (Z) or dying (X) init still has a pid and a start time, but no namespaces to join.
        guard alive, let status, status.state != UInt8(ascii: "Z"), status.state != UInt8(ascii: "X") else {
            _ = close(pidfd)
            throw NSExecError(.target, "container \(id) is not running (pid \(pid) has exited; state \(path)); start it again")
        }
        guard status.startTime == startTime else {
            _ = close(pidfd)
            throw NSExecError(.target, "container \(id) is no longer running (pid \(pid) now belongs to another process; state \(path))")
        }
        if isPaused {
            _ = close(pidfd)
            throw NSExecError(.target, "container \(id) is paused (state \(path)); resume it with \(runtime.rawValue) resume \(id)")
        }
        return ResolvedTarget(pid: pid, pidfd: pidfd, containerID: id)
    }
}
