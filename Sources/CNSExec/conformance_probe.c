/*
 * Probes of joining, error reporting and the sync helpers for tests that
 * cannot fork (Swift). Results travel back in a MAP_SHARED page or over
 * pipes; every process started here is reaped here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nsexec_probe.h"

/* A target that is never stopped exits on SIGALRM after this many seconds. */
#define TARGET_LIFETIME_SECONDS 300

/*
 * Unblocks signal in a forked child. A child inherits the signal mask of the
 * thread that forked it, and the worker threads of a Swift or Dispatch
 * program block most signals.
 */
static int unblock_signal(int signal)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, signal);
	return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* Sleeps until a signal ends the process, at the latest after TARGET_LIFETIME_SECONDS. */
__attribute__((noreturn)) static void sleep_until_killed(void)
{
	(void)signal(SIGALRM, SIG_DFL);
	(void)unblock_signal(SIGALRM);
	alarm(TARGET_LIFETIME_SECONDS);
	for (;;)
		pause();
}

static int reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static void *map_shared(size_t size)
{
	void *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return NULL;
	memset(page, 0, size);
	return page;
}

/* Reads fd to end of file into text (NUL-terminated), dropping what does not fit. */
static void read_to_end(int fd, char *text, size_t size)
{
	size_t used = 0;
	for (;;) {
		char chunk[512];
		ssize_t count = read(fd, chunk, sizeof(chunk));
		if (count < 0 && errno == EINTR)
			continue;
		if (count <= 0)
			break;
		size_t keep = (size_t)count;
		if (keep > size - 1 - used)
			keep = size - 1 - used;
		memcpy(text + used, chunk, keep);
		used += keep;
	}
	text[used] = '\0';
}

/* Switches to uid and gid with no supplementary groups, which clears every capability. */
static int switch_user(uid_t uid)
{
	if (uid == (uid_t)-1)
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -1;

	/* Changing uid clears the dumpable flag, which would hide /proc/PID/ns from other processes of uid. */
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

pid_t nsexec_probe_start_target(uint32_t flags, uid_t uid)
{
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -1;

	pid_t target = fork();
	if (target < 0) {
		int error = errno;
		(void)close(ready[0]);
		(void)close(ready[1]);
		errno = error;
		return -1;
	}

	if (target == 0) {
		(void)close(ready[0]);
		int error = 0;
		if (switch_user(uid) < 0 || unshare((int)flags) < 0)
			error = errno;
		(void)nsexec_write_all(ready[1], &error, sizeof(error));
		if (error != 0)
			_exit(1);

		(void)close(ready[1]);
		sleep_until_killed();
	}

	(void)close(ready[1]);
	int error = 0;
	int result = nsexec_read_all(ready[0], &error, sizeof(error));
	if (result < 0)
		error = errno;
	(void)close(ready[0]);
	if (error != 0) {
		(void)kill(target, SIGKILL);
		(void)reap(target, NULL);
		errno = error;
		return -1;
	}
	return target;
}

int nsexec_probe_stop_target(pid_t pid)
{
	if (kill(pid, SIGKILL) < 0)
		return -1;
	return reap(pid, NULL);
}

static uint64_t namespace_inode(const char *name)
{
	char path[64];
	struct stat info;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	if (stat(path, &info) < 0)
		return 0;
	return (uint64_t)info.st_ino;
}

/* The joining process: reports failures through nsexec_fail on report_fd, results in probe. */
__attribute__((noreturn)) static void run_join(const struct nsexec_config *config, uid_t uid, int report_fd,
					       struct nsexec_join_probe *probe)
{
	struct nsexec_config copy = *config;
	nsexec_log_setup(-1, NSEXEC_LOG_ERROR, report_fd);

	if (switch_user(uid) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot switch to uid %u", (unsigned)uid);

	nsexec_open_namespace_files(&copy);
	int fds[NSEXEC_NAMESPACE_COUNT];
	for (size_t i = 0; i < copy.join_count; i++)
		fds[i] = copy.joins[i].fd;

	nsexec_join_namespaces(&copy);

	for (size_t i = 0; i < copy.join_count; i++) {
		if (fcntl(fds[i], F_GETFD) >= 0)
			probe->open_join_fds++;
	}
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++)
		probe->namespaces[i] = namespace_inode(nsexec_namespace_at(i)->name);
	_exit(0);
}

int nsexec_probe_join(const struct nsexec_config *config, uid_t uid, struct nsexec_join_probe *result)
{
	struct nsexec_join_probe *probe = map_shared(sizeof(*probe));
	if (probe == NULL)
		return -1;

	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0) {
		int error = errno;
		(void)munmap(probe, sizeof(*probe));
		errno = error;
		return -1;
	}

	pid_t child = fork();
	if (child == 0) {
		(void)close(report[0]);
		run_join(config, uid, report[1], probe);
	}
	int error = errno;
	(void)close(report[1]);

	int status = 0;
	int code = -1;
	if (child > 0) {
		read_to_end(report[0], probe->error, sizeof(probe->error));
		code = reap(child, &status);
		error = errno;
	}
	(void)close(report[0]);

	if (code == 0) {
		probe->exit_status = exit_code(status);
		*result = *probe;
	}
	(void)munmap(probe, sizeof(*probe));
	errno = error;
	return code;
}

/* The failing process: sets up logging as request describes, then fails. */
__attribute__((noreturn)) static void run_fail(const struct nsexec_fail_request *request, int report_fd, int log_fd,
					       int stderr_fd, pid_t started)
{
	if (dup2(stderr_fd, STDERR_FILENO) < 0)
		_exit(1);

	nsexec_log_setup(request->log ? log_fd : -1, NSEXEC_LOG_DEBUG, request->report ? report_fd : -1);
	if (request->stage != NULL)
		nsexec_log_stage(request->stage);
	nsexec_log_echo(request->echo);
	if (started > 0)
		nsexec_log_started(started);

	nsexec_fail(request->status, request->error, request->hint, "%s", request->message);
}

/* A pipe for each of report, log and stderr: [0] read ends, [1] write ends. */
struct fail_pipes {
	int read_fds[3];
	int write_fds[3];
};

static void close_all(int *fds, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (fds[i] >= 0)
			(void)close(fds[i]);
		fds[i] = -1;
	}
}

static int open_fail_pipes(struct fail_pipes *pipes)
{
	for (size_t i = 0; i < 3; i++) {
		pipes->read_fds[i] = -1;
		pipes->write_fds[i] = -1;
	}
	for (size_t i = 0; i < 3; i++) {
		int pair[2];
		if (pipe2(pair, O_CLOEXEC) < 0) {
			int error = errno;
			close_all(pipes->read_fds, 3);
			close_all(pipes->write_fds, 3);
			errno = error;
			return -1;
		}
		pipes->read_fds[i] = pair[0];
		pipes->write_fds[i] = pair[1];
	}
	return 0;
}

int nsexec_probe_fail(const struct nsexec_fail_request *request, struct nsexec_fail_probe *probe)
{
	struct fail_pipes pipes;
	memset(probe, 0, sizeof(*probe));
	if (open_fail_pipes(&pipes) < 0)
		return -1;

	/* The recorded stage is a sibling of the failing process, so this function can reap it. */
	if (request->start_stage) {
		probe->started_pid = fork();
		if (probe->started_pid == 0) {
			/* Holding no pipe end, it cannot delay the end of file that the reads below wait for. */
			close_all(pipes.read_fds, 3);
			close_all(pipes.write_fds, 3);
			sleep_until_killed();
		}
		if (probe->started_pid < 0) {
			int error = errno;
			close_all(pipes.read_fds, 3);
			close_all(pipes.write_fds, 3);
			errno = error;
			return -1;
		}
	}

	probe->pid = fork();
	if (probe->pid == 0) {
		close_all(pipes.read_fds, 3);
		run_fail(request, pipes.write_fds[0], pipes.write_fds[1], pipes.write_fds[2], probe->started_pid);
	}
	int error = errno;
	close_all(pipes.write_fds, 3);

	int code = -1;
	if (probe->pid > 0) {
		read_to_end(pipes.read_fds[0], probe->report, sizeof(probe->report));
		read_to_end(pipes.read_fds[1], probe->log, sizeof(probe->log));
		read_to_end(pipes.read_fds[2], probe->stderr_text, sizeof(probe->stderr_text));
		int status = 0;
		code = reap(probe->pid, &status);
		error = errno;
		probe->exit_status = exit_code(status);
	}
	close_all(pipes.read_fds, 3);

	/* nsexec_fail should have killed it already; SIGKILL makes sure a failed probe leaves nothing behind. */
	if (probe->started_pid > 0) {
		int status = 0;
		if (code < 0)
			(void)kill(probe->started_pid, SIGKILL);
		if (reap(probe->started_pid, &status) == 0 && WIFSIGNALED(status))
			probe->started_signal = WTERMSIG(status);
	}

	errno = error;
	return code;
}

/* SIGUSR1 deliveries in the reader. A signal handler can only reach a static. */
static volatile sig_atomic_t signals_caught;

static void count_signal(int signal)
{
	(void)signal;
	signals_caught++;
}

/* Returns the state letter of /proc/PID/stat ('S' while sleeping), or 0. */
static char process_state(pid_t pid)
{
	char path[64];
	char text[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t count = read(fd, text, sizeof(text) - 1);
	(void)close(fd);
	if (count <= 0)
		return 0;
	text[count] = '\0';

	/* The command name may contain spaces and parentheses; the state follows the last ')'. */
	char *end = strrchr(text, ')');
	if (end == NULL || end[1] != ' ')
		return 0;
	return end[2];
}

static void sleep_ms(long milliseconds)
{
	struct timespec delay = { milliseconds / 1000, (milliseconds % 1000) * 1000000 };
	while (nanosleep(&delay, &delay) < 0 && errno == EINTR)
		;
}

/* The writer: interrupts the reader while it sleeps in read(2), then sends the data. */
__attribute__((noreturn)) static void run_writer(pid_t reader, int fd)
{
	for (int i = 0; i < 5000 && process_state(reader) != 'S'; i++)
		sleep_ms(1);
	if (kill(reader, SIGUSR1) < 0)
		_exit(1);

	/* Gives the reader time to take the signal and go back to read(2). */
	sleep_ms(100);
	_exit(nsexec_write_all(fd, "eintr-ok", 8) == 0 ? 0 : 1);
}

__attribute__((noreturn)) static void run_reader(struct nsexec_interrupted_read_probe *probe)
{
	int pair[2];
	struct sigaction action;
	memset(&action, 0, sizeof(action));
	action.sa_handler = count_signal;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGUSR1, &action, NULL) < 0 || unblock_signal(SIGUSR1) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		_exit(1);

	pid_t reader = getpid();
	pid_t writer = fork();
	if (writer < 0)
		_exit(1);
	if (writer == 0) {
		(void)close(pair[0]);
		run_writer(reader, pair[1]);
	}
	(void)close(pair[1]);

	probe->result = nsexec_read_all(pair[0], probe->data, 8);
	probe->error = probe->result < 0 ? errno : 0;
	probe->signals_caught = signals_caught;

	int status = 0;
	if (reap(writer, &status) < 0 || exit_code(status) != 0)
		_exit(2);
	_exit(0);
}

int nsexec_probe_interrupted_read(struct nsexec_interrupted_read_probe *result)
{
	struct nsexec_interrupted_read_probe *probe = map_shared(sizeof(*probe));
	if (probe == NULL)
		return -1;

	pid_t reader = fork();
	if (reader == 0)
		run_reader(probe);
	int error = errno;

	int code = -1;
	if (reader > 0) {
		int status = 0;
		code = reap(reader, &status);
		error = errno;
		if (code == 0 && exit_code(status) != 0) {
			code = -1;
			error = ECHILD;
		}
	}

	if (code == 0)
		*result = *probe;
	(void)munmap(probe, sizeof(*probe));
	errno = error;
	return code;
}
