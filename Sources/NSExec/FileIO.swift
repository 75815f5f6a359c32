import CNSExec
import Glibc

/// Small file helpers on raw syscalls, so that the CLI's path needs no Foundation.
enum FileIO {
    /// Reads a whole file (up to limit bytes). Returns nil and leaves errno set on failure.
    static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(fd: fd, limit: limit)
    }

    /// Reads the file /proc/PID/NAME (up to limit bytes), or returns nil with errno set.
    static func readProcFile(pid: Int32, name: StaticString, limit: Int) -> [UInt8]? {
        let fd = nsexec_open_proc_file(pid, cString(name))
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(fd: fd, limit: limit)
    }

    /// Reads a whole regular file (up to limit bytes). Anything else fails with errno EINVAL
    /// before it is opened, so that a FIFO cannot block and no device is read. Returns nil
    /// and leaves errno set on failure.
    static func readRegularFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard info.st_mode & S_IFMT == S_IFREG else {
            errno = EINVAL
            return nil
        }

        // O_NONBLOCK: should a FIFO take the file's place after the check, open does not wait,
        // and the second check on the open fd rejects it before anything is read.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard fstat(fd, &info) == 0 else { return nil }
        guard info.st_mode & S_IFMT == S_IFREG else {
            errno = EINVAL
            return nil
        }
        return read(fd: fd, limit: limit)
    }

    /// Reads from fd until end of file or limit bytes.
    static func read(fd: Int32, limit: Int = 1 << 20) -> [UInt8]? {
        var result: [UInt8] = []
        let chunkSize = 4096
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkSize) { chunk -> [UInt8]? in
            while result.count < limit {
                let count = Glibc.read(fd, chunk.baseAddress, min(chunkSize, limit - result.count))
                if count < 0 {
                    if errno == EINTR { continue }
                    return nil
                }
                if count == 0 { break }
                result.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[0..<count]))
            }
            return result
        }
    }

    /// Reads a whole file as UTF-8 text.
    static func readText(_ path: String, limit: Int = 1 << 20) -> String? {
        guard let bytes = read(path, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes all bytes, retrying on short writes and EINTR. Returns false with errno set.
    @discardableResult
    static func writeAll(fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Reads the target of a symbolic link, or returns nil.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates a close-on-exec pipe; returns nil with errno set when that fails.
    static func pipe() -> (read: Int32, write: Int32)? {
        var fds: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { nsexec_pipe_cloexec($0) }
        }
        return result == 0 ? (fds.0, fds.1) : nil
    }

    /// Reads the link /proc/PID/NAME, such as a process's cwd, into a C string that the caller
    /// frees, or returns nil with errno set. The C core is its only reader, and a String would
    /// run UTF-8 validation code that the CLI's run otherwise never maps.
    static func readProcLink(pid: Int32, name: StaticString) -> UnsafeMutablePointer<CChar>? {
        let cName = cString(name)
        var capacity = 256
        while true {
            guard let buffer = malloc(capacity)?.assumingMemoryBound(to: CChar.self) else { return nil }
            let count = nsexec_read_proc_link(pid, cName, buffer, capacity - 1)
            if count >= 0 {
                buffer[count] = 0
                return buffer
            }
            let error = errno
            free(buffer)
            guard error == ENAMETOOLONG && capacity < Int(PATH_MAX) + 1 else {
                errno = error
                return nil
            }
            capacity = Int(PATH_MAX) + 1
        }
    }

    /// Returns the NUL-terminated bytes of a string literal as a C string, with no copy.
    static func cString(_ literal: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(literal.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    /// Returns a String of the bytes of a NUL-terminated C string, invalid UTF-8 repaired.
    static func string(cString: UnsafePointer<CChar>) -> String {
        string(UnsafeRawBufferPointer(start: cString, count: strlen(cString)))
    }

    /// Returns a String of bytes, invalid UTF-8 repaired. The library's hot path makes every
    /// String from C data here, so that it runs one copy of the standard library's decoding code.
    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
    }

    /// Returns the errno text for a value.
    static func errorText(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
