import CNSExec
import CNSExecInit
import Glibc
import NSExec

// Started as the helper (init pipe set): the constructor ran the stages, this is stage 2.
if nsexec_init_in_stage2() != 0 {
    nsexec_bootstrap_exec(nsexec_bootstrap_initpipe())
}

/// Prints one error line and exits with the error's status.
func fail(_ error: NSExecError) -> Never {
    let line = Array("nsexec: \(error.message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(error.exitStatus)
}

do {
    var count: Int32 = 0
    var parser = nsexec_init_arguments(&count).map { OptionParser(argv: $0, count: Int(count)) }
        ?? OptionParser(argv: CommandLine.unsafeArgv, count: Int(CommandLine.argc))
    switch try parser.parse() {
    case .help:
        print(usage, terminator: "")
        exit(0)
    case .version:
        print("nsexec \(version)")
        exit(0)
    case .run(let spec, let logLevel, let jsonLogs):
        if logLevel > 2 { nsexec_log_setup(2, logLevel, -1) }
        nsexec_log_format_json(jsonLogs)
        let termination = try NSExec.run(spec)
        // _exit, not exit: nothing on this path writes through stdio, and the exit handlers
        // (stdio's flush, C++ destructors) would only map pages to free memory at exit.
        _exit(termination.exitStatus)
    }
} catch let error as NSExecError {
    fail(error)
} catch {
    fail(NSExecError(.system, "\(error)"))
}
