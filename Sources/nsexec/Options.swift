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
///
/// It reads the bytes of argv and makes a String only of option names and values. The
/// CLI's start-up time goes to every page of the Swift standard library it touches, and
/// CommandLine.arguments and Character-based String operations (grapheme breaking)
/// touch many.
struct OptionParser {
    private let argv: UnsafePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int
    private var index = 1

    private var targetPID: Int32?
    private var containerID: String?
    private var runtimeRoot: String?
    private var spec = ExecSpec(target: .pid(0))
    private var logLevel: Int32 = 2
    private var jsonLogs = false

    /// Creates a parser of argv[1..<count]; argv[0] is the program's name.
    init(argv: UnsafePointer<UnsafeMutablePointer<CChar>?>, count: Int) {
        self.argv = argv
        self.count = count
    }

    // The option tables are switches, not static dictionaries. A dictionary instantiates
    // generic metadata and scans protocol conformances at first use, which took about
    // 0.1 ms of every run of the static CLI.

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
    private static func longOption(short letter: UInt8) -> (name: String, kind: ValueKind)? {
        switch letter {
        case UInt8(ascii: "t"): return ("target", .required)
        case UInt8(ascii: "S"): return ("setuid", .required)
        case UInt8(ascii: "G"): return ("setgid", .required)
        case UInt8(ascii: "W"): return ("wdns", .required)
        case UInt8(ascii: "m"): return ("mount", .optional)
        case UInt8(ascii: "u"): return ("uts", .optional)
        case UInt8(ascii: "i"): return ("ipc", .optional)
        case UInt8(ascii: "n"): return ("net", .optional)
        case UInt8(ascii: "p"): return ("pid", .optional)
        case UInt8(ascii: "C"): return ("cgroup", .optional)
        case UInt8(ascii: "U"): return ("user", .optional)
        case UInt8(ascii: "T"): return ("time", .optional)
        case UInt8(ascii: "r"): return ("root", .optional)
        case UInt8(ascii: "w"): return ("wd", .optional)
        case UInt8(ascii: "a"): return ("all", .noValue)
        case UInt8(ascii: "F"): return ("no-fork", .noValue)
        case UInt8(ascii: "c"): return ("join-cgroup", .noValue)
        case UInt8(ascii: "h"): return ("help", .noValue)
        case UInt8(ascii: "V"): return ("version", .noValue)
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

    /// Returns the bytes of argv[position], without the terminating NUL.
    private func bytes(at position: Int) -> UnsafeBufferPointer<UInt8> {
        guard let argument = argv[position] else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: UnsafeRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: strlen(argument))
    }

    mutating func parse() throws -> Command {
        let dash = UInt8(ascii: "-")
        while index < count {
            let argument = bytes(at: index)
            if argument.count >= 2 && argument[0] == dash && argument[1] == dash {
                if argument.count == 2 {
                    index += 1
                    break
                }
                if let request = try parseLong(UnsafeBufferPointer(rebasing: argument[2...])) { return request.command }
            } else if argument.count > 1 && argument[0] == dash {
                if let request = try parseShort(argument) { return request.command }
            } else {
                break
            }
            index += 1
        }

        var arguments: [String] = []
        arguments.reserveCapacity(count - index)
        for position in index..<count {
            arguments.append(Self.string(bytes(at: position)))
        }
        spec.arguments = arguments
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

    /// Returns the next argument as the value of option, which is named in the error.
    /// The name is a closure because building it would cost every run, not only a failed one.
    private mutating func nextValue(for option: () -> String) throws -> String {
        index += 1
        guard index < count else {
            throw NSExecError(.usage, "option \(option()) requires a value; see nsexec --help")
        }
        return Self.string(bytes(at: index))
    }

    /// Parses a long option without its leading "--": NAME or NAME=VALUE.
    private mutating func parseLong(_ body: UnsafeBufferPointer<UInt8>) throws -> InfoRequest? {
        let name: String
        var value: String?
        if let equals = body.firstIndex(of: UInt8(ascii: "=")) {
            name = Self.string(UnsafeBufferPointer(rebasing: body[..<equals]))
            value = Self.string(UnsafeBufferPointer(rebasing: body[(equals + 1)...]))
        } else {
            name = Self.string(body)
        }

        switch Self.valueKind(long: name) {
        case .required:
            let text = try value ?? nextValue(for: { "--\(name)" })
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

    /// Parses a group of short options with their leading "-", such as -aF or -n/run/netns/x.
    private mutating func parseShort(_ argument: UnsafeBufferPointer<UInt8>) throws -> InfoRequest? {
        var position = 1
        while position < argument.count {
            let letter = argument[position]
            let rest = UnsafeBufferPointer(rebasing: argument[(position + 1)...])

            if let (name, kind) = Self.longOption(short: letter) {
                switch kind {
                case .required:
                    try apply(name, value: rest.isEmpty ? try nextValue(for: { "-\(Self.string(letterAt: position, in: argument))" }) : Self.string(rest))
                    return nil
                case .optional:
                    // As in getopt, everything after the letter is the argument; "=" is allowed before it.
                    let value = rest.first == UInt8(ascii: "=") ? UnsafeBufferPointer(rebasing: rest[(rest.startIndex + 1)...]) : rest
                    try apply(name, value: rest.isEmpty ? nil : Self.string(value))
                    return nil
                case .noValue:
                    if let request = try apply(name, value: nil) { return request }
                    position += 1
                    continue
                }
            }
            if letter == UInt8(ascii: "e") {
                spec.environmentSource = .target
                position += 1
                continue
            }
            throw NSExecError(.usage, "unknown option -\(Self.string(letterAt: position, in: argument)); see nsexec --help")
        }
        return nil
    }

    /// Returns the letter at position for a message, all of its UTF-8 bytes when it is not ASCII.
    private static func string(letterAt position: Int, in argument: UnsafeBufferPointer<UInt8>) -> String {
        var end = position + 1
        while end < argument.count && argument[end] & 0xC0 == 0x80 { end += 1 }
        return Self.string(UnsafeBufferPointer(rebasing: argument[position..<end]))
    }

    private static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Parses a decimal process id from 1 to Int32.max; nil for anything else.
    private static func processID(_ text: String) -> Int32? {
        var value: Int32 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = shifted.addingReportingOverflow(Int32(byte - UInt8(ascii: "0")))
            guard !overflow && !carry else { return nil }
            value = sum
        }
        return value > 0 ? value : nil
    }

    @discardableResult
    private mutating func apply(_ name: String, value: String?) throws -> InfoRequest? {
        switch name {
        case "target":
            guard let text = value, let pid = Self.processID(text) else {
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
            guard let text = value, let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")), equals != text.utf8.startIndex else {
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
