/* The namespace table: the one list of namespace types in the project. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsexec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/*
 * The order is the one nsexec joins in when it has no other reason to choose:
 * user last among the first pass, mnt after the others so that /proc paths
 * stay valid while the rest are opened.
 */
static const struct nsexec_namespace namespace_table[NSEXEC_NAMESPACE_COUNT] = {
	{ "cgroup", CLONE_NEWCGROUP },
	{ "ipc", CLONE_NEWIPC },
	{ "net", CLONE_NEWNET },
	{ "pid", CLONE_NEWPID },
	{ "time", CLONE_NEWTIME },
	{ "uts", CLONE_NEWUTS },
	{ "mnt", CLONE_NEWNS },
	{ "user", CLONE_NEWUSER },
};

const struct nsexec_namespace *nsexec_namespace_at(size_t index)
{
	if (index >= NSEXEC_NAMESPACE_COUNT)
		return NULL;
	return &namespace_table[index];
}

const struct nsexec_namespace *nsexec_namespace_by_name(const char *name, size_t length)
{
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		const char *candidate = namespace_table[i].name;
		if (strlen(candidate) == length && memcmp(candidate, name, length) == 0)
			return &namespace_table[i];
	}
	return NULL;
}

const struct nsexec_namespace *nsexec_namespace_by_flag(uint32_t flag)
{
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		if (namespace_table[i].flag == flag)
			return &namespace_table[i];
	}
	return NULL;
}

uint32_t nsexec_namespace_all_flags(void)
{
	uint32_t flags = 0;
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++)
		flags |= namespace_table[i].flag;
	return flags;
}

uint32_t nsexec_namespace_file_type(int fd)
{
	int type = ioctl(fd, NS_GET_NSTYPE);
	if (type < 0) {
		/* ENOTTY: the ioctl exists only on nsfs files. */
		if (errno == ENOTTY)
			errno = EINVAL;
		return 0;
	}
	return (uint32_t)type;
}

int nsexec_open_namespace_file(const char *path)
{
	/*
	 * O_PATH opens nothing: a FIFO given by mistake cannot block here, and no
	 * device's open handler runs. Only a regular file, which every nsfs file
	 * is, gets reopened for reading through its /proc/self/fd link.
	 */
	int path_fd = open(path, O_PATH | O_CLOEXEC);
	if (path_fd < 0)
		return -1;

	struct stat info;
	int error = 0;
	if (fstat(path_fd, &info) < 0)
		error = errno;
	else if (!S_ISREG(info.st_mode))
		error = EINVAL;
	if (error != 0) {
		(void)close(path_fd);
		errno = error;
		return -1;
	}

	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", path_fd);
	int fd = open(link, O_RDONLY | O_CLOEXEC);
	error = errno;
	(void)close(path_fd);
	errno = error;
	return fd;
}

/*
 * Opens /proc/PROCESS/ns once, so that each namespace file is then found by
 * name instead of by a path walk through /proc.
 */
static int open_namespace_directory(const char *process)
{
	char path[64];
	if (nsexec_concat(path, sizeof(path), "/proc/", process, "/ns", (const char *)NULL) < 0)
		return -1;
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/*
 * readlink, not stat: following a namespace link allocates an nsfs dentry and
 * inode on every call, while readlink only formats the text. On the machine of
 * docs/BENCHMARKS.md, 16 readlinks took about 40 us and 16 stats about 80 us.
 */
static int read_namespace_link(int directory, const char *name, char *text, size_t size)
{
	ssize_t length = readlinkat(directory, name, text, size - 1);
	if (length < 0)
		return -1;
	text[length] = '\0';
	return 0;
}

/* The link text of the initial user namespace, whose inode number the kernel fixes (PROC_USER_INIT_INO). */
#define INITIAL_USER_NAMESPACE "user:[4026531837]"

/*
 * The types that are always compared. Joining one's own user namespace is
 * EINVAL, a time namespace to join denies the direct child the caller's
 * memory, and joining a mount namespace resets root and working directory.
 * Whether the PID namespace is joined decides whether the direct child is
 * born in another PID namespace, where its parent's pid reads as 0.
 */
#define ALWAYS_COMPARED (CLONE_NEWUSER | CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWPID)

/* Returns whether the caller has CAP_SYS_ADMIN in its effective set. */
static bool has_sys_admin(void)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &header, data) < 0)
		return false;
	return (data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32))) != 0;
}

/*
 * Adds ns's flag to *join when pid's namespace of that type differs from the
 * caller's. theirs and ours receive the two link texts, empty where a file
 * was not read. Returns 0, or -1 when pid's file cannot be read for a reason
 * other than ENOENT.
 */
static int compare_namespace(int theirs_directory, int ours_directory, const struct nsexec_namespace *ns,
			     uint32_t *join, char *theirs, char *ours, size_t size)
{
	theirs[0] = '\0';
	ours[0] = '\0';
	if (read_namespace_link(theirs_directory, ns->name, theirs, size) < 0)
		return errno == ENOENT ? 0 : -1;
	bool same = ours_directory >= 0 && read_namespace_link(ours_directory, ns->name, ours, size) == 0 &&
		    strcmp(ours, theirs) == 0;
	if (!same)
		*join |= ns->flag;
	return 0;
}

int nsexec_namespaces_to_join(pid_t pid, uint32_t *join, uint32_t *failed)
{
	char process[16];

	*join = 0;
	*failed = 0;
	(void)nsexec_format_unsigned(process, sizeof(process), (unsigned long)pid);
	int theirs_directory = open_namespace_directory(process);
	if (theirs_directory < 0) {
		if (errno == ENOENT)
			return 0;
		*failed = namespace_table[0].flag;
		return -1;
	}
	int ours_directory = open_namespace_directory("self");

	/* The user namespace first: it decides whether the other types need a comparison. */
	const struct nsexec_namespace *user = nsexec_namespace_by_flag(CLONE_NEWUSER);
	char theirs[64], ours[64];
	int result = compare_namespace(theirs_directory, ours_directory, user, join, theirs, ours, sizeof(theirs));
	if (result < 0)
		*failed = user->flag;
	bool compare_all = !(strcmp(theirs, INITIAL_USER_NAMESPACE) == 0 && strcmp(ours, INITIAL_USER_NAMESPACE) == 0 &&
			     has_sys_admin());

	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT && result == 0; i++) {
		const struct nsexec_namespace *ns = &namespace_table[i];
		if (ns == user)
			continue;
		if (!compare_all && !(ns->flag & ALWAYS_COMPARED)) {
			*join |= ns->flag;
			continue;
		}
		result = compare_namespace(theirs_directory, ours_directory, ns, join, theirs, ours, sizeof(theirs));
		if (result < 0)
			*failed = ns->flag;
	}

	int error = errno;
	(void)close(theirs_directory);
	if (ours_directory >= 0)
		(void)close(ours_directory);
	errno = error;
	return result;
}
