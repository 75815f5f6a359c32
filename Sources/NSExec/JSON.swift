/// A minimal JSON reader for container state files; Foundation stays off the CLI's path.
enum JSONValue: Equatable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The value as an integer when it is a number without a fraction.
    var integerValue: Int64? {
        guard case .number(let value) = self, value == value.rounded(), abs(value) < 9e15 else { return nil }
        return Int64(value)
    }
}

/// A JSON parse failure, with the reason and the byte offset.
struct JSONError: Error, CustomStringConvertible {
    var offset: Int
    var reason: String
    var description: String { "\(reason) at byte \(offset)" }
}

/// Parses one JSON document; nesting deeper than 64 levels is rejected.
struct JSONParser {
    private let bytes: [UInt8]
    private var index = 0
    /// The nesting depth of the object that readMembers is reading.
    private var depth = 0

    /// Parses a document. With `topLevelKeys`, only those members of a top-level object are
    /// built. Every other value is still checked, so that the same documents are rejected
    /// with the same errors, but no dictionary, array or string is built for it. A runc
    /// state.json contains the whole container config, and building all of it took about
    /// 0.2 ms of every `nsexec --container`.
    static func parse(_ bytes: [UInt8], topLevelKeys: [String]? = nil) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        let value = try parser.value(depth: 0, build: true, keys: topLevelKeys)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.error("trailing data") }
        return value
    }

    /// Reads a document member by member when its top level is an object, as `parse` would,
    /// but builds no JSONValue. `member` gets each key and reads its value with `integer()`,
    /// `string()` or `readMembers(_:)`, or returns false to have it checked and skipped. A
    /// document of another kind is checked and has no members. The container state reader
    /// uses it because the first Dictionary of a process scans every protocol conformance
    /// in the binary, about 0.09 ms of the CLI's run.
    static func readMembers(of bytes: [UInt8], _ member: (String, inout JSONParser) throws -> Bool) throws {
        var parser = JSONParser(bytes: bytes)
        try parser.readMembers(member)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.error("trailing data") }
    }

    /// Reads the next value member by member when it is an object, as `readMembers(of:_:)` does.
    mutating func readMembers(_ member: (String, inout JSONParser) throws -> Bool) throws {
        guard depth < 64 else { throw error("nesting too deep") }
        skipSpace()
        guard index < bytes.count else { throw error("unexpected end of data") }
        guard bytes[index] == UInt8(ascii: "{") else {
            _ = try value(depth: depth, build: false)
            return
        }
        index += 1
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        depth += 1
        defer { depth -= 1 }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try string(build: true)
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            if try !member(key, &self) { _ = try value(depth: depth, build: false) }
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of data") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return }
            throw error("expected ',' or '}'")
        }
    }

    /// Reads the next value: its integer when it is a number without a fraction, as
    /// `JSONValue.integerValue` gives it, else nil.
    mutating func integer() throws -> Int64? {
        try value(depth: depth, build: true).integerValue
    }

    /// Reads the next value: its text when it is a string, else nil.
    mutating func string() throws -> String? {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            _ = try value(depth: depth, build: false)
            return nil
        }
        return try string(build: true)
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ reason: String) -> JSONError { JSONError(offset: index, reason: reason) }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0a, 0x0d: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: String) throws {
        for byte in literal.utf8 {
            guard index < bytes.count, bytes[index] == byte else { throw error("invalid literal") }
            index += 1
        }
    }

    /// Reads one value. Without `build`, objects, arrays and strings are checked but come back
    /// empty, because the caller drops them. `keys`, when set, names the members to build
    /// if the value is an object.
    private mutating func value(depth: Int, build: Bool, keys: [String]? = nil) throws -> JSONValue {
        guard depth < 64 else { throw error("nesting too deep") }
        skipSpace()
        guard index < bytes.count else { throw error("unexpected end of data") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth, build: build, keys: keys)
        case UInt8(ascii: "["): return try array(depth: depth, build: build)
        case UInt8(ascii: "\""): return .string(try string(build: build))
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default: return try number()
        }
    }

    private mutating func object(depth: Int, build: Bool, keys: [String]?) throws -> JSONValue {
        index += 1
        var members: [String: JSONValue] = [:]
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try string(build: build)
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            let keep = build && (keys?.contains(key) ?? true)
            let member = try value(depth: depth + 1, build: keep)
            if keep { members[key] = member }
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of data") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    private mutating func array(depth: Int, build: Bool) throws -> JSONValue {
        index += 1
        var elements: [JSONValue] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            let element = try value(depth: depth + 1, build: build)
            if build { elements.append(element) }
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of data") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw error("expected ',' or ']'")
        }
    }

    /// Reads a string. Without `build` it checks the string and returns "".
    private mutating func string(build: Bool) throws -> String {
        index += 1
        var scalars: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return build ? String(decoding: scalars, as: UTF8.self) : ""
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw error("unterminated escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "n"): scalars.append(0x0a)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "r"): scalars.append(0x0d)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0c)
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count,
                          let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
                    else { throw error("invalid \\u escape") }
                    index += 4
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: scalars.append(escaped)
                }
            default:
                if byte < 0x20 { throw error("control character in string") }
                if build { scalars.append(byte) }
            }
        }
        throw error("unterminated string")
    }

    private mutating func number() throws -> JSONValue {
        let start = index
        scan: while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "e"), UInt8(ascii: "E"):
                index += 1
            default:
                break scan
            }
        }
        guard index > start, let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
            throw error("invalid value")
        }
        return .number(value)
    }
}
