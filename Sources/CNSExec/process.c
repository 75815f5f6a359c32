/*
 * The final process setup in stage 2, after every namespace is joined:
 * root, credentials, working directory, terminal, fds, then exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsexec.h"
#include "nsexec_tty.h"
#include "users.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void join_cgroups(const struct nsexec_process *process)
{
	for (size_t i = 0; i < process->cgroup_fd_count && i < 16; i++) {
		if (write(process->cgroup_fds[i], "0\n", 2) != 2)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot move into the target's cgroup");
		(void)close(process->cgroup_fds[i]);
	}
}

static void enter_root(const struct nsexec_process *process)
{
	if (process->root_fd < 0)
		return;
	if (fchdir(process->root_fd) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot change to the target's root directory");
	if (chroot(".") < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot chroot into the target's root directory");
	(void)close(process->root_fd);
}

/* Resolves dir inside the current root, so that no "..", symlink or /proc/self/fd/N leads out. */
static int open_inside_root(const char *dir)
{
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	int fd = nsexec_open_in_root(root, dir);
	int error = errno;
	(void)close(root);
	errno = error;
	return fd;
}

/* Opens the working directory inside the current root; see change_directory. */
static int open_working_directory(const struct nsexec_process *process)
{
	const char *dir = process->cwd;
	bool fallback = false;

	if (dir == NULL) {
		/* The target's cwd may be gone or unreachable: then start in "/". */
		dir = process->target_cwd;
		fallback = true;
	}

	int fd = open_inside_root(dir);
	if (fd < 0 && fallback)
		fd = open_inside_root("/");
	if (fd < 0) {
		int error = errno;
		const char *hint = "give a directory that exists inside the container";
		if (error == EXDEV || error == ELOOP)
			hint = "the path leaves the container's root through a magic link; give a plain path";
		nsexec_fail(NSEXEC_EXIT_FAILURE, error, hint, "cannot use working directory %s", dir);
	}
	return fd;
}

static void change_directory(const struct nsexec_process *process, int fd)
{
	const char *dir = process->cwd != NULL ? process->cwd : "(the target's working directory)";
	if (fchdir(fd) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot change to working directory %s", dir);
	(void)close(fd);

	/* getcwd fails for a directory outside the root: a last check before exec. */
	char resolved[4096];
	if (getcwd(resolved, sizeof(resolved)) == NULL || resolved[0] != '/')
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, "give a directory inside the container's root",
			    "working directory %s lies outside the program's root", dir);
}

/* Switches uid and gid; returns the user's passwd entry for HOME. */
static void switch_credentials(const struct nsexec_process *process, struct nsexec_user *user)
{
	uid_t uid = 0;
	gid_t gid = 0;
	bool change = false;

	memset(user, 0, sizeof(*user));
	if (process->preserve_credentials) {
		user->uid = getuid();
		return;
	}

	if (process->entered_user_namespace)
		change = true;

	if (process->user != NULL) {
		if (nsexec_lookup_user(process->lookup_root_fd, process->user, user) < 0) {
			if (errno == ENOENT)
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, "give a numeric uid or a user listed in the container",
					    "user %s not found in the container's /etc/passwd", process->user);
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot read the container's /etc/passwd for user %s",
				    process->user);
		}
		uid = user->uid;
		gid = user->has_entry ? user->gid : 0;
		change = true;
	} else {
		/* Still look up the user for HOME, quietly. */
		char self[16];
		(void)nsexec_format_unsigned(self, sizeof(self), process->entered_user_namespace ? 0ul : (unsigned long)getuid());
		if (nsexec_lookup_user(process->lookup_root_fd, self, user) < 0)
			memset(user, 0, sizeof(*user));
		uid = user->uid;
		gid = process->entered_user_namespace ? 0 : getgid();
	}

	if (process->group != NULL) {
		uint32_t group;
		if (nsexec_lookup_group(process->lookup_root_fd, process->group, &group) < 0) {
			if (errno == ENOENT)
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, "give a numeric gid or a group listed in the container",
					    "group %s not found in the container's /etc/group", process->group);
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot read the container's /etc/group for group %s",
				    process->group);
		}
		gid = group;
		change = true;
	}

	if (process->lookup_root_fd >= 0)
		(void)close(process->lookup_root_fd);
	if (!change)
		return;

	/* Supplementary groups of the caller must not follow it into the container. */
	if (setgroups(0, NULL) < 0 && !(errno == EPERM && process->entered_user_namespace))
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot reset supplementary groups");
	if (setresgid(gid, gid, gid) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, "check that the gid is mapped in the user namespace",
			    "cannot set gid %u", (unsigned)gid);
	if (setresuid(uid, uid, uid) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, "check that the uid is mapped in the user namespace",
			    "cannot set uid %u", (unsigned)uid);
}

/* Opens a pty in the container, else the host's, and sends its master to the supervisor. */
static void setup_terminal(const struct nsexec_process *process)
{
	int master, slave;

	if (process->tty_socket < 0)
		return;

	int ptmx = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ptmx < 0 || nsexec_open_pty(ptmx, &master, &slave) < 0) {
		if (ptmx >= 0)
			(void)close(ptmx);
		if (process->host_ptmx_fd < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot open a pseudo-terminal in the container");
		if (nsexec_open_pty(process->host_ptmx_fd, &master, &slave) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot open a pseudo-terminal");
	} else if (process->host_ptmx_fd >= 0) {
		(void)close(process->host_ptmx_fd);
	}

	if (nsexec_send_fd(process->tty_socket, master) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot send the terminal to the supervisor");
	(void)close(master);
	(void)close(process->tty_socket);

	if (setsid() < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot start a session for the terminal");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot make the pseudo-terminal the controlling terminal");
	for (int fd = 0; fd < 3; fd++) {
		if (dup2(slave, fd) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot attach the terminal to fd %d", fd);
	}
	if (slave > 2)
		(void)close(slave);
}

static void setup_fds(const struct nsexec_process *process)
{
	for (int fd = 0; fd < 3; fd++) {
		if (process->stdio[fd] >= 0 && process->stdio[fd] != fd && dup2(process->stdio[fd], fd) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot set up fd %d of the program", fd);
	}

	/* Everything above 2 closes at exec, unless the caller passed it on purpose. */
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot mark fds close-on-exec");
	for (size_t i = 0; i < process->keep_fd_count && i < 16; i++) {
		if (fcntl(process->keep_fds[i], F_SETFD, 0) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot pass fd %d to the program",
				    process->keep_fds[i]);
	}
}

size_t nsexec_environment_count(char *const *envp)
{
	size_t count = 0;
	while (envp[count] != NULL)
		count++;
	return count;
}

/*
 * Returns envp, with HOME added from the passwd entry when it lacks one. The
 * copy lives in storage (count + 2 pointers) and home, which the caller owns.
 */
static char *const *environment(const struct nsexec_process *process, const struct nsexec_user *user, char **storage,
				size_t count, char *home, size_t home_size)
{
	if (!process->set_home)
		return process->envp;
	for (size_t i = 0; i < count; i++) {
		if (strncmp(process->envp[i], "HOME=", 5) == 0)
			return process->envp;
	}

	memcpy(storage, process->envp, count * sizeof(char *));
	const char *directory = user->has_entry && user->home[0] != '\0' ? user->home : "/";
	/* home has room for sizeof(user->home) + 5 bytes, so the entry always fits. */
	(void)nsexec_concat(home, home_size, "HOME=", directory, (const char *)NULL);
	storage[count] = home;
	storage[count + 1] = NULL;
	return storage;
}

static const char *search_path(char *const *envp)
{
	for (size_t i = 0; envp[i] != NULL; i++) {
		if (strncmp(envp[i], "PATH=", 5) == 0)
			return envp[i] + 5;
	}
	return DEFAULT_PATH;
}

__attribute__((noreturn)) static void fail_exec(const char *program, int error)
{
	int status = error == ENOENT || error == ENOTDIR ? NSEXEC_EXIT_NOT_FOUND : NSEXEC_EXIT_NOT_EXECUTABLE;
	const char *hint = status == NSEXEC_EXIT_NOT_FOUND ? "check that the program exists inside the container"
							   : "check the program's permissions and format";
	nsexec_fail(status, error, hint, "cannot execute %s", program);
}

/* Execs argv[0], searching PATH inside the root when it has no slash, as execvp would. */
__attribute__((noreturn)) static void execute(char *const *argv, char *const *envp)
{
	const char *program = argv[0];

	if (strchr(program, '/') != NULL) {
		execve(program, argv, envp);
		fail_exec(program, errno);
	}

	const char *path = search_path(envp);
	int error = ENOENT;
	size_t name_length = strlen(program);
	char candidate[4096];

	for (const char *dir = path;; dir = strchr(dir, ':') + 1) {
		const char *end = strchr(dir, ':');
		size_t dir_length = end != NULL ? (size_t)(end - dir) : strlen(dir);

		if (dir_length + name_length + 2 <= sizeof(candidate)) {
			if (dir_length == 0) {
				memcpy(candidate, program, name_length + 1);
			} else {
				memcpy(candidate, dir, dir_length);
				candidate[dir_length] = '/';
				memcpy(candidate + dir_length + 1, program, name_length + 1);
			}
			execve(candidate, argv, envp);

			/* Keep searching past missing entries; remember that one existed. */
			if (errno == EACCES)
				error = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				fail_exec(candidate, errno);
		}
		if (end == NULL)
			break;
	}
	fail_exec(program, error);
}

void nsexec_exec_process(const struct nsexec_process *process)
{
	/* A stage of its own: the block goes away with the exec. */
	size_t count = nsexec_environment_count(process->envp);
	char **storage = calloc(count + 2, sizeof(char *));
	if (storage == NULL)
		nsexec_fail(NSEXEC_EXIT_FAILURE, ENOMEM, NULL, "cannot copy the program's environment of %zu variables",
			    count);
	nsexec_exec_process_in(process, storage);
}

void nsexec_exec_process_in(const struct nsexec_process *process, char **storage)
{
	struct nsexec_user user;

	if (process->argv == NULL || process->argv[0] == NULL || process->argv[0][0] == '\0')
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "no program to execute");

	join_cgroups(process);
	/* With neither a cwd nor the target's, the caller's working directory stays. */
	bool change_cwd = process->cwd != NULL || process->target_cwd != NULL;
	int cwd_fd = -1;
	if (change_cwd && process->cwd_from_namespace_root)
		cwd_fd = open_working_directory(process);
	enter_root(process);
	setup_terminal(process);
	switch_credentials(process, &user);
	if (change_cwd && cwd_fd < 0)
		cwd_fd = open_working_directory(process);
	if (change_cwd)
		change_directory(process, cwd_fd);
	setup_fds(process);
	size_t count = nsexec_environment_count(process->envp);
	char home[sizeof(user.home) + 5];
	char *const *envp = environment(process, &user, storage, count, home, sizeof(home));

	/* The program is not a stage: it gets no death signal and the caller's signal mask. */
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot clear the parent death signal");
	nsexec_test_hook("stage2-exec");
	if (sigprocmask(SIG_SETMASK, &process->signal_mask, NULL) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot set the program's signal mask");
	execute(process->argv, envp);
}
