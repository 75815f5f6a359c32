import CNSExec
import Glibc

/// A netlink message in the format of runc's bootstrap message: a 16-byte header, then
/// attributes of a 2-byte length (header included), a 2-byte type and a payload padded
/// to 4 bytes, all in native byte order.
public struct BootstrapMessage: Sendable, Equatable {
    /// The netlink message type: 62000 for the bootstrap message.
    public var type: UInt16
    /// The attributes in order, each a type and a raw payload.
    public var attributes: [(type: UInt16, payload: [UInt8])]

    public init(type: UInt16 = UInt16(NSEXEC_INIT_MSG)) {
        self.type = type
        self.attributes = []
    }

    public static func == (lhs: BootstrapMessage, rhs: BootstrapMessage) -> Bool {
        lhs.type == rhs.type && lhs.attributes.count == rhs.attributes.count
            && zip(lhs.attributes, rhs.attributes).allSatisfy { $0.type == $1.type && $0.payload == $1.payload }
    }

    public mutating func append(type: Int32, payload: [UInt8]) {
        attributes.append((UInt16(type), payload))
    }

    public mutating func append(type: Int32, uint32 value: UInt32) {
        append(type: type, payload: withUnsafeBytes(of: value) { Array($0) })
    }

    public mutating func append(type: Int32, uint8 value: UInt8) {
        append(type: type, payload: [value])
    }

    /// Appends text without a terminating NUL, as runc's Go side sends it.
    public mutating func append(type: Int32, text: String) {
        append(type: type, payload: Array(text.utf8))
    }

    /// Appends the bytes of a C string with its terminating NUL.
    mutating func append(type: Int32, cString: UnsafePointer<CChar>) {
        let bytes = UnsafeRawBufferPointer(start: cString, count: strlen(cString) + 1)
        append(type: type, payload: Array(bytes))
    }

    /// Appends text with a terminating NUL, as the process message expects.
    public mutating func append(type: Int32, cString: String) {
        append(type: type, payload: Array(cString.utf8) + [0])
    }

    /// CLONE_NEW* flags for stage 1 to unshare.
    public mutating func setCloneFlags(_ flags: UInt32) {
        append(type: NSEXEC_CLONE_FLAGS_ATTR, uint32: flags)
    }

    /// Namespaces to join, as `type:path` pairs.
    public mutating func setNamespacePaths(_ paths: [(Namespace, String)]) {
        append(type: NSEXEC_NS_PATHS_ATTR, text: paths.map { "\($0.0.rawValue):\($0.1)" }.joined(separator: ","))
    }

    /// Encodes the message: the header, then each attribute padded to 4 bytes.
    public func encoded() -> [UInt8] {
        var body: [UInt8] = []
        for attribute in attributes {
            let length = UInt16(truncatingIfNeeded: 4 + attribute.payload.count)
            body += withUnsafeBytes(of: length) { Array($0) }
            body += withUnsafeBytes(of: attribute.type) { Array($0) }
            body += attribute.payload
            body += [UInt8](repeating: 0, count: (4 - attribute.payload.count % 4) % 4)
        }

        let total = UInt32(16 + body.count)
        var header: [UInt8] = []
        header += withUnsafeBytes(of: total) { Array($0) }
        header += withUnsafeBytes(of: type) { Array($0) }
        header += withUnsafeBytes(of: UInt16(0)) { Array($0) }  // flags
        header += withUnsafeBytes(of: UInt32(0)) { Array($0) }  // sequence number
        header += withUnsafeBytes(of: UInt32(0)) { Array($0) }  // port id
        return header + body
    }
}
