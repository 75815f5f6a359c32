/*
 * User and group lookup in the container's own /etc/passwd and /etc/group.
 * A static binary has no NSS, and the container's files are the right
 * source anyway: the host's user database says nothing about a container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsexec.h"
#include "users.h"

/* Parses a decimal id; returns false unless the whole text is a number below 2^32 - 1. */
bool nsexec_parse_id(const char *text, uint32_t *id)
{
	char *end;
	if (text == NULL || *text == '\0' || *text == '-' || *text == '+')
		return false;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || value >= 0xffffffffULL)
		return false;
	*id = (uint32_t)value;
	return true;
}

/*
 * Opens path ("/etc/passwd") for reading, resolved inside root_fd when it is
 * >= 0 so that no symlink in the container leads to a host file, else in the
 * current root.
 */
static FILE *open_database(int root_fd, const char *path)
{
	if (root_fd < 0)
		return fopen(path, "re");

	int fd = nsexec_open_file_in_root(root_fd, path);
	if (fd < 0)
		return NULL;
	FILE *file = fdopen(fd, "r");
	if (file == NULL) {
		int error = errno;
		(void)close(fd);
		errno = error;
	}
	return file;
}

/*
 * Finds the line of path whose first field equals name, or whose third field
 * equals the id when name is a number. Fills fields (up to max_fields) in
 * line, which is modified. Returns the number of fields, 0 when not found, or
 * -1 with errno set when the file cannot be read.
 */
static int find_entry(int root_fd, const char *path, const char *name, char *line, size_t line_size, char **fields,
		      int max_fields)
{
	uint32_t requested_id;
	bool by_id = nsexec_parse_id(name, &requested_id);

	FILE *file = open_database(root_fd, path);
	if (file == NULL)
		return -1;

	while (fgets(line, (int)line_size, file) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;

		int count = 0;
		char *cursor = line;
		while (count < max_fields) {
			fields[count++] = cursor;
			char *colon = strchr(cursor, ':');
			if (colon == NULL)
				break;
			*colon = '\0';
			cursor = colon + 1;
		}
		if (count < 3)
			continue;

		uint32_t id;
		bool match = by_id ? (nsexec_parse_id(fields[2], &id) && id == requested_id) : strcmp(fields[0], name) == 0;
		if (match) {
			fclose(file);
			return count;
		}
	}
	fclose(file);
	return 0;
}

int nsexec_lookup_user(int root_fd, const char *name, struct nsexec_user *user)
{
	char line[1024];
	char *fields[7];

	memset(user, 0, sizeof(*user));
	int count = find_entry(root_fd, "/etc/passwd", name, line, sizeof(line), fields, 7);
	if (count < 4) {
		if (!nsexec_parse_id(name, &user->uid)) {
			errno = count < 0 ? errno : ENOENT;
			return -1;
		}
		/* A number with no passwd entry is still a valid uid. */
		user->has_entry = false;
		return 0;
	}

	if (!nsexec_parse_id(fields[2], &user->uid) || !nsexec_parse_id(fields[3], &user->gid)) {
		errno = EINVAL;
		return -1;
	}
	user->has_entry = true;
	/* A home too long for the entry is left empty, and the program gets HOME=/. */
	if (count >= 6 && nsexec_concat(user->home, sizeof(user->home), fields[5], (const char *)NULL) < 0)
		user->home[0] = '\0';
	return 0;
}

int nsexec_lookup_group(int root_fd, const char *name, uint32_t *gid)
{
	char line[4096];
	char *fields[4];

	if (nsexec_parse_id(name, gid))
		return 0;
	int count = find_entry(root_fd, "/etc/group", name, line, sizeof(line), fields, 4);
	if (count < 3) {
		errno = count < 0 ? errno : ENOENT;
		return -1;
	}
	if (!nsexec_parse_id(fields[2], gid)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}
