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

static int saved_count;
static char **saved_arguments;

__attribute__((constructor)) static void nsexec_init(int count, char **arguments, char **environment)
{
	(void)environment;
	saved_count = count;
	saved_arguments = arguments;
	(void)nsexec_bootstrap_entry();
}

int nsexec_init_in_stage2(void)
{
	return nsexec_bootstrap_initpipe() >= 0;
}

char **nsexec_init_arguments(int *count)
{
	*count = saved_count;
	return saved_arguments;
}
