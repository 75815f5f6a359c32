import Foundation
import Glibc
import Testing

/// Whether gcc and a static libc are installed, to build the attacker (packages gcc, libc6-dev).
let canBuildStaticC = FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc")
    && FileManager.default.fileExists(atPath: "/usr/lib/\(machineTriple)/libc.a")

/// The Debian multiarch directory name of this machine.
private var machineTriple: String {
    #if arch(x86_64)
    return "x86_64-linux-gnu"
    #elseif arch(arm64)
    return "aarch64-linux-gnu"
    #else
    return "unknown"
    #endif
}

/// Capability names by number, as runc's config.json spells them, from 0 to 40.
private let capabilityNames = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
].map { "CAP_" + $0 }

/// The first host uid and gid that the container's ids 0-65535 map to.
let hostileIDBase = 100_000

/// A busybox runc container made as strong as a container process gets without host
/// privileges: its own user namespace (container ids 0-65535 are host ids 100000-165535)
/// and every capability inside it, CAP_SYS_PTRACE included. nsexec's stages enter that user
/// namespace, so the kernel's capability checks do not protect them from a container
/// process. Only the stages being non-dumpable does. Killed and deleted on `stop()` or deinit.
final class HostileContainer: @unchecked Sendable {
    let id: String
    let bundle: String
    var rootfs: String { bundle + "/rootfs" }
    private(set) var pid: Int32 = 0
    private var stopped = false

    /// Makes the bundle, lets `prepare` add files to the root filesystem, and starts the
    /// container with `initArguments` as its init (default `sleep 1000000`). The files that
    /// `prepare` adds belong to host root until all of the root filesystem is handed to the
    /// container's root.
    init(initArguments: [String]? = nil, prepare: (String) throws -> Void = { _ in }) throws {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        id = "nsexec-hostile-\(suffix)"
        bundle = FileManager.default.temporaryDirectory.appendingPathComponent(id).path

        let library = "source \(Machine.packageRoot)/scripts/lib/container.sh"
        let bundleCreation = try runCommand(["/bin/bash", "-c", "set -e; \(library); nsx_make_bundle \(bundle) hostile-\(suffix) >/dev/null"])
        guard bundleCreation.status == 0 else {
            stop()
            throw TargetError("cannot make the bundle of \(id): \(bundleCreation.stderr)")
        }

        do {
            try configure(initArguments: initArguments)
            try prepare(rootfs)
            let owner = "\(hostileIDBase):\(hostileIDBase)"
            let chown = try runCommand(["/bin/chown", "-R", "-h", owner, rootfs])
            guard chown.status == 0 else { throw TargetError("cannot chown \(rootfs): \(chown.stderr)") }
        } catch {
            stop()
            throw error
        }

        let started = try runCommand(["/bin/bash", "-c", "set -e; \(library); nsx_runc_start \(id) \(bundle)"])
        guard started.status == 0, let pid = Int32(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            stop()
            throw TargetError("cannot start container \(id): \(started.stderr)")
        }
        self.pid = pid
    }

    /// Adds the user namespace, its id maps and every capability to config.json.
    private func configure(initArguments: [String]?) throws {
        let path = bundle + "/config.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard var config = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              var linux = config["linux"] as? [String: Any],
              var process = config["process"] as? [String: Any],
              var namespaces = linux["namespaces"] as? [[String: Any]] else {
            throw TargetError("unexpected layout of \(path) from runc spec")
        }

        namespaces.append(["type": "user"])
        linux["namespaces"] = namespaces
        let map: [[String: Any]] = [["containerID": 0, "hostID": hostileIDBase, "size": 65536]]
        linux["uidMappings"] = map
        linux["gidMappings"] = map

        let lastCap = (try? String(contentsOfFile: "/proc/sys/kernel/cap_last_cap", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 40
        let all = Array(capabilityNames.prefix(lastCap + 1))
        process["capabilities"] = ["bounding": all, "effective": all, "permitted": all, "ambient": [String]()]
        if let initArguments { process["args"] = initArguments }

        config["linux"] = linux
        config["process"] = process
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
    }

    /// Runs argv as a new process of the container, with `runc exec`.
    @discardableResult
    func exec(_ argv: [String]) throws -> CommandResult {
        try runCommand(["/usr/sbin/runc", "exec", id] + argv)
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        let library = "source \(Machine.packageRoot)/scripts/lib/container.sh"
        _ = try? runCommand(["/bin/bash", "-c", "\(library); nsx_runc_cleanup \(id)"])
        try? FileManager.default.removeItem(atPath: bundle)
    }

    deinit { stop() }
}

/// A directory that exists only on the host, with a marker file, a `sub` directory and a
/// busybox `bin/sh`, `bin/ls`, `bin/stat` and `bin/pwd`: a program that ends up here prints
/// the marker. Removed on deinit.
final class HostDirectory {
    static let marker = "HOST-ONLY-MARKER"
    let path: String

    init() throws {
        path = "/tmp/nsexec-host-only-\(UUID().uuidString.prefix(8).lowercased())"
        let files = FileManager.default
        try files.createDirectory(atPath: path + "/sub", withIntermediateDirectories: true)
        try files.createDirectory(atPath: path + "/bin", withIntermediateDirectories: true)
        try Self.marker.write(toFile: "\(path)/\(Self.marker)", atomically: false, encoding: .utf8)
        try files.copyItem(atPath: "/bin/busybox", toPath: path + "/bin/busybox")
        for applet in ["sh", "ls", "stat", "pwd", "echo"] {
            try files.createSymbolicLink(atPath: "\(path)/bin/\(applet)", withDestinationPath: "busybox")
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
