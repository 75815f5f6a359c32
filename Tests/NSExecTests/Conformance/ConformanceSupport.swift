import CNSExec
import Glibc

/// CLONE_NEW* values from <linux/sched.h>, written out because Glibc's Swift
/// module does not export all of them (CLONE_NEWTIME dates from Linux 5.6).
enum CloneFlag {
    static let newNS: UInt32 = 0x0002_0000
    static let newCgroup: UInt32 = 0x0200_0000
    static let newUTS: UInt32 = 0x0400_0000
    static let newIPC: UInt32 = 0x0800_0000
    static let newUser: UInt32 = 0x1000_0000
    static let newPID: UInt32 = 0x2000_0000
    static let newNet: UInt32 = 0x4000_0000
    static let newTime: UInt32 = 0x0000_0080
    /// Not a namespace flag: CLONE_VM.
    static let vm: UInt32 = 0x0000_0100
}

/// The namespace types by /proc name, with their CLONE_NEW* values.
let knownNamespaces: [(name: String, flag: UInt32)] = [
    ("cgroup", CloneFlag.newCgroup), ("ipc", CloneFlag.newIPC), ("mnt", CloneFlag.newNS), ("net", CloneFlag.newNet),
    ("pid", CloneFlag.newPID), ("time", CloneFlag.newTime), ("user", CloneFlag.newUser), ("uts", CloneFlag.newUTS),
]

/// The uid that unprivileged steps switch to (65534, "nobody" on Debian).
let unprivilegedUID: uid_t = 65534

/// Passed as the uid of a probe to keep the caller's credentials.
let keepUID = uid_t.max

/// Decodes a NUL-terminated C char array, which Swift imports as a tuple.
func string<Tuple>(fromCArray array: Tuple) -> String {
    withUnsafeBytes(of: array) { bytes in
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Decodes a NUL-terminated string in a buffer.
func string(fromBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Returns the elements of a fixed-size C array of UInt64, which Swift imports as a tuple.
func uint64s<Tuple>(fromCArray array: Tuple) -> [UInt64] {
    withUnsafeBytes(of: array) { Array($0.bindMemory(to: UInt64.self)) }
}

/// Returns the text of a C string from the core, or nil for NULL.
func string(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}

/// C copies of strings for C structs that hold `const char *`, freed with the pool.
final class CStringPool {
    private var copies: [UnsafeMutablePointer<CChar>] = []

    /// Returns a copy of text that stays valid as long as the pool.
    func copy(_ text: String) -> UnsafePointer<CChar> {
        guard let pointer = strdup(text) else { fatalError("strdup failed: out of memory") }
        copies.append(pointer)
        return UnsafePointer(pointer)
    }

    deinit {
        for pointer in copies { free(pointer) }
    }
}

/// Returns the text of strerror(3) for an errno value, as the C core formats it.
func errorText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Returns the inode of /proc/self/ns/NAME of the test process, or 0.
func ownNamespaceInode(_ name: String) -> UInt64 {
    var info = stat()
    guard stat("/proc/self/ns/\(name)", &info) == 0 else { return 0 }
    return UInt64(info.st_ino)
}

/// Returns the inode of /proc/PID/ns/NAME, or 0.
func namespaceInode(pid: pid_t, _ name: String) -> UInt64 {
    var info = stat()
    guard stat("/proc/\(pid)/ns/\(name)", &info) == 0 else { return 0 }
    return UInt64(info.st_ino)
}

/// A process in new namespaces, started by the C probe and killed on deinit.
final class ProbeTarget {
    let pid: pid_t

    /// Starts a process that switches to uid (unless keepUID) and unshares flags.
    init(flags: UInt32, uid: uid_t = keepUID) throws {
        let pid = nsexec_probe_start_target(flags, uid)
        guard pid > 0 else { throw TargetError("cannot start a target with flags 0x\(String(flags, radix: 16)): \(errorText(errno))") }
        self.pid = pid
    }

    /// Returns the path of the target's namespace file of type name.
    func path(_ name: String) -> String { "/proc/\(pid)/ns/\(name)" }

    /// Returns the inode of the target's namespace of type name.
    func inode(_ name: String) -> UInt64 { namespaceInode(pid: pid, name) }

    deinit { _ = nsexec_probe_stop_target(pid) }
}
