import Foundation
import Glibc

/// A child process started with posix_spawn and reaped with waitpid. Foundation's
/// Process was seen to miss the exit of a daemonizing child (tmux) here, so the tests
/// wait for their children themselves.
final class Subprocess: @unchecked Sendable {
    let pid: pid_t
    private var status: Int32?

    /// Starts argv[0] with the test's environment plus `environment`, and the given fds as
    /// stdin, stdout and stderr (nil: /dev/null for stdin, inherited for the others).
    /// The test opens its own fds close-on-exec, so only these three reach the child.
    init(_ argv: [String], environment: [String: String] = [:], replaceEnvironment: Bool = false,
         stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if let stdout { posix_spawn_file_actions_adddup2(&actions, stdout, 1) }
        if let stderr { posix_spawn_file_actions_adddup2(&actions, stderr, 2) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let base = replaceEnvironment ? [:] : ProcessInfo.processInfo.environment
        let env = base.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer {
            for pointer in cArgv { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }

        var child: pid_t = 0
        let result = posix_spawn(&child, argv[0], &actions, &attributes, &cArgv, &cEnv)
        guard result == 0 else {
            throw TargetError("cannot start \(argv[0]): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    /// Whether the child has not exited yet; reaps it once it has.
    var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        if result == pid {
            status = Self.decode(raw)
            return false
        }
        return result == 0
    }

    /// Waits for the child; returns its exit status, or 128 + the signal that killed it.
    @discardableResult
    func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let decoded = Self.decode(raw)
        status = decoded
        return decoded
    }

    /// Waits at most `timeout` seconds, then kills the child; returns nil on timeout.
    func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() > deadline {
                kill(SIGKILL)
                wait()
                return nil
            }
            usleep(1000)
        }
        return wait()
    }

    func kill(_ signal: Int32) {
        if status == nil { _ = Glibc.kill(pid, signal) }
    }

    private static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }
}
