/*
 * A probe of the clone trick for callers that cannot use setjmp (Swift): it
 * runs the STAGE_PARENT/STAGE_CHILD sequence in C and records what each side
 * observed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsexec.h"

static uint64_t user_namespace_inode(void)
{
	struct stat info;
	if (stat("/proc/self/ns/user", &info) < 0)
		return 0;
	return (uint64_t)info.st_ino;
}

/* The sequence itself, run in the intermediate process; probe is shared memory. */
__attribute__((noreturn)) static void run_sequence(struct nsexec_clone_probe *probe)
{
	jmp_buf env;
	int sync_pipe[2];
	volatile int64_t marker = 1;

	if (socketpair(AF_LOCAL, SOCK_STREAM, 0, sync_pipe) < 0)
		_exit(1);

	switch (setjmp(env)) {
	case STAGE_PARENT: {
		probe->parent_pid = getpid();
		probe->parent_ppid = getppid();
		probe->parent_userns = user_namespace_inode();

		pid_t child = clone_parent(&env, STAGE_CHILD);
		probe->clone_result = child;
		if (child < 0)
			_exit(2);

		/* The child must not see this: it got a copy of memory at the call. */
		marker = 2;

		(void)close(sync_pipe[0]);
		pid_t sent;
		ssize_t count = read(sync_pipe[1], &sent, sizeof(sent));
		probe->bytes_read = count;
		probe->pid_received = count == sizeof(sent) ? sent : 0;
		_exit(count == sizeof(sent) && sent == child ? 0 : 3);
	}
	case STAGE_CHILD: {
		probe->marker_seen = marker;
		(void)close(sync_pipe[1]);

		probe->child_unshare_errno = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
		probe->child_userns = user_namespace_inode();
		probe->child_ppid = getppid();

		pid_t self = getpid();
		probe->child_pid = self;
		probe->bytes_written = write(sync_pipe[0], &self, sizeof(self));
		_exit(0);
	}
	}
	_exit(4);
}

static int reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

int nsexec_probe_clone_parent(struct nsexec_clone_probe *result)
{
	struct nsexec_clone_probe *probe =
		mmap(NULL, sizeof(*probe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (probe == MAP_FAILED)
		return -1;
	memset(probe, 0, sizeof(*probe));
	probe->clone_result = -1;

	pid_t intermediate = fork();
	if (intermediate < 0) {
		int error = errno;
		(void)munmap(probe, sizeof(*probe));
		errno = error;
		return -1;
	}
	if (intermediate == 0)
		run_sequence(probe);

	int status = 0;
	int result_code = reap(intermediate, &status);
	int error = errno;

	/* The CLONE_PARENT child is our child too: reap it so it is no zombie. */
	if (probe->clone_result > 0) {
		int child_status = 0;
		if (reap(probe->clone_result, &child_status) == 0)
			probe->child_exit_status = WIFEXITED(child_status) ? WEXITSTATUS(child_status) : 128 + WTERMSIG(child_status);
		else
			probe->child_exit_status = -1;
	}

	*result = *probe;
	(void)munmap(probe, sizeof(*probe));
	if (result_code < 0) {
		errno = error;
		return -1;
	}
	return 0;
}
