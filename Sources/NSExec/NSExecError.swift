import Glibc

/// A failure to run the program, with the exit status the CLI uses.
public struct NSExecError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The category of failure.
    public enum Kind: Sendable, Equatable {
        /// Invalid input: an option, a value or a combination.
        case usage
        /// The target process or container cannot be found or is not running.
        case target
        /// A stage failed: joining, unsharing, credentials, working directory.
        case stage
        /// The program exists but cannot be executed (exit status 126).
        case notExecutable
        /// The program was not found (exit status 127).
        case notFound
        /// A system call in the supervisor failed.
        case system
    }

    /// The category of failure.
    public var kind: Kind
    /// One line: what failed, on which value, the errno text and what to do.
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Builds a `.system` error from a failed call and its errno.
    static func system(_ what: String, errno error: Int32 = errno, hint: String? = nil) -> NSExecError {
        var message = "\(what): \(String(cString: strerror(error)))"
        if let hint { message += "; \(hint)" }
        return NSExecError(.system, message)
    }

    /// The CLI exit status for this error: 126, 127, or 125 for everything else.
    public var exitStatus: Int32 {
        switch kind {
        case .notExecutable: return 126
        case .notFound: return 127
        default: return 125
        }
    }

    public var description: String { message }
}

/// The way the program ended: its exit status or its signal.
public enum Termination: Sendable, Equatable, CustomStringConvertible {
    /// It exited with this status.
    case exited(Int32)
    /// It was killed by this signal.
    case signaled(Int32)

    /// The shell convention: the status, or 128 + the signal number.
    public var exitStatus: Int32 {
        switch self {
        case .exited(let status): return status
        case .signaled(let signal): return 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let status): return "exited with status \(status)"
        case .signaled(let signal): return "killed by signal \(signal)"
        }
    }

    /// Decodes a `waitpid` status.
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(signal)
        }
    }
}
