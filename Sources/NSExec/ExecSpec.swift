/// One namespace to enter: the target's own, or the namespace file at `file`.
public struct NamespaceRequest: Sendable, Equatable {
    /// The namespace type.
    public var namespace: Namespace
    /// A namespace file such as `/run/netns/NAME`; nil means the target's.
    public var file: String?

    public init(_ namespace: Namespace, file: String? = nil) {
        self.namespace = namespace
        self.file = file
    }
}

/// The source of the program's working directory.
public enum WorkingDirectory: Sendable, Equatable {
    /// The target's working directory when its mount namespace is entered, else unchanged.
    case target
    /// A path resolved inside the program's root (`-w DIR`).
    case path(String)
    /// A path resolved from the mount namespace's root (`-W DIR`).
    case mountNamespace(String)
}

/// The program's root directory.
public enum RootDirectory: Sendable, Equatable {
    /// The target's root when its mount namespace is entered, else unchanged.
    case target
    /// A directory resolved inside the target's root (`-r DIR`).
    case path(String)
}

/// The base of the program's environment.
public enum EnvironmentSource: Sendable, Equatable {
    /// `PATH` set to the default, `HOME` from the user's passwd entry, `TERM` kept.
    case clean
    /// The target's own environment, from `/proc/PID/environ`.
    case target
}

/// The way the stages are started.
public enum SpawnMode: Sendable, Equatable {
    /// The fork path when the calling process has one thread, else the helper.
    case automatic
    /// The caller forks the stages itself; only safe in a single-threaded process.
    case fork
    /// The nsexec helper binary is started with an init pipe (runc's protocol).
    case helper
}

/// A NULL-terminated vector of C strings that outlives the run, such as the tail of the
/// CLI's own argv. Strings of the arguments and an array of them would touch pages of the
/// standard library that the CLI's start-up otherwise never maps.
package struct ArgumentVector: @unchecked Sendable {
    package let pointer: UnsafePointer<UnsafeMutablePointer<CChar>?>

    package init(_ pointer: UnsafePointer<UnsafeMutablePointer<CChar>?>) {
        self.pointer = pointer
    }
}

/// Everything needed to run a program in the namespaces of a target.
public struct ExecSpec: Sendable {
    /// The process whose namespaces are entered.
    public var target: Target
    /// Namespaces to enter; with `allNamespaces`, these add or override files.
    public var namespaces: [NamespaceRequest] = []
    /// Enter every namespace of the target that differs from the caller's own.
    public var allNamespaces = false
    /// The program and its arguments; empty runs `$SHELL`, else /bin/sh.
    public var arguments: [String] = []
    /// The program and its arguments as C strings, used instead of `arguments` when set.
    package var argumentVector: ArgumentVector?

    /// A user name or uid, resolved in the container's /etc/passwd.
    public var user: String?
    /// A group name or gid, resolved in the container's /etc/group.
    public var group: String?
    /// Keep the caller's uid and gid, also after entering a user namespace.
    public var preserveCredentials = false

    public var root: RootDirectory = .target
    public var workingDirectory: WorkingDirectory = .target

    public var environmentSource: EnvironmentSource = .clean
    /// `NAME=VALUE` entries that add to or override the environment, in order.
    public var environment: [String] = []

    /// Run the program in stage 1 without cloning stage 2, when no PID or time namespace is entered.
    public var noFork = false
    /// Move the program into the target's cgroups.
    public var joinCgroup = false
    /// Give the program a new pseudo-terminal, relayed to the caller's terminal on fd 0.
    public var tty = false

    /// The program's stdin, stdout and stderr; nil inherits the caller's.
    public var standardInput: Int32?
    public var standardOutput: Int32?
    public var standardError: Int32?

    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to the program.
    public var forwardSignals = false

    public var spawnMode: SpawnMode = .automatic
    /// The nsexec binary for the helper path; nil looks next to the running executable, then `NSEXEC_HELPER`.
    public var helperPath: String?

    public init(target: Target, arguments: [String] = []) {
        self.target = target
        self.arguments = arguments
    }
}
