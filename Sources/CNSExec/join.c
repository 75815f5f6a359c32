/*
 * Joining namespaces. Every namespace file is opened before the first join,
 * because joining a mount namespace changes what /proc and other paths
 * resolve to. Then the namespaces that the current credentials allow are
 * joined, then the user namespace, then the rest. Root joining an unrelated
 * user namespace must join the others first, because it loses its rights in
 * them once it is in the new user namespace. An unprivileged caller gets its
 * rights from the target's user namespace, so it can join the others only
 * after that one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nsexec.h"

#define JOIN_HINT "run as root, or add --user to join the target's user namespace first"

static const char *namespace_name(uint32_t flag)
{
	const struct nsexec_namespace *ns = nsexec_namespace_by_flag(flag);
	return ns != NULL ? ns->name : "unknown";
}

void nsexec_open_namespace_files(struct nsexec_config *config)
{
	for (size_t i = 0; i < config->join_count; i++) {
		struct nsexec_join *join = &config->joins[i];
		if (join->fd >= 0)
			continue;

		join->fd = nsexec_open_namespace_file(join->path);
		if (join->fd < 0 && errno == EINVAL)
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, "give a file under /proc/PID/ns or a bind mount of one",
				    "%s is not a namespace file", join->path);
		if (join->fd < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, "check that the process or namespace file exists",
				    "cannot open %s namespace file %s", namespace_name(join->flag), join->path);

		uint32_t type = nsexec_namespace_file_type(join->fd);
		if (type == 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, "give a file under /proc/PID/ns or a bind mount of one",
				    "%s is not a namespace file", join->path);
		if (type != join->flag)
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "%s is a %s namespace, not a %s namespace",
				    join->path, namespace_name(type), namespace_name(join->flag));
	}
}

/* Formats "cgroup, ipc and net" for a set of flags. */
static void describe_flags(char *out, size_t size, uint32_t flags)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		const struct nsexec_namespace *ns = nsexec_namespace_at(i);
		if ((flags & ns->flag) == 0)
			continue;
		int written = snprintf(out + used, size - used, "%s%s", used == 0 ? "" : ",", ns->name);
		if (written < 0 || (size_t)written >= size - used)
			break;
		used += (size_t)written;
	}
}

/* The next step for a failed setns: more rights for EPERM, one namespace fewer for EINVAL. */
static const char *join_hint(int error, uint32_t flags)
{
	if (error == EPERM)
		return JOIN_HINT;
	if (error == EINVAL && (flags & CLONE_NEWUSER))
		return "nsexec is already in that user namespace; drop --user";
	if (error == ESRCH)
		return "the target process exited; start it again or pick a running one";
	return NULL;
}

static void join_file(const struct nsexec_join *join)
{
	if (setns(join->fd, (int)join->flag) < 0) {
		int error = errno;
		nsexec_fail(NSEXEC_EXIT_FAILURE, error, join_hint(error, join->flag), "cannot join %s namespace (%s)",
			    namespace_name(join->flag), join->path);
	}
	nsexec_log(NSEXEC_LOG_DEBUG, "joined %s namespace %s", namespace_name(join->flag), join->path);
}

void nsexec_join_namespaces(const struct nsexec_config *config)
{
	const struct nsexec_join *user = NULL;
	const struct nsexec_join *deferred[NSEXEC_NAMESPACE_COUNT];
	size_t deferred_count = 0;

	/* First pass: every non-user namespace file the current credentials allow. */
	for (size_t i = 0; i < config->join_count; i++) {
		const struct nsexec_join *join = &config->joins[i];
		if (join->flag == CLONE_NEWUSER) {
			user = join;
			continue;
		}
		if (setns(join->fd, (int)join->flag) == 0) {
			nsexec_log(NSEXEC_LOG_DEBUG, "joined %s namespace %s", namespace_name(join->flag), join->path);
			continue;
		}
		if (errno != EPERM)
			join_file(join);
		deferred[deferred_count++] = join;
	}

	/*
	 * The pidfd joins all its flags at once; the kernel applies them
	 * atomically and orders the user namespace itself.
	 */
	if (config->pidfd >= 0 && config->pidfd_flags != 0) {
		if (setns(config->pidfd, (int)config->pidfd_flags) < 0) {
			char names[128];
			describe_flags(names, sizeof(names), config->pidfd_flags);
			int error = errno;
			nsexec_fail(NSEXEC_EXIT_FAILURE, error, join_hint(error, config->pidfd_flags),
				    "cannot join %s namespaces of pid %d", names, (int)config->target_pid);
		}
		nsexec_log(NSEXEC_LOG_DEBUG, "joined namespaces 0x%x of pid %d through its pidfd", config->pidfd_flags,
			   (int)config->target_pid);
	}

	if (user != NULL)
		join_file(user);

	/* Second pass: what needed the rights of the target's user namespace. */
	for (size_t i = 0; i < deferred_count; i++)
		join_file(deferred[i]);

	for (size_t i = 0; i < config->join_count; i++) {
		if (config->joins[i].fd >= 0)
			(void)close(config->joins[i].fd);
	}
}
