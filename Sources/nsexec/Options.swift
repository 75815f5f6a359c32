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
/// It reads the bytes of argv and makes a String only of an option value that it keeps,
/// and hands the program's arguments on as argv's own C strings. The CLI's start-up time
/// goes to every page of the Swift standard library it touches. CommandLine.arguments,
/// Character-based String operations (grapheme breaking) and even the UTF-8 validation of
/// a new String touch pages that a run of `--target PID --all` otherwise never maps.
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

    /// The long options, matched as bytes: a String of each name would run the standard
    /// library's UTF-8 validation, whose pages the run otherwise never touches.
    private enum Option: Int {
        // The options of `--target PID --all` come first, because they are the common ones.
        case target, all, container, runtimeRoot, setuid, setgid, wdns, env, logLevel, logFormat
        case mount, uts, ipc, net, pid, cgroup, user, time, root, wd
        case noFork, joinCgroup, tty, preserveCredentials, help, version

        /// The name after "--".
        var name: StaticString {
            switch self {
            case .target: return "target"
            case .container: return "container"
            case .runtimeRoot: return "runtime-root"
            case .setuid: return "setuid"
            case .setgid: return "setgid"
            case .wdns: return "wdns"
            case .env: return "env"
            case .logLevel: return "log-level"
            case .logFormat: return "log-format"
            case .mount: return "mount"
            case .uts: return "uts"
            case .ipc: return "ipc"
            case .net: return "net"
            case .pid: return "pid"
            case .cgroup: return "cgroup"
            case .user: return "user"
            case .time: return "time"
            case .root: return "root"
            case .wd: return "wd"
            case .all: return "all"
            case .noFork: return "no-fork"
            case .joinCgroup: return "join-cgroup"
            case .tty: return "tty"
            case .preserveCredentials: return "preserve-credentials"
            case .help: return "help"
            case .version: return "version"
            }
        }

        var kind: ValueKind {
            switch self {
            case .target, .container, .runtimeRoot, .setuid, .setgid, .wdns, .env, .logLevel, .logFormat:
                return .required
            case .mount, .uts, .ipc, .net, .pid, .cgroup, .user, .time, .root, .wd:
                return .optional
            case .all, .noFork, .joinCgroup, .tty, .preserveCredentials, .help, .version:
                return .noValue
            }
        }

        /// The namespace that a namespace option such as --mount selects.
        var namespace: Namespace? {
            switch self {
            case .mount: return .mnt
            case .uts: return .uts
            case .ipc: return .ipc
            case .net: return .net
            case .pid: return .pid
            case .cgroup: return .cgroup
            case .user: return .user
            case .time: return .time
            default: return nil
            }
        }

        /// Returns the option whose name is bytes, or nil for an unknown name.
        static func named(_ bytes: UnsafeBufferPointer<UInt8>) -> Option? {
            var rawValue = 0
            while let option = Option(rawValue: rawValue) {
                if matches(bytes, option.name) { return option }
                rawValue += 1
            }
            return nil
        }

        /// Returns the option of a short option letter, or nil for an unknown letter.
        static func short(_ letter: UInt8) -> Option? {
            switch letter {
            case UInt8(ascii: "t"): return .target
            case UInt8(ascii: "S"): return .setuid
            case UInt8(ascii: "G"): return .setgid
            case UInt8(ascii: "W"): return .wdns
            case UInt8(ascii: "m"): return .mount
            case UInt8(ascii: "u"): return .uts
            case UInt8(ascii: "i"): return .ipc
            case UInt8(ascii: "n"): return .net
            case UInt8(ascii: "p"): return .pid
            case UInt8(ascii: "C"): return .cgroup
            case UInt8(ascii: "U"): return .user
            case UInt8(ascii: "T"): return .time
            case UInt8(ascii: "r"): return .root
            case UInt8(ascii: "w"): return .wd
            case UInt8(ascii: "a"): return .all
            case UInt8(ascii: "F"): return .noFork
            case UInt8(ascii: "c"): return .joinCgroup
            case UInt8(ascii: "h"): return .help
            case UInt8(ascii: "V"): return .version
            default: return nil
            }
        }
    }

    /// Returns whether bytes are the UTF-8 bytes of literal.
    private static func matches(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        return bytes.count == 0 || memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
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

        // argv ends with a NULL pointer, so its tail is the program's argv unchanged.
        if index < count { spec.argumentVector = ArgumentVector(argv + index) }
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
    private mutating func nextValue(for option: () -> String) throws -> UnsafeBufferPointer<UInt8> {
        index += 1
        guard index < count else {
            throw NSExecError(.usage, "option \(option()) requires a value; see nsexec --help")
        }
        return bytes(at: index)
    }

    /// Parses a long option without its leading "--": NAME or NAME=VALUE.
    private mutating func parseLong(_ body: UnsafeBufferPointer<UInt8>) throws -> InfoRequest? {
        var name = body
        var value: UnsafeBufferPointer<UInt8>?
        if let equals = body.firstIndex(of: UInt8(ascii: "=")) {
            name = UnsafeBufferPointer(rebasing: body[..<equals])
            value = UnsafeBufferPointer(rebasing: body[(equals + 1)...])
        }

        guard let option = Option.named(name) else {
            throw NSExecError(.usage, "unknown option --\(Self.string(name)); see nsexec --help")
        }
        switch option.kind {
        case .required:
            let text = try value ?? nextValue(for: { "--\(option.name)" })
            try apply(option, value: text)
        case .optional:
            try apply(option, value: value)
        case .noValue:
            guard value == nil else { throw NSExecError(.usage, "option --\(option.name) takes no value; see nsexec --help") }
            return try apply(option, value: nil)
        }
        return nil
    }

    /// Parses a group of short options with their leading "-", such as -aF or -n/run/netns/x.
    private mutating func parseShort(_ argument: UnsafeBufferPointer<UInt8>) throws -> InfoRequest? {
        var position = 1
        while position < argument.count {
            let letter = argument[position]
            let rest = UnsafeBufferPointer(rebasing: argument[(position + 1)...])

            if let option = Option.short(letter) {
                switch option.kind {
                case .required:
                    try apply(option, value: rest.isEmpty ? try nextValue(for: { "-\(Self.string(letterAt: position, in: argument))" }) : rest)
                    return nil
                case .optional:
                    // As in getopt, everything after the letter is the argument; "=" is allowed before it.
                    let value = rest.first == UInt8(ascii: "=") ? UnsafeBufferPointer(rebasing: rest[(rest.startIndex + 1)...]) : rest
                    try apply(option, value: rest.isEmpty ? nil : value)
                    return nil
                case .noValue:
                    if let request = try apply(option, value: nil) { return request }
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
    private static func processID(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard let value = decimalValue(bytes), value > 0, value <= UInt64(Int32.max) else { return nil }
        return Int32(value)
    }

    /// Applies an option and its value. The value becomes a String only for an option that keeps it.
    @discardableResult
    private mutating func apply(_ option: Option, value bytes: UnsafeBufferPointer<UInt8>?) throws -> InfoRequest? {
        if option == .target {
            guard let bytes, let pid = Self.processID(bytes) else {
                throw NSExecError(.usage, "invalid target pid '\(bytes.map(Self.string) ?? "")': expected a positive process id")
            }
            targetPID = pid
            return nil
        }
        if option == .all {
            spec.allNamespaces = true
            return nil
        }

        let value = bytes.map(Self.string)
        switch option {
        case .target, .all:
            break
        case .container:
            containerID = value
        case .runtimeRoot:
            runtimeRoot = value
        case .setuid:
            spec.user = try nonEmpty(value, "--setuid", "a uid or user name")
        case .setgid:
            spec.group = try nonEmpty(value, "--setgid", "a gid or group name")
        case .wdns:
            spec.workingDirectory = .mountNamespace(try nonEmpty(value, "--wdns", "a directory"))
        case .env:
            guard let text = value, let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")), equals != text.utf8.startIndex else {
                throw NSExecError(.usage, "invalid --env value '\(value ?? "")': expected NAME=VALUE")
            }
            spec.environment.append(text)
        case .logLevel:
            let levels = ["panic": 0, "fatal": 1, "error": 2, "warning": 3, "info": 4, "debug": 5, "trace": 6]
            guard let text = value, let level = levels[text] else {
                throw NSExecError(.usage, "invalid --log-level '\(value ?? "")': expected error, warning, info, debug or trace")
            }
            logLevel = Int32(level)
        case .logFormat:
            guard value == "text" || value == "json" else {
                throw NSExecError(.usage, "invalid --log-format '\(value ?? "")': expected text or json")
            }
            jsonLogs = value == "json"
        case .root:
            spec.root = value.map { .path($0) } ?? .target
        case .wd:
            spec.workingDirectory = value.map { .path($0) } ?? .target
        case .noFork:
            spec.noFork = true
        case .joinCgroup:
            spec.joinCgroup = true
        case .tty:
            spec.tty = true
        case .preserveCredentials:
            spec.preserveCredentials = true
        case .help:
            return .help
        case .version:
            return .version
        case .mount, .uts, .ipc, .net, .pid, .cgroup, .user, .time:
            let namespace = option.namespace!
            if let file = value, file.isEmpty {
                throw NSExecError(.usage, "invalid namespace file '' for --\(option.name): give a path or no value")
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
