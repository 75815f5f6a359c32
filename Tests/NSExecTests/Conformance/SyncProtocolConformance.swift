import CNSExec
import Glibc
import Testing

/// The stage messages and the read and write helpers of the C core (sync.c), checked from Swift.
@Suite struct SyncProtocolConformance {
    /// The one-byte messages and the values runc's nsexec.c uses for them (SYNC_USERMAP_PLS = 0x40, ...).
    static let knownMessages: [(message: nsexec_sync, byte: UInt8, name: String)] = [
        (NSEXEC_SYNC_USERMAP_REQUEST, 0x40, "usermap_request"),
        (NSEXEC_SYNC_USERMAP_DONE, 0x41, "usermap_done"),
        (NSEXEC_SYNC_PID, 0x42, "pid"),
        (NSEXEC_SYNC_PID_RECEIVED, 0x43, "pid_received"),
        (NSEXEC_SYNC_GO, 0x44, "go"),
        (NSEXEC_SYNC_FINISHED, 0x45, "finished"),
        (NSEXEC_SYNC_TIMEOFFSETS_REQUEST, 0x46, "timeoffsets_request"),
        (NSEXEC_SYNC_TIMEOFFSETS_DONE, 0x47, "timeoffsets_done"),
    ]

    /// A Unix socketpair, closed on deinit; SOCK_STREAM as between the stages, or another type.
    final class SocketPair {
        private(set) var fds: [Int32] = [-1, -1]

        init(type: Int32 = Int32(SOCK_STREAM.rawValue)) throws {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw TargetError("socketpair failed: \(errorText(errno))")
            }
            fds = pair
        }

        subscript(end: Int) -> Int32 { fds[end] }

        func close(_ end: Int) {
            if fds[end] >= 0 { _ = Glibc.close(fds[end]) }
            fds[end] = -1
        }

        deinit {
            close(0)
            close(1)
        }
    }

    /// Blocks SIGPIPE for the calling thread while it exists, so that a SIGPIPE raised by a write to a
    /// closed peer stays pending instead of killing the test runner. Deinit discards a pending SIGPIPE
    /// and restores the mask. Tests that use it must stay on one thread: no `await` in between.
    final class BlockedSigpipe {
        private var sigpipe = sigset_t()
        private var previous = sigset_t()

        init() {
            sigemptyset(&sigpipe)
            sigaddset(&sigpipe, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &sigpipe, &previous)
        }

        /// Returns whether a SIGPIPE is pending, for the thread or the process.
        var isPending: Bool {
            var set = sigset_t()
            sigpending(&set)
            return sigismember(&set, SIGPIPE) == 1
        }

        deinit {
            var noWait = timespec(tv_sec: 0, tv_nsec: 0)
            while sigtimedwait(&sigpipe, nil, &noWait) == SIGPIPE {}
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
    }

    @Test("sync.message_bytes_match_runc")
    func messageBytesMatchRunc() {
        for known in Self.knownMessages {
            #expect(known.message.rawValue == UInt32(known.byte), "\(known.name)")
            #expect(string(nsexec_sync_name(Int32(known.message.rawValue))) == known.name)
        }
    }

    @Test("sync.unknown_message_has_no_name")
    func unknownMessageHasNoName() {
        for message: Int32 in [0, 0x3f, 0x48, 0xff, -1] {
            #expect(nsexec_sync_name(message) == nil, "message \(message)")
        }
    }

    @Test("sync.every_message_round_trips")
    func everyMessageRoundTrips() throws {
        let pair = try SocketPair()

        for known in Self.knownMessages {
            // On the wire: exactly one byte with the message's value.
            try #require(nsexec_sync_send(pair[0], known.message) == 0, "\(known.name): \(errorText(errno))")
            var wire: [UInt8] = [0, 0]
            let count = recv(pair[1], &wire, wire.count, Int32(MSG_DONTWAIT))
            try #require(count == 1, "\(known.name)")
            #expect(wire[0] == known.byte, "\(known.name)")

            try #require(nsexec_sync_send(pair[0], known.message) == 0, "\(known.name): \(errorText(errno))")
            #expect(nsexec_sync_expect(pair[1], known.message) == 0, "\(known.name): \(errorText(errno))")
        }
    }

    @Test("sync.unexpected_message_fails")
    func unexpectedMessageFails() throws {
        let pair = try SocketPair()
        try #require(nsexec_sync_send(pair[0], NSEXEC_SYNC_GO) == 0, "\(errorText(errno))")

        errno = 0
        let result = nsexec_sync_expect(pair[1], NSEXEC_SYNC_FINISHED)
        let error = errno
        #expect(result == -1)
        #expect(error == EPROTO)
    }

    @Test("sync.short_read_fails")
    func shortReadFails() throws {
        let pair = try SocketPair()

        // 3 of the 8 bytes, then the peer goes away.
        try #require(write(pair[0], "abc", 3) == 3)
        pair.close(0)

        var buffer = [UInt8](repeating: 0, count: 8)
        errno = 0
        let result = nsexec_read_all(pair[1], &buffer, buffer.count)
        let error = errno
        #expect(result == -1)
        #expect(error == EPIPE)
    }

    @Test("sync.peer_closed_early_fails")
    func peerClosedEarlyFails() throws {
        let blocked = BlockedSigpipe()
        defer { withExtendedLifetime(blocked) {} }

        let reading = try SocketPair()
        reading.close(0)
        errno = 0
        let expectResult = nsexec_sync_expect(reading[1], NSEXEC_SYNC_PID)
        let expectError = errno
        #expect(expectResult == -1)
        #expect(expectError == EPIPE)

        let writing = try SocketPair()
        writing.close(1)
        errno = 0
        let sendResult = nsexec_sync_send(writing[0], NSEXEC_SYNC_PID_RECEIVED)
        let sendError = errno
        #expect(sendResult == -1)
        #expect(sendError == EPIPE)
    }

    @Test("sync.send_raises_no_sigpipe")
    func sendRaisesNoSigpipe() throws {
        let blocked = BlockedSigpipe()
        defer { withExtendedLifetime(blocked) {} }
        let pair = try SocketPair()
        pair.close(1)

        // A stage whose peer died must live to report it, so the socket write may not raise SIGPIPE.
        #expect(nsexec_sync_send(pair[0], NSEXEC_SYNC_GO) == -1)
        #expect(!blocked.isPending)
    }

    @Test("sync.short_counts_are_retried")
    func shortCountsAreRetried() throws {
        // Each read(2) on a SOCK_SEQPACKET socket returns at most one packet, which forces short counts.
        let pair = try SocketPair(type: Int32(SOCK_SEQPACKET.rawValue))
        try #require(write(pair[0], "abc", 3) == 3)
        try #require(write(pair[0], "de", 2) == 2)
        try #require(write(pair[0], "fgh", 3) == 3)

        var buffer = [UInt8](repeating: 0, count: 8)
        try #require(nsexec_read_all(pair[1], &buffer, buffer.count) == 0, "\(errorText(errno))")
        #expect(String(decoding: buffer, as: UTF8.self) == "abcdefgh")
    }

    @Test("sync.read_retries_after_eintr")
    func readRetriesAfterEINTR() throws {
        // The probe forks the reader, so that the handler and the signal stay out of the test runner.
        var probe = nsexec_interrupted_read_probe()
        try #require(nsexec_probe_interrupted_read(&probe) == 0, "probe failed: \(errorText(errno))")

        #expect(probe.signals_caught == 1)
        #expect(probe.result == 0, "\(errorText(probe.error))")
        #expect(string(fromCArray: probe.data) == "eintr-ok")
    }
}
