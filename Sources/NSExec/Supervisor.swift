import CNSExec
import Glibc

/// Waits for the program: reaps the other stages, forwards signals, relays the terminal.
struct Supervisor {
    var started: StartedStages
    var terminal: TerminalSession

    func wait() throws -> Termination {
        for pid in started.others { reap(pid) }

        var signalFD: Int32 = -1
        if started.forwarding {
            var blocked = started.blocked
            signalFD = nsexec_signalfd(&blocked)
        }
        let pidfd = nsexec_pidfd_open(started.stage2)

        defer {
            if signalFD >= 0 { close(signalFD) }
            if pidfd >= 0 { close(pidfd) }
            if started.pendingReport >= 0 { close(started.pendingReport) }
            if started.ttyMaster >= 0 { close(started.ttyMaster) }
            started.restoreSignalMask()
        }

        if started.ttyMaster >= 0 { terminal.enterRawMode() }
        defer { terminal.restore() }

        if pidfd >= 0 && (signalFD >= 0 || started.ttyMaster >= 0) {
            relay(pidfd: pidfd, signalFD: signalFD)
        }

        guard let status = reap(started.stage2) else {
            throw NSExecError.system("cannot wait for the program (pid \(started.stage2))")
        }
        if started.ttyMaster >= 0 { drainMaster() }
        if started.pendingReport >= 0 {
            let records = StageReport.read(fd: started.pendingReport)
            if records.error != nil { throw records.failure(prefix: "") }
            if !records.entered { throw started.directChildFailure() }
        }
        return Termination(waitStatus: status)
    }

    /// Polls until the program exits, forwarding signals and copying terminal data.
    private func relay(pidfd: Int32, signalFD: Int32) {
        let master = started.ttyMaster
        var inputOpen = master >= 0
        // Only a terminal session copies data. The fds are a tuple, not an array, because a
        // [pollfd] instantiates generic metadata: about 20 µs of the CLI's run in a profile.
        var buffer = master >= 0 ? [UInt8](repeating: 0, count: 16384) : []

        while true {
            var fds = (pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: master, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: inputOpen ? 0 : -1, events: Int16(POLLIN), revents: 0))
            let ready = withUnsafeMutablePointer(to: &fds) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 4) { poll($0, 4, -1) }
            }
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }

            if fds.1.revents & Int16(POLLIN) != 0 { forwardSignal(signalFD: signalFD, pidfd: pidfd) }
            if fds.2.revents != 0 {
                let count = read(master, &buffer, buffer.count)
                if count > 0 { FileIO.writeAll(fd: 1, Array(buffer[0..<count])) }
            }
            if fds.3.revents != 0 {
                let count = read(0, &buffer, buffer.count)
                if count > 0 {
                    FileIO.writeAll(fd: master, Array(buffer[0..<count]))
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    inputOpen = false
                }
            }
            if fds.0.revents != 0 { return }
        }
    }

    private func forwardSignal(signalFD: Int32, pidfd: Int32) {
        let signal = nsexec_signalfd_read(signalFD)
        guard signal > 0 else { return }

        // With a pty, the kernel sends SIGWINCH itself once the window size changes.
        if signal == SIGWINCH, started.ttyMaster >= 0 {
            terminal.copyWindowSize(to: started.ttyMaster)
            return
        }
        _ = nsexec_pidfd_send_signal(pidfd, signal)
    }

    /// Copies what the program wrote just before it exited.
    private func drainMaster() {
        let master = started.ttyMaster
        var buffer = [UInt8](repeating: 0, count: 16384)
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        while true {
            let count = read(master, &buffer, buffer.count)
            guard count > 0 else { return }
            FileIO.writeAll(fd: 1, Array(buffer[0..<count]))
        }
    }
}
