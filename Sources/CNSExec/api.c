/* Small setup helpers for the Swift library, which cannot index C arrays. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsexec.h"

void nsexec_config_init(struct nsexec_config *config)
{
	memset(config, 0, sizeof(*config));
	config->pidfd = -1;
}

int nsexec_config_add_join(struct nsexec_config *config, uint32_t flag, int fd, const char *path)
{
	if (config->join_count >= NSEXEC_NAMESPACE_COUNT) {
		errno = E2BIG;
		return -1;
	}
	config->joins[config->join_count++] = (struct nsexec_join){ .flag = flag, .fd = fd, .path = path };
	return 0;
}

void nsexec_process_init(struct nsexec_process *process)
{
	memset(process, 0, sizeof(*process));
	process->root_fd = -1;
	process->tty_socket = -1;
	process->host_ptmx_fd = -1;
	process->lookup_root_fd = -1;
	for (int i = 0; i < 3; i++)
		process->stdio[i] = -1;
	sigemptyset(&process->signal_mask);
}

int nsexec_process_keep_fd(struct nsexec_process *process, int fd)
{
	if (process->keep_fd_count >= sizeof(process->keep_fds) / sizeof(process->keep_fds[0])) {
		errno = E2BIG;
		return -1;
	}
	process->keep_fds[process->keep_fd_count++] = fd;
	return 0;
}

int nsexec_process_add_cgroup_fd(struct nsexec_process *process, int fd)
{
	if (process->cgroup_fd_count >= sizeof(process->cgroup_fds) / sizeof(process->cgroup_fds[0])) {
		errno = E2BIG;
		return -1;
	}
	process->cgroup_fds[process->cgroup_fd_count++] = fd;
	return 0;
}

int nsexec_spawn_inline(const struct nsexec_config *config, const struct nsexec_process *process, int report_fd,
			struct nsexec_stage_pids *pids, char *error, size_t error_size)
{
	int stage = NSEXEC_DIRECT_UNAVAILABLE;
	pids->direct = false;
	if (nsexec_direct_possible(config))
		stage = nsexec_run_direct(config, process, report_fd, pids, error, error_size);
	if (stage == NSEXEC_DIRECT_UNAVAILABLE)
		stage = nsexec_run_stages_inline(config, report_fd, pids, error, error_size);
	if (stage == STAGE_INIT)
		nsexec_exec_process(process);
	return stage < 0 ? -1 : 0;
}

int nsexec_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int nsexec_pidfd_send_signal(int pidfd, int signal)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

bool nsexec_pidfd_exited(int pidfd, int timeout_ms)
{
	/* A pidfd polls readable once its process has exited, zombie or reaped. */
	struct pollfd entry = { .fd = pidfd, .events = POLLIN };
	int ready;
	do {
		ready = poll(&entry, 1, timeout_ms);
	} while (ready < 0 && errno == EINTR);
	return ready == 1 && (entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

int nsexec_open_in_root(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
}

int nsexec_pipe_cloexec(int fds[2])
{
	return pipe2(fds, O_CLOEXEC);
}

int nsexec_open_directory(const char *path)
{
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int nsexec_open_proc_directory(pid_t pid, const char *name)
{
	char path[64];
	if (nsexec_proc_path(path, sizeof(path), pid, name) < 0)
		return -1;
	return nsexec_open_directory(path);
}

int nsexec_open_proc_file(pid_t pid, const char *name)
{
	char path[64];
	if (nsexec_proc_path(path, sizeof(path), pid, name) < 0)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

ssize_t nsexec_read_proc_link(pid_t pid, const char *name, char *buffer, size_t size)
{
	char path[64];
	if (nsexec_proc_path(path, sizeof(path), pid, name) < 0)
		return -1;
	ssize_t length = readlink(path, buffer, size);
	if (length >= 0 && (size_t)length == size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return length;
}

const char *nsexec_environment_entry(const char *name)
{
	size_t length = strlen(name);
	for (char **entry = environ; entry && *entry; entry++) {
		if (strncmp(*entry, name, length) == 0 && (*entry)[length] == '=')
			return *entry;
	}
	return NULL;
}

int nsexec_signalfd(const sigset_t *mask)
{
	return signalfd(-1, mask, SFD_CLOEXEC);
}

int nsexec_signalfd_read(int fd)
{
	struct signalfd_siginfo info;
	ssize_t count;
	do {
		count = read(fd, &info, sizeof(info));
	} while (count < 0 && errno == EINTR);
	if (count != (ssize_t)sizeof(info))
		return -1;
	return (int)info.ssi_signo;
}

int nsexec_open_file_in_root(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
}
