import Foundation
import Glibc
import Testing

/// A target process in fresh namespaces, made with unshare(1): PID (with its own /proc),
/// mount, UTS (hostname set), IPC, network, cgroup and time, or with `sharingPID` all but
/// PID. Stopped on `stop()` or deinit.
final class UnshareTarget: @unchecked Sendable {
    let hostname: String
    private let launcher: Subprocess
    /// The file that takes unshare's stderr, shown when the target does not start. When its
    /// child dies of SIGKILL, unshare reports that it cannot unblock the signal, which would
    /// only be noise in the test log.
    private let launcherErrors: String
    /// The sleep process inside the namespaces (PID 1 of its PID namespace).
    private(set) var pid: Int32 = 0

    /// With `--user` in extraFlags and no map, the shell loses its capabilities at exec,
    /// so pass `setHostname: false` and write the maps from the test.
    init(hostname: String = "nsexec-\(UUID().uuidString.prefix(8).lowercased())",
         extraFlags: [String] = [], setHostname: Bool = true, sharingPID: Bool = false) throws {
        self.hostname = hostname
        launcherErrors = FileManager.default.temporaryDirectory.appendingPathComponent("nsexec-unshare-\(UUID().uuidString)").path
        let errors = open(launcherErrors, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        defer { if errors >= 0 { close(errors) } }
        let pidFlags = sharingPID ? ["--mount"] : ["--pid", "--mount-proc"]
        launcher = try Subprocess(["/usr/bin/unshare", "--fork"] + pidFlags + ["--uts", "--ipc", "--net", "--cgroup", "--time"]
                                  + extraFlags + ["sh", "-c", setHostname ? "hostname \(hostname) && exec sleep 600" : "exec sleep 600"],
                                  stderr: errors >= 0 ? errors : nil)

        // unshare forks the shell, which execs sleep once the hostname is set.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let child = Self.children(of: launcher.pid).first,
               let comm = try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8),
               comm.hasPrefix("sleep") {
                pid = child
                return
            }
            usleep(5000)
        }
        let output = (try? String(contentsOfFile: launcherErrors, encoding: .utf8)) ?? ""
        stop()
        throw TargetError("unshare target did not start within 10 s; unshare printed: \(output)")
    }

    static func children(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Kills the target and reaps the unshare process, which reaps the target and exits on its
    /// own. Killed first, unshare would leave the target to the machine's init to reap.
    func stop() {
        if pid > 0 {
            kill(pid, SIGKILL)
            // Kills unshare too if it has not exited within 5 s.
            _ = launcher.wait(timeout: 5)
        } else {
            launcher.kill(SIGKILL)
            launcher.wait()
        }
        pid = 0
        unlink(launcherErrors)
    }

    deinit { stop() }
}

struct TargetError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A real runc container from a busybox root filesystem, made by scripts/lib/container.sh.
/// Killed and deleted on `stop()` or deinit.
final class BusyboxContainer: @unchecked Sendable {
    enum Runtime: String { case runc, crun }

    let id: String
    let hostname: String
    let runtime: Runtime
    let bundle: String
    private(set) var pid: Int32 = 0
    private var stopped = false

    init(runtime: Runtime = .runc, hostname: String? = nil) throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        self.runtime = runtime
        self.id = "nsexec-test-\(runtime.rawValue)-\(suffix)"
        self.hostname = hostname ?? "box-\(suffix)"
        self.bundle = FileManager.default.temporaryDirectory.appendingPathComponent(id).path

        let start = runtime == .runc ? "nsx_runc_start" : "nsx_crun_start"
        let script = "set -e; source \(Machine.packageRoot)/scripts/lib/container.sh; "
            + "nsx_make_bundle \(bundle) \(self.hostname) >/dev/null; \(start) \(id) \(bundle)"
        let result = try runCommand(["/bin/bash", "-c", script], timeout: 60)
        guard result.status == 0, let pid = Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            stop()
            throw TargetError("cannot start \(runtime.rawValue) container \(id): \(result.stderr)")
        }
        self.pid = pid
    }

    /// Runs a shell snippet in the container's root filesystem from the host side.
    var rootfs: String { bundle + "/rootfs" }

    func stop() {
        guard !stopped else { return }
        stopped = true
        let cleanup = runtime == .runc ? "nsx_runc_cleanup" : "nsx_crun_cleanup"
        _ = try? runCommand(["/bin/bash", "-c", "source \(Machine.packageRoot)/scripts/lib/container.sh; \(cleanup) \(id)"])
        try? FileManager.default.removeItem(atPath: bundle)
    }

    deinit { stop() }
}
