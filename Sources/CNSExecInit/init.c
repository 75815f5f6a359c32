/*
 * The constructor of the nsexec executable. When the binary is started with
 * _LIBCONTAINER_INITPIPE set, the stages must run before the Swift runtime
 * starts any thread: setns into a user namespace fails with EINVAL in a
 * multi-threaded process. Without the variable it does nothing.
 *
 * It also keeps argc and argv. glibc passes them to every constructor, so
 * the CLI can read its arguments without CommandLine.arguments, which builds
 * a [String] through a lazy global on first use.
 */
#define _GNU_SOURCE
#include "nsexec.h"
#include "nsexec_init.h"

#include <stdbool.h>
#include <stddef.h>

static int saved_count;
static char **saved_arguments;

__attribute__((constructor)) static void nsexec_init(int count, char **arguments, char **environment)
{
	(void)environment;
	saved_count = count;
	saved_arguments = arguments;
	(void)nsexec_bootstrap_entry();
}

#ifdef NSEXEC_STATIC_RUNTIME
/*
 * scripts/build-release links the Swift runtime statically and defines
 * NSEXEC_STATIC_RUNTIME. The linker takes an object out of libswiftCore.a only
 * for a symbol that is still undefined when it reaches the archive. So the
 * definitions below keep two runtime objects, and their constructors, out of
 * the binary, which saves about 0.05 ms of every start (docs/BENCHMARKS.md). If a
 * later toolchain needs more from either object, the link fails with a
 * duplicate definition instead of mixing the two silently, and
 * Tests/NSExecTests/StartupTests.swift checks that neither constructor runs.
 *
 * CommandLine.cpp is the stdlib's source of CommandLine.arguments. On Linux its
 * constructor finds argv by reading /proc/self/maps and walking the stack back
 * from environ, although nsexec never uses CommandLine. The argv that glibc
 * passes to the constructor above is the same vector. Both functions use the
 * Swift calling convention, as the stdlib declares them.
 */
static char *no_arguments[] = {NULL};
static char **override_arguments;
static int override_count;

__attribute__((swiftcall)) char **_swift_stdlib_getUnsafeArgvArgc(int *count);
__attribute__((swiftcall)) void _swift_stdlib_overrideUnsafeArgvArgc(char **arguments, int count);

__attribute__((swiftcall)) char **_swift_stdlib_getUnsafeArgvArgc(int *count)
{
	if (override_arguments != NULL) {
		*count = override_count;
		return override_arguments;
	}
	if (saved_arguments == NULL) {
		*count = 0;
		return no_arguments;
	}
	*count = saved_count;
	return saved_arguments;
}

__attribute__((swiftcall)) void _swift_stdlib_overrideUnsafeArgvArgc(char **arguments, int count)
{
	override_arguments = arguments;
	override_count = count;
}

/*
 * Backtrace.cpp is the runtime's crash backtracer. swiftrt.o refers to
 * _swift_backtrace_isThunkFunction only to drag it into static links. The
 * runtime's error reporting reads _swift_backtraceSettings to see whether the
 * backtracer is on, and all zeros there mean it is not. Its constructor looks
 * for a swift-backtrace executable next to nsexec on every start, with a
 * readlink and eight stats. Had it found one, a crash would run that path,
 * even in the direct child after it joined a container's mount namespace,
 * where the container decides what the path names. The runtime turns the
 * backtracer off for set-user-ID programs for the same kind of reason.
 * Without it a crash in nsexec ends with the signal's default action, as in
 * nsenter.
 */
bool _swift_backtrace_isThunkFunction(const char *name);
extern const unsigned int _swift_backtraceSettings[64];

const unsigned int _swift_backtraceSettings[64];

bool _swift_backtrace_isThunkFunction(const char *name)
{
	(void)name;
	return false;
}
#endif

int nsexec_init_in_stage2(void)
{
	return nsexec_bootstrap_initpipe() >= 0;
}

char **nsexec_init_arguments(int *count)
{
	*count = saved_count;
	return saved_arguments;
}
