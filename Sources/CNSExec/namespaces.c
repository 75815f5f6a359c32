/* The namespace table: the one list of namespace types the project knows. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>

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
