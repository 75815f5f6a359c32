import Glibc
import NSExec

/// What the command line asks for.
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

    /// Options with a required argument, by long name, and their short letters.
    private static let required: [String: Character?] = [
        "target": "t", "container": nil, "runtime-root": nil, "setuid": "S", "setgid": "G",
        "wdns": "W", "env": nil, "log-level": nil, "log-format": nil,
    ]
    /// Options with an optional `=ARG`, by long name.
    private static let optional: [String: Character] = [
        "mount": "m", "uts": "u", "ipc": "i", "net": "n", "pid": "p", "cgroup": "C", "user": "U", "time": "T",
        "root": "r", "wd": "w",
    ]
    /// Options without an argument.
    private static let flags: [String: Character?] = [
        "all": "a", "no-fork": "F", "join-cgroup": "c", "tty": nil, "preserve-credentials": nil,
        "help": "h", "version": "V",
    ]
    private static let namespaceLetters: [Character: Namespace] = [
        "m": .mnt, "u": .uts, "i": .ipc, "n": .net, "p": .pid, "C": .cgroup, "U": .user, "T": .time,
    ]

    mutating func parse() throws -> Command {
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                index += 1
                break
            }
            if argument.hasPrefix("--") {
                if let command = try parseLong(String(argument.dropFirst(2))) { return command }
            } else if argument.hasPrefix("-") && argument.count > 1 {
                if let command = try parseShort(Array(argument.dropFirst())) { return command }
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

    private mutating func parseLong(_ body: String) throws -> Command? {
        let name: String
        var value: String?
        if let equals = body.firstIndex(of: "=") {
            name = String(body[..<equals])
            value = String(body[body.index(after: equals)...])
        } else {
            name = body
        }

        if Self.required[name] != nil {
            let text = try value ?? nextValue(for: "--\(name)")
            try apply(name, value: text)
        } else if Self.optional[name] != nil {
            try apply(name, value: value)
        } else if Self.flags[name] != nil {
            guard value == nil else { throw NSExecError(.usage, "option --\(name) takes no value; see nsexec --help") }
            return try apply(name, value: nil)
        } else {
            throw NSExecError(.usage, "unknown option --\(name); see nsexec --help")
        }
        return nil
    }

    private mutating func parseShort(_ letters: [Character]) throws -> Command? {
        var position = 0
        while position < letters.count {
            let letter = letters[position]
            let rest = String(letters[(position + 1)...])

            if let name = Self.required.first(where: { $0.value == letter })?.key {
                try apply(name, value: rest.isEmpty ? try nextValue(for: "-\(letter)") : rest)
                return nil
            }
            if let name = Self.optional.first(where: { $0.value == letter })?.key {
                // As in getopt, everything after the letter is the argument; "=" is allowed before it.
                let value = rest.hasPrefix("=") ? String(rest.dropFirst()) : rest
                try apply(name, value: rest.isEmpty ? nil : value)
                return nil
            }
            if let name = Self.flags.first(where: { $0.value == letter })?.key {
                if let command = try apply(name, value: nil) { return command }
                position += 1
                continue
            }
            if letter == "e" {
                spec.environmentSource = .target
                position += 1
                continue
            }
            throw NSExecError(.usage, "unknown option -\(letter); see nsexec --help")
        }
        return nil
    }

    @discardableResult
    private mutating func apply(_ name: String, value: String?) throws -> Command? {
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
            guard let letter = Self.optional[name], let namespace = Self.namespaceLetters[letter] else {
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
