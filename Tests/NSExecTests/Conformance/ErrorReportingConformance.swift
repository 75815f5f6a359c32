import CNSExec
import Glibc
import Testing

/// Error reporting of the C core (log.c), checked from Swift. nsexec_fail ends the
/// process, so the C fail probe calls it in a forked child.
@Suite struct ErrorReportingConformance {
    /// Exit status and output of the failing child.
    struct FailOutcome {
        var status: Int32
        var pid: pid_t
        var startedPID: pid_t
        var startedSignal: Int32
        var report: String
        var log: String
        var stderr: String
    }

    /// Calls nsexec_fail in a forked child, set up as the arguments describe.
    static func fail(status: Int32 = NSEXEC_EXIT_FAILURE, error: Int32 = 0, hint: String? = nil,
                     message: String = "cannot do it", stage: String? = nil, report: Bool = true,
                     log: Bool = false, echo: Bool = false, startStage: Bool = false) throws -> FailOutcome {
        let pool = CStringPool()
        var request = nsexec_fail_request()
        request.status = status
        request.error = error
        request.hint = hint.map(pool.copy)
        request.message = pool.copy(message)
        request.stage = stage.map(pool.copy)
        request.report = report
        request.log = log
        request.echo = echo
        request.start_stage = startStage

        var probe = nsexec_fail_probe()
        try #require(nsexec_probe_fail(&request, &probe) == 0, "fail probe failed: \(errorText(errno))")
        return FailOutcome(status: probe.exit_status, pid: probe.pid, startedPID: probe.started_pid,
                           startedSignal: probe.started_signal, report: string(fromCArray: probe.report),
                           log: string(fromCArray: probe.log), stderr: string(fromCArray: probe.stderr_text))
    }

    /// nsexec_format_error into a buffer of size bytes.
    static func format(size: Int = 256, error: Int32, hint: String?, what: String) -> String {
        var buffer = [CChar](repeating: 0x78, count: size)
        let line = buffer.withUnsafeMutableBufferPointer { buffer in
            let result = nsexec_format_error(buffer.baseAddress, size, error, hint, what)
            #expect(result == UnsafePointer(buffer.baseAddress), "the result is not the buffer")
            return String(cString: buffer.baseAddress!)
        }
        return line
    }

    @Test("error.format_joins_parts")
    func formatJoinsParts() {
        let cases: [(error: Int32, hint: String?, expected: String)] = [
            (ENOENT, "check the path", "open /x: \(errorText(ENOENT)); check the path"),
            (ENOENT, nil, "open /x: \(errorText(ENOENT))"),
            (0, "check the path", "open /x; check the path"),
            (0, nil, "open /x"),
        ]

        for c in cases {
            #expect(Self.format(error: c.error, hint: c.hint, what: "open /x") == c.expected)
        }
    }

    @Test("error.format_truncates_to_buffer")
    func formatTruncatesToBuffer() {
        let line = Self.format(size: 10, error: EPERM, hint: "run as root", what: "cannot join net namespace")

        #expect(line == "cannot jo")
    }

    @Test("error.json_escape_bounds")
    func jsonEscapeBounds() {
        var out = [CChar](repeating: 0, count: 64)
        let length = nsexec_json_escape(&out, out.count, "a\"b\\c\nd\u{01}")
        let escaped = string(fromBuffer: out)
        #expect(escaped == "a\\\"b\\\\c\\u000ad\\u0001")
        #expect(length == escaped.utf8.count)

        // An escape that does not fit whole is left out, and the output stays NUL-terminated.
        var small = [CChar](repeating: 0x78, count: 4)
        #expect(nsexec_json_escape(&small, small.count, "\"\"\"") == 2)
        #expect(string(fromBuffer: small) == "\\\"")

        #expect(nsexec_json_escape(&small, 0, "abc") == 0)
    }

    @Test("error.fail_exits_with_status")
    func failExitsWithStatus() throws {
        for status in [NSEXEC_EXIT_FAILURE, NSEXEC_EXIT_NOT_EXECUTABLE, NSEXEC_EXIT_NOT_FOUND, 1] {
            let outcome = try Self.fail(status: status)

            #expect(outcome.status == status)
            #expect(outcome.report.contains("\"status\":\(status),"), "\(outcome.report)")
        }
    }

    @Test("error.fail_writes_json_record")
    func failWritesJSONRecord() throws {
        let outcome = try Self.fail(error: EPERM, hint: "run as root",
                                    message: "cannot join net namespace (/proc/4242/ns/net)")

        let expected = "{\"error\":\"cannot join net namespace (/proc/4242/ns/net): \(errorText(EPERM)); run as root\","
            + "\"status\":125,\"pids\":[0,0]}\n"
        #expect(outcome.report == expected)
        #expect(outcome.status == NSEXEC_EXIT_FAILURE)
    }

    @Test("error.fail_escapes_json")
    func failEscapesJSON() throws {
        let outcome = try Self.fail(message: "bad \"name\" in C:\\dir\nnext\tline")

        #expect(outcome.report
            == "{\"error\":\"bad \\\"name\\\" in C:\\\\dir\\u000anext\\u0009line\",\"status\":125,\"pids\":[0,0]}\n")
    }

    @Test("error.fail_kills_started_stages")
    func failKillsStartedStages() throws {
        let outcome = try Self.fail(startStage: true)

        try #require(outcome.startedPID > 0)
        #expect(outcome.startedSignal == SIGKILL)
        #expect(outcome.report.contains("\"pids\":[\(outcome.startedPID),0]"), "\(outcome.report)")
    }

    @Test("error.fail_logs_error_line")
    func failLogsErrorLine() throws {
        let outcome = try Self.fail(error: ENOENT, message: "cannot open /x", stage: "stage-1", log: true)

        let expected = "{\"level\":\"error\",\"msg\":\"stage-1[\(outcome.pid)]: cannot open /x: \(errorText(ENOENT))\"}\n"
        #expect(outcome.log == expected)
    }

    @Test("error.fail_echoes_to_stderr")
    func failEchoesToStderr() throws {
        let withoutReport = try Self.fail(report: false)
        #expect(withoutReport.stderr == "nsexec: cannot do it\n")

        let echoed = try Self.fail(echo: true)
        #expect(echoed.stderr == "nsexec: cannot do it\n")
        #expect(echoed.report != "")

        let quiet = try Self.fail()
        #expect(quiet.stderr == "")
        #expect(quiet.report != "")
    }
}
