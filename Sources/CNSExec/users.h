/* User and group lookup inside the container's root; internal to the C core. */
#ifndef NSEXEC_USERS_H
#define NSEXEC_USERS_H

#include <stdbool.h>
#include <stdint.h>

/* One /etc/passwd entry, or just a uid when the number has no entry. */
struct nsexec_user {
	uint32_t uid;
	uint32_t gid;
	bool has_entry;
	char home[256];
};

bool nsexec_parse_id(const char *text, uint32_t *id);

/*
 * Looks up a user by name or uid in /etc/passwd under root_fd (or the current
 * root when root_fd is -1). Returns 0, or -1 with errno (ENOENT: no such user).
 */
int nsexec_lookup_user(int root_fd, const char *name, struct nsexec_user *user);

/* Looks up a group by name or gid the same way in /etc/group. */
int nsexec_lookup_group(int root_fd, const char *name, uint32_t *gid);

#endif
