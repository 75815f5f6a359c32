import CNSExec
import Glibc

/// The supervisor's side of `--tty`: a socket on which stage 2 sends the pty master,
/// the caller's terminal in raw mode, and the relay between the two.
///
/// A run without --tty gets an inactive session, whose methods do nothing, rather than a
/// nil: the compiler copies a TerminalSession? through runtime metadata, which costs the
/// CLI a generic metadata instantiation.
final class TerminalSession {
    /// Whether the run has a terminal: false for the session that `inactive()` returns.
    let isActive: Bool
    /// The end of the socketpair that stage 2 sends the master on.
    private(set) var stageSocket: Int32 = -1
    private var supervisorSocket: Int32 = -1
    /// The host's /dev/ptmx, used when the container has no /dev/ptmx of its own.
    private(set) var hostPtmx: Int32 = -1
    private var savedAttributes: termios?

    private init(active: Bool) {
        isActive = active
    }

    /// Returns a session for a run without a terminal.
    static func inactive() -> TerminalSession {
        TerminalSession(active: false)
    }

    static func prepare() throws -> TerminalSession {
        let session = TerminalSession(active: true)
        var sockets: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            throw NSExecError.system("cannot create the terminal socketpair")
        }
        session.supervisorSocket = sockets[0]
        session.stageSocket = sockets[1]
        session.hostPtmx = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        return session
    }

    /// Closes what stage 2 has its own copies of.
    func closeStageEnds() {
        if stageSocket >= 0 { Glibc.close(stageSocket) }
        if hostPtmx >= 0 { Glibc.close(hostPtmx) }
        stageSocket = -1
        hostPtmx = -1
    }

    /// Receives the pty master from stage 2 and copies the caller's window size to it.
    func receiveMaster() throws -> Int32 {
        let master = nsexec_receive_fd(supervisorSocket)
        guard master >= 0 else { throw NSExecError.system("cannot receive the terminal from stage 2") }
        copyWindowSize(to: master)
        return master
    }

    func copyWindowSize(to master: Int32) {
        var size = winsize()
        if ioctl(0, UInt(TIOCGWINSZ), &size) == 0 {
            _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        }
    }

    /// Puts the caller's terminal (fd 0) in raw mode until `restore`.
    func enterRawMode() {
        var attributes = termios()
        guard tcgetattr(0, &attributes) == 0 else { return }
        savedAttributes = attributes
        cfmakeraw(&attributes)
        _ = tcsetattr(0, TCSANOW, &attributes)
    }

    func restore() {
        guard var attributes = savedAttributes else { return }
        _ = tcsetattr(0, TCSANOW, &attributes)
        savedAttributes = nil
    }

    func close() {
        restore()
        closeStageEnds()
        if supervisorSocket >= 0 { Glibc.close(supervisorSocket) }
        supervisorSocket = -1
    }
}
