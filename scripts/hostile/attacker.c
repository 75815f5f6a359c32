/*
 * A hostile process for nsexec's own security tests. The tests compile it
 * statically into the root filesystem of a test container and start it there
 * with `runc exec`, while nsexec runs programs in that container.
 *
 * It loops over every process it can see whose comm is NAME (default
 * "nsexec"): a stage of nsexec that sits inside the container's namespaces
 * before it execs the program. On each it tries PTRACE_ATTACH, opening
 * /proc/PID/exe, mem and environ, reading the cwd, root, exe and fd links,
 * and opening every /proc/PID/fd/N. A success counts only if the process
 * still has comm NAME afterwards, that is, it had not yet become the program
 * (which the container may legitimately inspect). The first 50 successes
 * are printed as "success KIND PID DETAIL". When STOPFILE exists it prints
 * "attempts=N stages=M successes=K" and exits 0.
 *
 * Usage: attacker STOPFILE [NAME]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STAGES 65536
#define MAX_PRINTED 50

static const char *stage_name = "nsexec";
static unsigned long attempts;
static unsigned long successes;
static unsigned long stages_seen;
static bool seen[MAX_STAGES];

/* Whether process pid now has comm stage_name. */
static bool is_stage(int pid)
{
	char path[64], comm[32];
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t length = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (length <= 0)
		return false;
	comm[length] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, stage_name) == 0;
}

/* Counts a success if pid is still a stage, so that an attack on the program is not one. */
static void report(int pid, const char *kind, const char *detail)
{
	if (!is_stage(pid))
		return;
	successes++;
	if (successes <= MAX_PRINTED) {
		printf("success %s %d %s\n", kind, pid, detail);
		fflush(stdout);
	}
}

static void try_open(int pid, const char *name, int flags, const char *kind)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0) {
		close(fd);
		report(pid, kind, path);
	}
}

static void try_readlink(int pid, const char *name, const char *kind)
{
	char path[PATH_MAX], target[PATH_MAX], detail[2 * PATH_MAX + 8];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	ssize_t length = readlink(path, target, sizeof(target) - 1);
	if (length >= 0) {
		target[length] = '\0';
		snprintf(detail, sizeof(detail), "%s -> %s", path, target);
		report(pid, kind, detail);
	}
}

static void try_ptrace(int pid)
{
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) < 0)
		return;

	/* The tracee stops for the attach; wait for that before detaching. */
	int status;
	while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
		;
	report(pid, "ptrace", "PTRACE_ATTACH");
	(void)ptrace(PTRACE_DETACH, pid, NULL, NULL);

	/*
	 * The attach may have hit the program instead, because a stage becomes
	 * the program at any moment. The attach's SIGSTOP can outlive the detach
	 * and stop the program, so the program is continued. A stage is left
	 * alone, because a test hook may have stopped it.
	 */
	if (!is_stage(pid))
		(void)kill(pid, SIGCONT);
}

static void try_fds(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	/*
	 * Listing the fd numbers is no success: for a non-dumpable process the
	 * directory belongs to root, so root in a container without a user
	 * namespace may list it, but each link still needs ptrace access.
	 */
	DIR *dir = opendir(path);
	if (dir == NULL)
		return;

	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		char name[300];
		snprintf(name, sizeof(name), "fd/%s", entry->d_name);
		try_readlink(pid, name, "fd-link");
		try_open(pid, name, O_RDONLY, "fd-open");
		try_open(pid, name, O_PATH, "fd-open-path");
	}
	closedir(dir);
}

static void attack(int pid)
{
	attempts++;
	if (pid < MAX_STAGES && !seen[pid]) {
		seen[pid] = true;
		stages_seen++;
	}

	try_ptrace(pid);
	try_open(pid, "exe", O_RDONLY, "exe-open");
	try_open(pid, "mem", O_RDONLY, "mem-open");
	try_open(pid, "environ", O_RDONLY, "environ-open");
	try_open(pid, "cwd", O_RDONLY | O_DIRECTORY, "cwd-open");
	try_open(pid, "root", O_RDONLY | O_DIRECTORY, "root-open");
	try_readlink(pid, "exe", "exe-link");
	try_readlink(pid, "cwd", "cwd-link");
	try_readlink(pid, "root", "root-link");
	try_fds(pid);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: attacker STOPFILE [NAME]\n");
		return 2;
	}
	if (argc == 3)
		stage_name = argv[2];

	int self = getpid();
	while (access(argv[1], F_OK) != 0) {
		DIR *proc = opendir("/proc");
		if (proc == NULL) {
			perror("attacker: /proc");
			return 1;
		}
		struct dirent *entry;
		while ((entry = readdir(proc)) != NULL) {
			char *end;
			long pid = strtol(entry->d_name, &end, 10);
			if (*end != '\0' || pid <= 0 || pid == self || pid > INT_MAX)
				continue;
			if (is_stage((int)pid))
				attack((int)pid);
		}
		closedir(proc);
	}

	printf("attempts=%lu stages=%lu successes=%lu\n", attempts, stages_seen, successes);
	return 0;
}
