/*
 * User and group lookup in the container's own /etc/passwd and /etc/group.
 * A static binary has no NSS, and the container's files are the right
 * source anyway: the host's user database says nothing about a container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "nsexec.h"
#include "users.h"

/*
 * Parses a decimal id. Returns false unless the whole text is a number below
 * 2^32 - 1, in digits only, so no sign, space or locale applies.
 */
bool nsexec_parse_id(const char *text, uint32_t *id)
{
	uint64_t value = 0;
	if (text == NULL || *text == '\0')
		return false;
	for (const char *cursor = text; *cursor != '\0'; cursor++) {
		if (*cursor < '0' || *cursor > '9')
			return false;
		value = value * 10 + (uint64_t)(*cursor - '0');
		if (value >= 0xffffffffULL)
			return false;
	}
	*id = (uint32_t)value;
	return true;
}

/*
 * Opens path ("/etc/passwd") for reading, resolved inside root_fd when it is
 * >= 0 so that no symlink in the container leads to a host file, else in the
 * current root.
 */
static int open_database(int root_fd, const char *path)
{
	if (root_fd < 0)
		return open(path, O_RDONLY | O_CLOEXEC);
	return nsexec_open_file_in_root(root_fd, path);
}

/*
 * The lines of a file, read with read(2) rather than stdio: a FILE costs heap
 * and the stdio code and data pages, on every run of the CLI.
 */
struct line_reader {
	int fd;
	size_t start;
	size_t end;
	bool at_end;
	char buffer[4096];
};

/*
 * Copies the next line, without its newline, into line. A line longer than
 * line_size - 1 bytes is skipped whole. Returns 1 for a line, 0 at the end of
 * the file, or -1 with errno set when a read fails.
 */
static int next_line(struct line_reader *reader, char *line, size_t line_size)
{
	size_t length = 0;
	bool too_long = false;
	for (;;) {
		if (reader->start == reader->end) {
			if (reader->at_end)
				break;
			ssize_t count = read(reader->fd, reader->buffer, sizeof(reader->buffer));
			if (count < 0 && errno == EINTR)
				continue;
			if (count < 0)
				return -1;
			if (count == 0) {
				reader->at_end = true;
				break;
			}
			reader->start = 0;
			reader->end = (size_t)count;
		}
		char *chunk = reader->buffer + reader->start;
		size_t available = reader->end - reader->start;
		char *newline = memchr(chunk, '\n', available);
		size_t part = newline != NULL ? (size_t)(newline - chunk) : available;
		if (!too_long && length + part < line_size) {
			memcpy(line + length, chunk, part);
			length += part;
		} else {
			too_long = true;
		}
		reader->start += part;
		if (newline != NULL) {
			reader->start++;
			if (!too_long)
				break;
			/* Skip the line that did not fit and read the next one. */
			too_long = false;
			length = 0;
		}
	}
	if (length == 0 && reader->at_end && reader->start == reader->end)
		return 0;
	line[too_long ? 0 : length] = '\0';
	return too_long ? 0 : 1;
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

	struct line_reader reader = {.fd = open_database(root_fd, path)};
	if (reader.fd < 0)
		return -1;

	int result = 0;
	int status;
	while ((status = next_line(&reader, line, line_size)) > 0) {
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
			result = count;
			break;
		}
	}
	int error = errno;
	(void)close(reader.fd);
	if (status < 0) {
		errno = error;
		return -1;
	}
	return result;
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
