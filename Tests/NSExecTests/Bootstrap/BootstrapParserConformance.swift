import CNSExec
import Glibc
import NSExec
import Testing

/// Returns the text that a config field points to, or "" for none.
private func text(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String {
    guard let pointer else { return "" }
    return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
}

/// Returns the joins of a config as (flag, path) pairs.
private func joins(_ config: nsexec_config) -> [(UInt32, String)] {
    withUnsafeBytes(of: config.joins) { raw in
        Array(raw.bindMemory(to: nsexec_join.self).prefix(config.join_count)).map {
            ($0.flag, $0.path.map { String(cString: $0) } ?? "")
        }
    }
}

/// nsexec_parse_bootstrap on messages made by the Swift BootstrapMessage encoder: every
/// attribute reaches the config, so the encoder and the parser agree on the format.
@Suite("Bootstrap: parser")
struct BootstrapParserConformance {
    /// Parses message, calls check with the config and frees it.
    func parse(_ message: [UInt8], sourceLocation: SourceLocation = #_sourceLocation,
               _ check: (nsexec_config) throws -> Void) throws {
        var config = nsexec_config()
        var error = [CChar](repeating: 0, count: 512)
        let result = message.withUnsafeBufferPointer { bytes in
            nsexec_parse_bootstrap(bytes.baseAddress, bytes.count, &config, &error, error.count)
        }
        try #require(result == 0, "rejected: \(cString(error))", sourceLocation: sourceLocation)
        defer { nsexec_config_free(&config) }
        try check(config)
    }

    @Test("bootstrap.parses_every_attribute")
    func everyAttribute() throws {
        let flags = Namespace.user.cloneFlag | Namespace.net.cloneFlag | Namespace.time.cloneFlag
        var message = BootstrapMessage()
        message.setCloneFlags(flags)
        message.setNamespacePaths([(.pid, "/proc/42/ns/pid"), (.mnt, "/proc/42/ns/mnt"), (.user, "/proc/42/ns/user")])
        message.append(type: NSEXEC_UIDMAP_ATTR, text: "0 1000 1\n")
        message.append(type: NSEXEC_GIDMAP_ATTR, text: "0 1000 1\n")
        message.append(type: NSEXEC_SETGROUP_ATTR, uint8: 1)
        message.append(type: NSEXEC_OOM_SCORE_ADJ_ATTR, text: "-500")
        message.append(type: NSEXEC_ROOTLESS_EUID_ATTR, uint8: 1)
        message.append(type: NSEXEC_UIDMAPPATH_ATTR, text: "/usr/bin/newuidmap")
        message.append(type: NSEXEC_GIDMAPPATH_ATTR, text: "/usr/bin/newgidmap")
        message.append(type: NSEXEC_TIMENSOFFSET_ATTR, text: "monotonic 1000 0\nboottime 1000 0\n")

        try parse(message.encoded()) { config in
            #expect(config.clone_flags == flags)
            #expect(config.pidfd == -1)
            let joined = joins(config)
            try #require(joined.count == 3)
            #expect(joined[0].0 == Namespace.pid.cloneFlag)
            #expect(joined[0].1 == "/proc/42/ns/pid")
            #expect(joined[1].0 == Namespace.mnt.cloneFlag)
            #expect(joined[1].1 == "/proc/42/ns/mnt")
            #expect(joined[2].0 == Namespace.user.cloneFlag)
            #expect(joined[2].1 == "/proc/42/ns/user")
            #expect(text(config.uid_map, config.uid_map_length) == "0 1000 1\n")
            #expect(text(config.gid_map, config.gid_map_length) == "0 1000 1\n")
            #expect(config.setgroups_allowed)
            #expect(text(config.oom_score_adj, config.oom_score_adj_length) == "-500")
            #expect(config.rootless_euid)
            #expect(config.uid_map_path.map { String(cString: $0) } == "/usr/bin/newuidmap")
            #expect(config.gid_map_path.map { String(cString: $0) } == "/usr/bin/newgidmap")
            #expect(text(config.timens_offsets, config.timens_offsets_length) == "monotonic 1000 0\nboottime 1000 0\n")
            #expect(!config.no_fork)
        }
    }

    @Test("bootstrap.parses_header_only_message")
    func headerOnly() throws {
        let encoded = BootstrapMessage().encoded()
        #expect(encoded.count == 16)
        try parse(encoded) { config in
            #expect(config.clone_flags == 0)
            #expect(config.join_count == 0)
            #expect(config.uid_map == nil)
            #expect(config.timens_offsets_length == 0)
        }
    }

    @Test("bootstrap.accepts_text_with_trailing_nul")
    func textWithTrailingNul() throws {
        // C senders include the NUL, runc's Go side does not: both mean the same text.
        var message = BootstrapMessage()
        message.append(type: NSEXEC_NS_PATHS_ATTR, cString: "net:/run/netns/test")
        message.append(type: NSEXEC_UIDMAP_ATTR, cString: "0 0 1")
        message.append(type: NSEXEC_UIDMAPPATH_ATTR, cString: "/usr/bin/newuidmap")
        try parse(message.encoded()) { config in
            let joined = joins(config)
            try #require(joined.count == 1)
            #expect(joined[0].1 == "/run/netns/test")
            #expect(text(config.uid_map, config.uid_map_length) == "0 0 1")
            #expect(config.uid_map_path.map { String(cString: $0) } == "/usr/bin/newuidmap")
        }
    }
}
