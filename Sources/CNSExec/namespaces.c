/* The namespace table: the one list of namespace types in the project. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

int nsexec_namespaces_differing(pid_t pid, uint32_t *differing, uint32_t *failed)
{
	char process[16];

	*differing = 0;
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

	int result = 0;
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		const char *name = namespace_table[i].name;
		char theirs[64], ours[64];

		if (read_namespace_link(theirs_directory, name, theirs, sizeof(theirs)) < 0) {
			if (errno == ENOENT)
				continue;
			*failed = namespace_table[i].flag;
			result = -1;
			break;
		}
		bool same = ours_directory >= 0 && read_namespace_link(ours_directory, name, ours, sizeof(ours)) == 0 &&
			    strcmp(ours, theirs) == 0;
		if (!same)
			*differing |= namespace_table[i].flag;
	}

	int error = errno;
	(void)close(theirs_directory);
	if (ours_directory >= 0)
		(void)close(ours_directory);
	errno = error;
	return result;
}
