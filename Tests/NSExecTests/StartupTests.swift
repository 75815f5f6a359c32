import Foundation
import Testing

/// Returns whether the ELF file at `path` has no program interpreter, which makes it statically
/// linked. Only scripts/build-release makes such an nsexec.
private func isStaticallyLinked(_ path: String) -> Bool {
    guard let data = FileManager.default.contents(atPath: path), data.count >= 64,
          data.starts(with: [0x7f, 0x45, 0x4c, 0x46]), data[4] == 2 else { return false }
    func value(_ offset: Int, _ size: Int) -> Int {
        var result = 0
        for index in (0..<size).reversed() { result = result << 8 | Int(data[offset + index]) }
        return result
    }
    let headerOffset = value(0x20, 8)
    let headerSize = value(0x36, 2)
    let headerCount = value(0x38, 2)
    for index in 0..<headerCount {
        let offset = headerOffset + index * headerSize
        guard offset + 4 <= data.count else { return false }
        if value(offset, 4) == 3 { return false } // PT_INTERP
    }
    return true
}

private let strace = ["/usr/bin/strace", "/bin/strace"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// The release build keeps two Swift runtime constructors out of the binary
/// (Sources/CNSExecInit/init.c). These tests fail if a toolchain or link change
/// brings either back.
@Suite("Release build start-up",
       .enabled(if: isStaticallyLinked(Machine.nsexecBinary),
                "the binary under test is not the static release build; scripts/test runs this suite on it"))
struct StartupTests {
    @Test("backtracer absent under SWIFT_BACKTRACE")
    func noBacktracer() throws {
        // With the backtracer linked and no swift-backtrace next to the binary, the
        // runtime warns on stderr that it cannot find one.
        let result = try runCommand([Machine.nsexecBinary, "--version"],
                                    environment: ["SWIFT_BACKTRACE": "enable=yes"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("nsexec "))
        #expect(result.stderr.isEmpty, "stderr: \(result.stderr)")
    }

    @Test("start-up skips argv and backtracer scans",
          .enabled(if: strace != nil, "needs strace"))
    func noStartupScans() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("nsexec-startup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let tracePath = directory.appendingPathComponent("trace").path

        let result = try runCommand([strace!, "-f", "-o", tracePath, "-e", "trace=%file",
                                     Machine.nsexecBinary, "--version"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let trace = try String(contentsOfFile: tracePath, encoding: .utf8)
        #expect(trace.contains("execve("), "the trace holds no execve: \(trace)")
        #expect(!trace.contains("/proc/self/maps"), "trace: \(trace)")
        #expect(!trace.contains("swift-backtrace"), "trace: \(trace)")
    }
}
