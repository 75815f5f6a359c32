import CNSExec
import Glibc
import NSExec
import Testing

/// Parses message with nsexec_parse_bootstrap; returns the error line, or nil when it was accepted.
func parseBootstrapError(_ message: [UInt8]) -> (error: String?, errno: Int32, storageFreed: Bool) {
    var config = nsexec_config()
    var error = [CChar](repeating: 0, count: 512)
    errno = 0
    let result = message.withUnsafeBufferPointer { bytes in
        nsexec_parse_bootstrap(bytes.baseAddress, bytes.count, &config, &error, error.count)
    }
    let parseErrno = errno
    if result == 0 {
        nsexec_config_free(&config)
        return (nil, 0, true)
    }
    return (cString(error), parseErrno, config.paths_storage == nil)
}

/// Returns the text of a NUL-terminated buffer that C wrote into.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Builds a message with one raw attribute header (length field, type) and `size` bytes after the netlink header.
private func messageWithRawAttribute(length: UInt16, type: Int32, size: Int) -> [UInt8] {
    var bytes = BootstrapDriver.header(length: UInt32(16 + size), type: UInt16(NSEXEC_INIT_MSG))
    bytes += [UInt8](repeating: 0, count: size)
    withUnsafeBytes(of: length) { bytes.replaceSubrange(16..<18, with: $0) }
    withUnsafeBytes(of: UInt16(type)) { bytes.replaceSubrange(18..<20, with: $0) }
    return bytes
}

private func message(_ build: (inout BootstrapMessage) -> Void) -> [UInt8] {
    var message = BootstrapMessage()
    build(&message)
    return message.encoded()
}

/// Malformed bootstrap messages: each is rejected by nsexec_parse_bootstrap and by the nsexec
/// binary with one error, exit status 125, no pid line, no stage started (so no namespace
/// joined) and no process left behind.
@Suite("Bootstrap: malformed messages")
struct BootstrapMalformedConformance {
    /// Checks the parser's rejection: an error line containing detail, EINVAL, no storage left.
    func expectParserRejects(_ message: [UInt8], _ detail: String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
        let parsed = parseBootstrapError(message)
        #expect(parsed.error?.contains(detail) == true, "parser error: \(parsed.error ?? "none")",
                sourceLocation: sourceLocation)
        #expect(parsed.error?.contains("\n") == false, sourceLocation: sourceLocation)
        #expect(parsed.errno == EINVAL, sourceLocation: sourceLocation)
        #expect(parsed.storageFreed, sourceLocation: sourceLocation)
    }

    /// Checks that the nsexec binary rejects message with one error record containing detail.
    func expectHelperRejects(_ message: [UInt8], _ detail: String,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        var run = BootstrapDriver.Run(bootstrap: message)
        run.endAfterBootstrap = true
        let outcome = try BootstrapDriver.run(run)

        #expect(BootstrapDriver.exited(outcome.helperStatus, with: NSEXEC_EXIT_FAILURE),
                "wait status \(String(describing: outcome.helperStatus))", sourceLocation: sourceLocation)
        #expect(!outcome.reportedPIDs, sourceLocation: sourceLocation)
        #expect(outcome.otherRecords.isEmpty, sourceLocation: sourceLocation)
        try #require(outcome.errors.count == 1, "error records: \(outcome.errors)", sourceLocation: sourceLocation)
        #expect(outcome.errors[0].error.contains(detail), "error: \(outcome.errors[0].error)",
                sourceLocation: sourceLocation)
        #expect(outcome.errors[0].status == Int(NSEXEC_EXIT_FAILURE), sourceLocation: sourceLocation)
        #expect(outcome.errors[0].pids == [0, 0], "stage 0 had started a stage", sourceLocation: sourceLocation)

        // At debug level every step is logged: nothing may come from a later stage or report a join.
        var errorLines = 0
        for line in outcome.logLines {
            let entry = try #require(BootstrapDriver.parseLogLine(line), "not a log line: \(line)",
                                     sourceLocation: sourceLocation)
            #expect(!entry.msg.contains("stage-1"), "\(entry.msg)", sourceLocation: sourceLocation)
            #expect(!entry.msg.contains("stage-2"), "\(entry.msg)", sourceLocation: sourceLocation)
            #expect(!entry.msg.contains("joined"), "\(entry.msg)", sourceLocation: sourceLocation)
            if entry.level == "error" { errorLines += 1 }
        }
        #expect(errorLines == 1, "log: \(outcome.log)", sourceLocation: sourceLocation)
        #expect(outcome.leftovers.isEmpty, "processes left: \(outcome.leftovers)", sourceLocation: sourceLocation)
    }

    func expectRejected(_ message: [UInt8], _ detail: String,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        expectParserRejects(message, detail, sourceLocation: sourceLocation)
        try expectHelperRejects(message, detail, sourceLocation: sourceLocation)
    }

    @Test("bootstrap.rejects_empty_input")
    func emptyInput() throws {
        try expectRejected([], "the init pipe sent no data")
    }

    @Test("bootstrap.rejects_short_header")
    func shortHeader() throws {
        let header = BootstrapDriver.header(length: 16, type: UInt16(NSEXEC_INIT_MSG))
        try expectRejected(Array(header[0..<8]), "8 bytes is shorter than the 16-byte header")
    }

    @Test("bootstrap.rejects_wrong_message_type")
    func wrongMessageType() throws {
        try expectRejected(BootstrapDriver.header(length: 16, type: UInt16(NSEXEC_PROCESS_MSG)),
                           "type 62001, expected 62000")
    }

    @Test("bootstrap.rejects_length_below_header")
    func lengthBelowHeader() throws {
        try expectRejected(BootstrapDriver.header(length: 8, type: UInt16(NSEXEC_INIT_MSG)),
                           "stated length 8 is shorter than the header")
    }

    @Test("bootstrap.rejects_truncated_message")
    func truncatedMessage() throws {
        // The header states 64 bytes; only 24 arrive before end of file.
        var bytes = message { $0.setCloneFlags(Namespace.net.cloneFlag) }
        withUnsafeBytes(of: UInt32(64)) { bytes.replaceSubrange(0..<4, with: $0) }
        expectParserRejects(bytes, "stated length 64 differs from the 24 bytes received")
        try expectHelperRejects(bytes, "closed before the stated 64 bytes")
    }

    @Test("bootstrap.rejects_attribute_past_end")
    func attributePastEnd() throws {
        try expectRejected(messageWithRawAttribute(length: 40, type: NSEXEC_NS_PATHS_ATTR, size: 8),
                           "attribute 27282 of length 40 runs past the end of the 24-byte message")
    }

    @Test("bootstrap.rejects_attribute_length_below_4")
    func attributeLengthBelow4() throws {
        try expectRejected(messageWithRawAttribute(length: 2, type: NSEXEC_CLONE_FLAGS_ATTR, size: 8),
                           "attribute 27281 has length 2, below the 4-byte minimum")
    }

    @Test("bootstrap.rejects_unknown_attribute")
    func unknownAttribute() throws {
        try expectRejected(message { $0.append(type: 27299, uint32: 1) }, "unknown attribute type 27299")
    }

    @Test("bootstrap.rejects_empty_namespace_paths")
    func emptyNamespacePaths() throws {
        try expectRejected(message { $0.append(type: NSEXEC_NS_PATHS_ATTR, text: "") }, "namespace paths are empty")
    }

    @Test("bootstrap.rejects_path_without_colon")
    func pathWithoutColon() throws {
        try expectRejected(message { $0.append(type: NSEXEC_NS_PATHS_ATTR, text: "/proc/self/ns/net") },
                           "namespace path entry '/proc/self/ns/net' has no ':'")
    }

    @Test("bootstrap.rejects_unknown_namespace_type")
    func unknownNamespaceType() throws {
        try expectRejected(message { $0.append(type: NSEXEC_NS_PATHS_ATTR, text: "foo:/proc/self/ns/net") },
                           "unknown namespace type 'foo'")
    }

    @Test("bootstrap.rejects_message_over_1mib")
    func messageOver1MiB() throws {
        // A header stating 1 MiB + 16 bytes, followed by that many bytes.
        let limit = 1 << 20
        var bytes = BootstrapDriver.header(length: UInt32(limit + 16), type: UInt16(NSEXEC_INIT_MSG))
        bytes += [UInt8](repeating: 0, count: limit)
        try expectRejected(bytes, "exceeds the 1048576-byte limit")
    }

    @Test("bootstrap.rejects_duplicate_namespace")
    func duplicateNamespace() throws {
        try expectRejected(message { $0.append(type: NSEXEC_NS_PATHS_ATTR, text: "net:/run/netns/a,net:/run/netns/b") },
                           "net namespace is listed twice")
    }

    @Test("bootstrap.rejects_non_namespace_clone_flags")
    func nonNamespaceCloneFlags() throws {
        try expectRejected(message { $0.setCloneFlags(Namespace.net.cloneFlag | 0x100 /* CLONE_VM */) },
                           "clone flags 0x100 are not namespace flags")
    }

    /// Found by the fuzzer: an entry containing a newline was copied into the error as is,
    /// so that the error was no longer one line.
    @Test("bootstrap.error_escapes_control_bytes")
    func errorEscapesControlBytes() throws {
        try expectRejected(message { $0.append(type: NSEXEC_NS_PATHS_ATTR, text: "0 1000 1\n") },
                           #"namespace path entry '0 1000 1\x0a' has no ':'"#)
    }
}
