import Foundation
import Testing

@Suite("runc container", .serialized,
       .enabled(if: Machine.isRoot && Machine.hasRunc && Machine.hasBusybox, "needs root, runc and busybox-static"))
struct RuncContainerTests {
    @Test("hostname and PID 1 inside a runc container")
    func hostnameAndInit() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }

        let result = try runNsexec(["--target", "\(container.pid)", "--all", "--", "sh", "-c",
                                    "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == container.hostname)
        #expect(lines.dropFirst().first == "sleep 1000000 ", "PID 1 inside is the container's init")
        #expect(result.stdout.contains("bin"))
    }

    @Test("container id resolves to its init")
    func containerID() throws {
        let container = try BusyboxContainer(runtime: .runc)
        defer { container.stop() }

        let result = try runNsexec(["--container", container.id, "--", "hostname"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.firstLine == container.hostname)
    }
}
