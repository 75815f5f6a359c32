/*
 * The constructor of the nsexec executable. When the binary is started with
 * _LIBCONTAINER_INITPIPE set, the stages must run before the Swift runtime
 * starts any thread: setns into a user namespace fails with EINVAL in a
 * multi-threaded process. Without the variable it does nothing.
 */
#define _GNU_SOURCE
#include "nsexec.h"
#include "nsexec_init.h"

__attribute__((constructor)) static void nsexec_init(void)
{
	(void)nsexec_bootstrap_entry();
}

int nsexec_init_in_stage2(void)
{
	return nsexec_bootstrap_initpipe() >= 0;
}
