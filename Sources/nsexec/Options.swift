import Glibc
import NSExec

/// The action that the command line requests.
enum Command {
    case help
    case version
    case run(ExecSpec, logLevel: Int32, jsonLogs: Bool)
}

/// Parses nsexec's command line with getopt's rules, as nsenter does: options stop at
/// the first non-option or at `--`, short options combine (`-aF`), a short option's
/// optional argument must be attached (`-n/run/netns/x`), a long option's follows `=`.
struct OptionParser {
    private var arguments: [String]
    private var index = 0

    private var targetPID: Int32?
    private var containerID: String?
    private var runtimeRoot: String?
    private var spec = ExecSpec(target: .pid(0))
    private var logLevel: Int32 = 2
    private var jsonLogs = false

    init(_ arguments: [String]) {
        self.arguments = arguments
    }

    // The option tables are switches, not static dictionaries, and short options are
    // walked as a Substring, not a [Character]. A dictionary or an unspecialized generic
    // String initializer instantiates generic metadata and scans protocol conformances
    // at first use, which took about 0.1 ms of every run of the static CLI.

    /// An option that ends parsing: --help or --version. Parsing returns it without a
    /// payload, so that no ExecSpec-carrying Optional is built and destroyed per option.
    private enum InfoRequest {
        case help, version

        var command: Command { self == .help ? .help : .version }
    }

    /// The kind of value an option takes.
    private enum ValueKind { case required, optional, noValue }

    /// Returns the value kind of a long option, or nil for an unknown name.
    private static func valueKind(long name: String) -> ValueKind? {
        switch name {
        case "target", "container", "runtime-root", "setuid", "setgid", "wdns", "env", "log-level", "log-format":
            return .required
        case "mount", "uts", "ipc", "net", "pid", "cgroup", "user", "time", "root", "wd":
            return .optional
        case "all", "no-fork", "join-cgroup", "tty", "preserve-credentials", "help", "version":
            return .noValue
        default:
            return nil
        }
    }

    /// Returns the long name and value kind of a short option letter, or nil for an unknown letter.
    private static func longOption(short letter: Character) -> (name: String, kind: ValueKind)? {
        switch letter {
        case "t": return ("target", .required)
        case "S": return ("setuid", .required)
        case "G": return ("setgid", .required)
        case "W": return ("wdns", .required)
        case "m": return ("mount", .optional)
        case "u": return ("uts", .optional)
        case "i": return ("ipc", .optional)
        case "n": return ("net", .optional)
        case "p": return ("pid", .optional)
        case "C": return ("cgroup", .optional)
        case "U": return ("user", .optional)
        case "T": return ("time", .optional)
        case "r": return ("root", .optional)
        case "w": return ("wd", .optional)
        case "a": return ("all", .noValue)
        case "F": return ("no-fork", .noValue)
        case "c": return ("join-cgroup", .noValue)
        case "h": return ("help", .noValue)
        case "V": return ("version", .noValue)
        default: return nil
        }
    }

    /// Returns the namespace that a namespace option such as --mount selects.
    private static func namespace(option name: String) -> Namespace? {
        switch name {
        case "mount": return .mnt
        case "uts": return .uts
        case "ipc": return .ipc
        case "net": return .net
        case "pid": return .pid
        case "cgroup": return .cgroup
        case "user": return .user
        case "time": return .time
        default: return nil
        }
    }

    mutating func parse() throws -> Command {
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                index += 1
                break
            }
            if argument.hasPrefix("--") {
                if let request = try parseLong(String(argument.dropFirst(2))) { return request.command }
            } else if argument.hasPrefix("-") && argument.count > 1 {
                if let request = try parseShort(argument.dropFirst()) { return request.command }
            } else {
                break
            }
            index += 1
        }

        spec.arguments = Array(arguments[index...])
        spec.target = try resolvedTarget()
        spec.forwardSignals = true
        spec.spawnMode = .fork
        return .run(spec, logLevel: logLevel, jsonLogs: jsonLogs)
    }

    private func resolvedTarget() throws -> Target {
        switch (targetPID, containerID) {
        case (.some, .some):
            throw NSExecError(.usage, "--target and --container are mutually exclusive; give one of them")
        case (.some(let pid), nil):
            return .pid(pid)
        case (nil, .some(let id)):
            return .container(id: id, runtimeRoot: runtimeRoot)
        case (nil, nil):
            if spec.namespaces.allSatisfy({ $0.file != nil }) && !spec.namespaces.isEmpty && !spec.allNamespaces {
                // Every namespace comes from a file: the target only matters for the root and cwd.
                return .pid(getpid())
            }
            throw NSExecError(.usage, "no target given; use -t/--target PID or --container ID")
        }
    }

    private mutating func nextValue(for option: String) throws -> String {
        index += 1
        guard index < arguments.count else {
            throw NSExecError(.usage, "option \(option) requires a value; see nsexec --help")
        }
        return arguments[index]
    }

    private mutating func parseLong(_ body: String) throws -> InfoRequest? {
        let name: String
        var value: String?
        if let equals = body.firstIndex(of: "=") {
            name = String(body[..<equals])
            value = String(body[body.index(after: equals)...])
        } else {
            name = body
        }

        switch Self.valueKind(long: name) {
        case .required:
            let text = try value ?? nextValue(for: "--\(name)")
            try apply(name, value: text)
        case .optional:
            try apply(name, value: value)
        case .noValue:
            guard value == nil else { throw NSExecError(.usage, "option --\(name) takes no value; see nsexec --help") }
            return try apply(name, value: nil)
        case nil:
            throw NSExecError(.usage, "unknown option --\(name); see nsexec --help")
        }
        return nil
    }

    private mutating func parseShort(_ letters: Substring) throws -> InfoRequest? {
        var position = letters.startIndex
        while position < letters.endIndex {
            let letter = letters[position]
            let rest = String(letters[letters.index(after: position)...])

            if let (name, kind) = Self.longOption(short: letter) {
                switch kind {
                case .required:
                    try apply(name, value: rest.isEmpty ? try nextValue(for: "-\(letter)") : rest)
                    return nil
                case .optional:
                    // As in getopt, everything after the letter is the argument; "=" is allowed before it.
                    let value = rest.hasPrefix("=") ? String(rest.dropFirst()) : rest
                    try apply(name, value: rest.isEmpty ? nil : value)
                    return nil
                case .noValue:
                    if let request = try apply(name, value: nil) { return request }
                    position = letters.index(after: position)
                    continue
                }
            }
            if letter == "e" {
                spec.environmentSource = .target
                position = letters.index(after: position)
                continue
            }
            throw NSExecError(.usage, "unknown option -\(letter); see nsexec --help")
        }
        return nil
    }

    @discardableResult
    private mutating func apply(_ name: String, value: String?) throws -> InfoRequest? {
        switch name {
        case "target":
            guard let text = value, let pid = Int32(text), pid > 0 else {
                throw NSExecError(.usage, "invalid target pid '\(value ?? "")': expected a positive process id")
            }
            targetPID = pid
        case "container":
            containerID = value
        case "runtime-root":
            runtimeRoot = value
        case "setuid":
            spec.user = try nonEmpty(value, "--setuid", "a uid or user name")
        case "setgid":
            spec.group = try nonEmpty(value, "--setgid", "a gid or group name")
        case "wdns":
            spec.workingDirectory = .mountNamespace(try nonEmpty(value, "--wdns", "a directory"))
        case "env":
            guard let text = value, let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw NSExecError(.usage, "invalid --env value '\(value ?? "")': expected NAME=VALUE")
            }
            spec.environment.append(text)
        case "log-level":
            let levels = ["panic": 0, "fatal": 1, "error": 2, "warning": 3, "info": 4, "debug": 5, "trace": 6]
            guard let text = value, let level = levels[text] else {
                throw NSExecError(.usage, "invalid --log-level '\(value ?? "")': expected error, warning, info, debug or trace")
            }
            logLevel = Int32(level)
        case "log-format":
            guard value == "text" || value == "json" else {
                throw NSExecError(.usage, "invalid --log-format '\(value ?? "")': expected text or json")
            }
            jsonLogs = value == "json"
        case "root":
            spec.root = value.map { .path($0) } ?? .target
        case "wd":
            spec.workingDirectory = value.map { .path($0) } ?? .target
        case "all":
            spec.allNamespaces = true
        case "no-fork":
            spec.noFork = true
        case "join-cgroup":
            spec.joinCgroup = true
        case "tty":
            spec.tty = true
        case "preserve-credentials":
            spec.preserveCredentials = true
        case "help":
            return .help
        case "version":
            return .version
        default:
            guard let namespace = Self.namespace(option: name) else {
                throw NSExecError(.usage, "unknown option --\(name); see nsexec --help")
            }
            if let file = value, file.isEmpty {
                throw NSExecError(.usage, "invalid namespace file '' for --\(name): give a path or no value")
            }
            spec.namespaces.removeAll { $0.namespace == namespace }
            spec.namespaces.append(NamespaceRequest(namespace, file: value))
        }
        return nil
    }

    private func nonEmpty(_ value: String?, _ option: String, _ what: String) throws -> String {
        guard let value, !value.isEmpty else {
            throw NSExecError(.usage, "option \(option) requires \(what)")
        }
        return value
    }
}
