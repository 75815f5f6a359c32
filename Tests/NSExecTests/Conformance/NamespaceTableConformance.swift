import CNSExec
import Glibc
import NSExec
import Testing

/// The namespace table of the C core (namespaces.c), checked from Swift.
@Suite struct NamespaceTableConformance {
    @Test("namespace_table.lists_eight_types")
    func listsEightTypes() throws {
        var names: [String] = []
        for index in 0..<Int(NSEXEC_NAMESPACE_COUNT) {
            let entry = try #require(nsexec_namespace_at(index), "index \(index)")
            names.append(try #require(string(entry.pointee.name), "index \(index)"))
        }

        #expect(NSEXEC_NAMESPACE_COUNT == 8)
        #expect(Set(names) == ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"])
        #expect(nsexec_namespace_at(Int(NSEXEC_NAMESPACE_COUNT)) == nil)

        // The Swift Namespace type mirrors the C table.
        #expect(Set(Namespace.allCases.map(\.rawValue)) == Set(names))
    }

    @Test("namespace_table.flags_are_clone_constants")
    func flagsAreCloneConstants() throws {
        for known in knownNamespaces {
            let entry = try #require(nsexec_namespace_by_name(known.name, known.name.utf8.count), "\(known.name)")
            #expect(entry.pointee.flag == known.flag, "\(known.name)")
            #expect(Namespace(rawValue: known.name)?.cloneFlag == known.flag, "\(known.name)")
        }
    }

    @Test("namespace_table.finds_entry_by_name")
    func findsEntryByName() throws {
        for index in 0..<Int(NSEXEC_NAMESPACE_COUNT) {
            let entry = try #require(nsexec_namespace_at(index))
            let name = String(cString: entry.pointee.name)
            #expect(nsexec_namespace_by_name(name, name.utf8.count) == entry, "\(name)")
        }

        // The length bounds the name, so a name inside a longer buffer is found.
        #expect(nsexec_namespace_by_name("net:/proc/1/ns/net", 3) == nsexec_namespace_by_flag(CloneFlag.newNet))

        for unknown in ["ne", "netx", "NET", "mount", ""] {
            #expect(nsexec_namespace_by_name(unknown, unknown.utf8.count) == nil, "\(unknown)")
        }
    }

    @Test("namespace_table.finds_entry_by_flag")
    func findsEntryByFlag() throws {
        for known in knownNamespaces {
            let entry = try #require(nsexec_namespace_by_flag(known.flag), "\(known.name)")
            #expect(string(entry.pointee.name) == known.name)
        }

        for flags in [0, CloneFlag.newNet | CloneFlag.newUTS, CloneFlag.vm] {
            #expect(nsexec_namespace_by_flag(flags) == nil, "flags 0x\(String(flags, radix: 16))")
        }
    }

    @Test("namespace_table.all_flags_is_union")
    func allFlagsIsUnion() {
        let expected = knownNamespaces.reduce(UInt32(0)) { $0 | $1.flag }

        #expect(nsexec_namespace_all_flags() == expected)
    }

    @Test("namespace_table.proc_files_have_table_types")
    func procFilesHaveTableTypes() throws {
        for index in 0..<Int(NSEXEC_NAMESPACE_COUNT) {
            let entry = try #require(nsexec_namespace_at(index))
            let path = "/proc/self/ns/\(String(cString: entry.pointee.name))"

            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0, "\(path): \(errorText(errno))")
            defer { close(fd) }
            #expect(nsexec_namespace_file_type(fd) == entry.pointee.flag, "\(path)")
        }
    }

    @Test("namespace_table.rejects_non_namespace_file")
    func rejectsNonNamespaceFile() throws {
        for path in ["/dev/null", "/proc/self/status"] {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0, "\(path): \(errorText(errno))")
            defer { close(fd) }

            errno = 0
            let type = nsexec_namespace_file_type(fd)
            let error = errno
            #expect(type == 0, "\(path)")
            #expect(error == EINVAL, "\(path)")
        }
    }
}
