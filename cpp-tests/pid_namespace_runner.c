/*
 * pid_namespace_runner COMMAND [ARG...]
 *
 * Runs COMMAND as PID 2 of a new PID namespace. PID 1 of that namespace is a
 * small reaper: it starts COMMAND, then waits for every process in the
 * namespace, so that a clone(CLONE_PARENT) child of COMMAND (whose parent is
 * the reaper) is reaped and its exit status checked. Inside the namespace no
 * other process takes pids, so COMMAND's first child gets pid 3.
 *
 * Exit status: COMMAND's own; 128+N when it was killed by signal N; 1 when
 * another process in the namespace failed while COMMAND passed; 125 when the
 * runner itself failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNNER_FAILURE 125

/* How long the reaper waits for leftover processes once COMMAND has exited. */
#define LEFTOVER_TIMEOUT_SECONDS 30

static void on_alarm(int signal)
{
	(void)signal;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int write_map(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t written = write(fd, text, strlen(text));
	int error = errno;
	(void)close(fd);
	if (written < 0) {
		errno = error;
		return -1;
	}
	return 0;
}

/*
 * Creating a PID namespace needs CAP_SYS_ADMIN. Without it, a new user
 * namespace gives the capability; the caller's uid and gid are mapped to
 * root in it so that files stay accessible as before.
 */
static int unshare_pid_namespace(void)
{
	if (unshare(CLONE_NEWPID) == 0)
		return 0;
	if (errno != EPERM)
		return -1;

	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0)
		return -1;

	char map[64];
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if (write_map("/proc/self/uid_map", map) < 0)
		return -1;
	if (write_map("/proc/self/setgroups", "deny") < 0 && errno != ENOENT)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	return write_map("/proc/self/gid_map", map);
}

/* PID 1 of the new namespace: starts the command, then reaps everything. */
static int run_reaper(char **argv)
{
	pid_t command = fork();
	if (command < 0) {
		perror("pid_namespace_runner: cannot fork the command");
		return RUNNER_FAILURE;
	}
	if (command == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "pid_namespace_runner: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}

	/*
	 * Without SA_RESTART the alarm interrupts waitpid, so that a leftover
	 * process that never exits cannot hang the test. The kernel kills it
	 * when this process, the namespace's init, exits.
	 */
	struct sigaction action;
	memset(&action, 0, sizeof(action));
	action.sa_handler = on_alarm;
	sigemptyset(&action.sa_mask);
	(void)sigaction(SIGALRM, &action, NULL);

	int command_code = RUNNER_FAILURE;
	int leftover_failures = 0;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == ECHILD)
				break;
			if (errno == EINTR) {
				fprintf(stderr, "pid_namespace_runner: processes still running %d s after the command exited\n",
					LEFTOVER_TIMEOUT_SECONDS);
				leftover_failures++;
				break;
			}
			perror("pid_namespace_runner: waitpid failed");
			return RUNNER_FAILURE;
		}

		if (pid == command) {
			command_code = exit_code(status);
			alarm(LEFTOVER_TIMEOUT_SECONDS);
			continue;
		}
		if (exit_code(status) != 0) {
			fprintf(stderr, "pid_namespace_runner: process %d in the namespace ended with status %d\n", (int)pid,
				exit_code(status));
			leftover_failures++;
		}
	}

	if (command_code == 0 && leftover_failures > 0)
		return 1;
	return command_code;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pid_namespace_runner COMMAND [ARG...]\n");
		return RUNNER_FAILURE;
	}

	if (unshare_pid_namespace() < 0) {
		fprintf(stderr, "pid_namespace_runner: cannot create a PID namespace: %s; run as root or enable user namespaces\n",
			strerror(errno));
		return RUNNER_FAILURE;
	}

	/* The first child after unshare(CLONE_NEWPID) is PID 1 of the new namespace. */
	pid_t init = fork();
	if (init < 0) {
		perror("pid_namespace_runner: cannot fork the namespace's init");
		return RUNNER_FAILURE;
	}
	if (init == 0) {
		/* If the runner is killed (a ctest timeout), the namespace dies with it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
			perror("pid_namespace_runner: cannot set the parent death signal");
			_exit(RUNNER_FAILURE);
		}
		_exit(run_reaper(argv + 1));
	}

	int status;
	while (waitpid(init, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("pid_namespace_runner: waitpid failed");
			return RUNNER_FAILURE;
		}
	}
	return exit_code(status);
}
