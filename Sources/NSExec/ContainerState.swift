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

    static let defaultRoots: [(Runtime, String)] = [(.runc, "/run/runc"), (.crun, "/run/crun")]

    /// Finds and reads the state of container id: runc first, then crun.
    static func load(id: String, runtimeRoot: String?) throws -> ContainerState {
        guard !id.isEmpty, id != ".", id != "..", !id.contains("/"), !id.utf8.contains(0) else {
            throw NSExecError(.usage, "invalid container id '\(id)': an id is a single path component; list ids with runc list")
        }

        var candidates: [(Runtime, String)] = []
        if let runtimeRoot {
            candidates = [(.runc, "\(runtimeRoot)/\(id)/state.json"), (.crun, "\(runtimeRoot)/\(id)/status")]
        } else {
            candidates = defaultRoots.map { runtime, root in
                (runtime, runtime == .runc ? "\(root)/\(id)/state.json" : "\(root)/\(id)/status")
            }
        }

        for (runtime, path) in candidates {
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

        let looked = candidates.map(\.1).joined(separator: " and ")
        throw NSExecError(.target, "container \(id) not found (no \(looked)); check the id with runc list or crun list, or set --runtime-root")
    }

    /// Reads the fields nsexec needs from a runc state.json or a crun status file.
    static func parse(id: String, runtime: Runtime, path: String, bytes: [UInt8]) throws -> ContainerState {
        let pidKey = runtime == .runc ? "init_process_pid" : "pid"
        let startKey = runtime == .runc ? "init_process_start" : "process-start-time"
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes, topLevelKeys: [pidKey, startKey, "cgroup_paths"])
        } catch {
            throw NSExecError(.target, "cannot parse state of container \(id) (\(path)): \(error); the file is damaged, recreate the container")
        }

        guard let pid = json[pidKey]?.integerValue, pid > 0, pid <= Int64(Int32.max) else {
            throw NSExecError(.target, "state of container \(id) (\(path)) has no valid \(pidKey); the container is not running or the file is damaged")
        }
        guard let start = json[startKey]?.integerValue, start >= 0 else {
            throw NSExecError(.target, "state of container \(id) (\(path)) has no valid \(startKey); the file is damaged")
        }

        var freezer: String?
        if case .object(let paths)? = json["cgroup_paths"] {
            if let v1 = paths["freezer"]?.stringValue {
                freezer = v1 + "/freezer.state"
            } else if let v2 = paths[""]?.stringValue {
                freezer = v2 + "/cgroup.freeze"
            }
        }
        // NOTE: crun's status file names no freezer here, so a paused crun container is not detected.

        return ContainerState(id: id, runtime: runtime, path: path, pid: Int32(pid), startTime: UInt64(start), freezerFile: freezer)
    }

    /// Whether the container's freezer shows it paused.
    var isPaused: Bool {
        guard let freezerFile, let text = FileIO.readText(freezerFile, limit: 64) else { return false }
        let value = text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init) ?? ""
        return value == "FROZEN" || value == "FREEZING" || value == "1"
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
        guard alive, let status, status.state != "Z", status.state != "X" else {
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
