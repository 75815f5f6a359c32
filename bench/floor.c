/*
 * The floor for exec latency: the least work that runs /bin/true in every
 * namespace of a target process. It opens a pidfd on the target, joins every
 * namespace that differs from its own with one setns(2), forks (the fork is
 * needed because a PID namespace applies only to children), execs /bin/true
 * and waits for it. No option parsing and no error text beyond perror.
 *
 * Usage: floor PID
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct {
	const char *name;
	int flag;
} namespaces[] = {
	{ "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "mnt", CLONE_NEWNS },
	{ "net", CLONE_NEWNET },       { "pid", CLONE_NEWPID }, { "time", CLONE_NEWTIME },
	{ "user", CLONE_NEWUSER },     { "uts", CLONE_NEWUTS },
};

/*
 * Returns the flags of the namespaces where the target differs from this
 * process. setns(pidfd, CLONE_NEWUSER) fails with EINVAL when the user
 * namespace is the caller's own, so identical namespaces must be left out.
 */
static int differing_flags(int pid)
{
	int flags = 0;
	for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
		char path[64];
		struct stat theirs, ours;

		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, namespaces[i].name);
		if (stat(path, &theirs) < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/ns/%s", namespaces[i].name);
		if (stat(path, &ours) < 0)
			continue;
		if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev)
			flags |= namespaces[i].flag;
	}
	return flags;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: floor PID\n");
		return 2;
	}
	int pid = atoi(argv[1]);

	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		perror("pidfd_open");
		return 1;
	}
	if (setns(pidfd, differing_flags(pid)) < 0) {
		perror("setns");
		return 1;
	}

	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		char *const args[] = { "/bin/true", NULL };
		execv(args[0], args);
		_exit(127);
	}

	int status;
	if (waitpid(child, &status, 0) < 0) {
		perror("waitpid");
		return 1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
