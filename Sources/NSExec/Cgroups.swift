import Glibc

/// The target's cgroups, for `--join-cgroup`: cgroup v1 hierarchies and the v2 one alike.
enum Cgroups {
    /// One cgroup filesystem mount from /proc/self/mountinfo.
    struct Mount {
        var root: String
        var mountPoint: String
        var version2: Bool
        /// v1 controllers and `name=` options of the mount.
        var options: Set<String>
    }

    static func mounts() -> [Mount] {
        guard let text = FileIO.readText("/proc/self/mountinfo") else { return [] }
        var result: [Mount] = []
        for line in text.split(separator: "\n") {
            // Optional fields end at a lone "-"; the filesystem type and options follow it.
            let all = line.split(separator: " ")
            guard let dash = all.firstIndex(of: "-") else { continue }
            let fields = all[..<dash]
            let tail = Array(all[(dash + 1)...])
            guard fields.count >= 5, tail.count >= 3 else { continue }
            let type = tail[0]
            guard type == "cgroup" || type == "cgroup2" else { continue }
            result.append(Mount(root: String(fields[fields.startIndex + 3]), mountPoint: unescape(String(fields[fields.startIndex + 4])),
                                version2: type == "cgroup2",
                                options: Set(tail[2].split(separator: ",").map(String.init))))
        }
        return result
    }

    /// Mount points in mountinfo escape spaces and similar as octal \NNN.
    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[index + 1...index + 3], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Lists the directory of each of pid's cgroups on this host's cgroup mounts.
    static func directories(pid: Int32) -> [String] {
        guard let text = FileIO.readText("/proc/\(pid)/cgroup") else { return [] }
        let mounts = mounts()
        var result: [String] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ",").map(String.init)
            let path = String(parts[2])
            let mount = mounts.first { mount in
                controllers.isEmpty ? mount.version2 : !mount.version2 && controllers.allSatisfy(mount.options.contains)
            }
            guard let mount else { continue }
            let relative: Substring
            if mount.root == "/" {
                relative = Substring(path)
            } else if path.hasPrefix(mount.root) {
                relative = path.dropFirst(mount.root.count)
            } else {
                continue
            }
            result.append(mount.mountPoint + (relative.hasPrefix("/") ? "" : "/") + relative)
        }
        return result
    }

    /// Opens cgroup.procs of every cgroup of pid for writing, close-on-exec.
    static func openProcsFiles(pid: Int32, label: String) throws -> [Int32] {
        let directories = directories(pid: pid)
        guard !directories.isEmpty else {
            throw NSExecError(.target, "cannot find the cgroups of \(label) in /proc/\(pid)/cgroup; check that cgroups are mounted")
        }
        var fds: [Int32] = []
        for directory in directories {
            let path = directory + "/cgroup.procs"
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let error = errno
                for opened in fds { _ = close(opened) }
                throw NSExecError(.target, "cannot open \(path) to join the cgroup of \(label): \(FileIO.errorText(error)); run as root")
            }
            fds.append(fd)
        }
        return fds
    }
}
