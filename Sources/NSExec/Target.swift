import CNSExec
import Glibc

/// The process whose namespaces are entered.
public enum Target: Sendable, Equatable {
    /// A process id in the caller's PID namespace.
    case pid(Int32)
    /// A runc or crun container by id; `runtimeRoot` overrides the state directory.
    case container(id: String, runtimeRoot: String? = nil)
}

/// A target pinned by a pidfd, so that a recycled pid cannot be entered by mistake.
struct ResolvedTarget {
    /// The pid in the caller's PID namespace.
    var pid: Int32
    /// A pidfd of the process, close-on-exec.
    var pidfd: Int32
    /// The container's id, when the target is a container.
    var containerID: String?

    /// "pid N" or "container ID (pid N)", for error messages. Built when a message needs
    /// it, because formatting the pid touches code that a successful run never needs.
    var label: String {
        guard let containerID else { return "pid \(pid)" }
        return "container \(containerID) (pid \(pid))"
    }

    func close() {
        _ = Glibc.close(pidfd)
    }
}

extension Target {
    /// Resolves the target to a live process and opens a pidfd on it.
    func resolve() throws -> ResolvedTarget {
        switch self {
        case .pid(let pid):
            guard pid > 0 else {
                throw NSExecError(.usage, "invalid target pid \(pid): a pid is a positive number; find it with ps or runc state")
            }
            let pidfd = nsexec_pidfd_open(pid)
            guard pidfd >= 0 else {
                let error = errno
                if error == ESRCH {
                    throw NSExecError(.target, "target pid \(pid) not found: \(FileIO.errorText(error)); check the pid with ps")
                }
                throw NSExecError.system("cannot open a pidfd for pid \(pid)", errno: error)
            }
            return ResolvedTarget(pid: pid, pidfd: pidfd, containerID: nil)

        case .container(let id, let runtimeRoot):
            let state = try ContainerState.load(id: id, runtimeRoot: runtimeRoot)
            return try state.pin()
        }
    }
}

/// Reads the state letter (field 3) and start time in clock ticks since boot (field 22)
/// of /proc/PID/stat; returns nil when the process is gone. It works on bytes: String
/// splitting runs the standard library's Character code, which nothing else here needs.
func processStatus(pid: Int32) -> (state: UInt8, startTime: UInt64)? {
    guard let bytes = FileIO.readProcFile(pid: pid, name: "stat", limit: 4096),
          let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
    // Fields after the command name start at field 3 (state), so field 22 is the 20th.
    var state: UInt8?
    var startTime: UInt64?
    var field = 0
    var start = close + 1
    while start < bytes.count && startTime == nil {
        while start < bytes.count && bytes[start] == UInt8(ascii: " ") { start += 1 }
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: " ") && bytes[end] != UInt8(ascii: "\n") { end += 1 }
        if end > start {
            if field == 0 { state = bytes[start] }
            if field == 19 { startTime = bytes.withUnsafeBufferPointer { decimalValue(UnsafeBufferPointer(rebasing: $0[start..<end])) } }
            field += 1
        }
        start = end + 1
    }
    guard let state, let startTime else { return nil }
    return (state, startTime)
}

/// Parses a non-negative decimal number; nil for anything else or on overflow. The CLI
/// parses pids with it too.
package func decimalValue(_ digits: UnsafeBufferPointer<UInt8>) -> UInt64? {
    guard !digits.isEmpty else { return nil }
    var value: UInt64 = 0
    for digit in digits {
        guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { return nil }
        let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
        let (sum, carry) = shifted.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
        guard !overflow && !carry else { return nil }
        value = sum
    }
    return value
}
