/*
 * The bootstrap message: a netlink message (native byte order) of type
 * NSEXEC_INIT_MSG whose attributes carry the stage configuration, as runc's
 * parent process sends it over the init pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsexec.h"

/* The netlink header and attribute layouts, as in <linux/netlink.h>. */
struct message_header {
	uint32_t length;
	uint16_t type;
	uint16_t flags;
	uint32_t sequence;
	uint32_t port;
};

struct attribute_header {
	uint16_t length;
	uint16_t type;
};

#define ALIGN4(n) (((n) + 3u) & ~3u)

/* Records the error, frees what was stored and fails the parse. */
#define FAIL(...)                                             \
	do {                                                  \
		parse_error(error, error_size, __VA_ARGS__); \
		goto fail;                                    \
	} while (0)

static int parse_error(char *error, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));
static int parse_error(char *error, size_t size, const char *format, ...)
{
	va_list args;
	if (error != NULL && size > 0) {
		va_start(args, format);
		vsnprintf(error, size, format, args);
		va_end(args);
	}
	errno = EINVAL;
	return -1;
}

/* Appends a NUL-terminated copy of bytes to the storage arena. */
static char *store(char **cursor, const char *end, const uint8_t *bytes, size_t length)
{
	if ((size_t)(end - *cursor) < length + 1)
		return NULL;
	char *copy = *cursor;
	memcpy(copy, bytes, length);
	copy[length] = '\0';
	*cursor += length + 1;
	return copy;
}

/* Drops one trailing NUL, which Go and C senders may or may not include. */
static size_t text_length(const uint8_t *payload, size_t length)
{
	if (length > 0 && payload[length - 1] == '\0')
		return length - 1;
	return length;
}

/*
 * Copies at most 64 bytes of untrusted text into out for an error message.
 * Control and non-ASCII bytes become \xNN, so that the message stays one line
 * of printable text and valid in a JSON string.
 */
static const char *excerpt(char *out, size_t size, const char *text, size_t length)
{
	size_t used = 0;
	size_t limit = length < 64 ? length : 64;

	for (size_t i = 0; i < limit && used + 5 < size; i++) {
		unsigned char byte = (unsigned char)text[i];
		if (byte >= 0x20 && byte < 0x7f && byte != '\\')
			out[used++] = (char)byte;
		else
			used += (size_t)snprintf(out + used, size - used, "\\x%02x", byte);
	}
	if (limit < length && used + 4 < size) {
		memcpy(out + used, "...", 3);
		used += 3;
	}
	out[used] = '\0';
	return out;
}

/* Splits "type:path,type:path" into config->joins, checking every entry. */
static int parse_namespace_paths(const uint8_t *payload, size_t length, struct nsexec_config *config,
				 char **cursor, const char *end, char *error, size_t error_size)
{
	length = text_length(payload, length);
	if (length == 0)
		return parse_error(error, error_size, "invalid bootstrap message: namespace paths are empty");
	if (memchr(payload, '\0', length) != NULL)
		return parse_error(error, error_size, "invalid bootstrap message: namespace paths contain a NUL byte");

	const char *text = (const char *)payload;
	size_t start = 0;
	while (start <= length) {
		const char *entry = text + start;
		const char *comma = memchr(entry, ',', length - start);
		size_t entry_length = comma != NULL ? (size_t)(comma - entry) : length - start;

		char quoted[4 * 64 + 4];
		const char *colon = memchr(entry, ':', entry_length);
		if (colon == NULL)
			return parse_error(error, error_size,
					   "invalid bootstrap message: namespace path entry '%s' has no ':'",
					   excerpt(quoted, sizeof(quoted), entry, entry_length));

		size_t name_length = (size_t)(colon - entry);
		const struct nsexec_namespace *ns = nsexec_namespace_by_name(entry, name_length);
		if (ns == NULL)
			return parse_error(error, error_size,
					   "invalid bootstrap message: unknown namespace type '%s'",
					   excerpt(quoted, sizeof(quoted), entry, name_length));

		size_t path_length = entry_length - name_length - 1;
		if (path_length == 0)
			return parse_error(error, error_size, "invalid bootstrap message: empty path for %s namespace",
					   ns->name);

		for (size_t i = 0; i < config->join_count; i++) {
			if (config->joins[i].flag == ns->flag)
				return parse_error(error, error_size,
						   "invalid bootstrap message: %s namespace is listed twice", ns->name);
		}

		char *path = store(cursor, end, (const uint8_t *)colon + 1, path_length);
		if (path == NULL)
			return parse_error(error, error_size, "invalid bootstrap message: namespace paths too long");

		config->joins[config->join_count++] = (struct nsexec_join){ .flag = ns->flag, .fd = -1, .path = path };

		if (comma == NULL)
			break;
		start += entry_length + 1;
	}
	return 0;
}

static int expect_payload_size(uint16_t type, size_t length, size_t expected, char *error, size_t error_size)
{
	if (length != expected)
		return parse_error(error, error_size,
				   "invalid bootstrap message: attribute %u has a %zu-byte payload, expected %zu",
				   type, length, expected);
	return 0;
}

int nsexec_parse_bootstrap(const uint8_t *message, size_t length, struct nsexec_config *config,
			   char *error, size_t error_size)
{
	struct message_header header;

	memset(config, 0, sizeof(*config));
	config->pidfd = -1;

	if (length == 0)
		return parse_error(error, error_size, "invalid bootstrap message: the init pipe sent no data");
	if (length < sizeof(header))
		return parse_error(error, error_size,
				   "invalid bootstrap message: %zu bytes is shorter than the %zu-byte header",
				   length, sizeof(header));
	if (length > NSEXEC_BOOTSTRAP_MAX)
		return parse_error(error, error_size, "invalid bootstrap message: %zu bytes exceeds the %u-byte limit",
				   length, NSEXEC_BOOTSTRAP_MAX);

	memcpy(&header, message, sizeof(header));
	if (header.type != NSEXEC_INIT_MSG)
		return parse_error(error, error_size, "invalid bootstrap message: type %u, expected %u",
				   header.type, NSEXEC_INIT_MSG);
	if (header.length < sizeof(header))
		return parse_error(error, error_size,
				   "invalid bootstrap message: stated length %u is shorter than the header",
				   header.length);
	if (header.length != length)
		return parse_error(error, error_size,
				   "invalid bootstrap message: stated length %u differs from the %zu bytes received",
				   header.length, length);

	/* One arena for every NUL-terminated copy: never more than the message. */
	size_t storage_size = length + 4 * NSEXEC_NAMESPACE_COUNT;
	config->paths_storage = malloc(storage_size);
	if (config->paths_storage == NULL)
		return parse_error(error, error_size, "cannot allocate %zu bytes for the bootstrap message", storage_size);
	char *cursor = config->paths_storage;
	const char *end = config->paths_storage + storage_size;

	uint32_t seen = 0;
	size_t offset = sizeof(header);
	while (offset < length) {
		struct attribute_header attribute;

		if (length - offset < sizeof(attribute))
			FAIL("invalid bootstrap message: %zu trailing bytes after the last attribute",
						   length - offset);
		memcpy(&attribute, message + offset, sizeof(attribute));

		if (attribute.length < sizeof(attribute))
			FAIL("invalid bootstrap message: attribute %u has length %u, below the 4-byte minimum",
						   attribute.type, attribute.length);
		if (attribute.length > length - offset)
			FAIL("invalid bootstrap message: attribute %u of length %u runs past the end of the %zu-byte message",
						   attribute.type, attribute.length, length);

		const uint8_t *payload = message + offset + sizeof(attribute);
		size_t payload_length = attribute.length - sizeof(attribute);

		if (attribute.type >= NSEXEC_CLONE_FLAGS_ATTR && attribute.type <= NSEXEC_TIMENSOFFSET_ATTR) {
			uint32_t bit = 1u << (attribute.type - NSEXEC_CLONE_FLAGS_ATTR);
			if (seen & bit)
				FAIL("invalid bootstrap message: attribute %u appears twice",
							   attribute.type);
			seen |= bit;
		}

		switch (attribute.type) {
		case NSEXEC_CLONE_FLAGS_ATTR: {
			if (expect_payload_size(attribute.type, payload_length, 4, error, error_size) < 0)
				goto fail;
			memcpy(&config->clone_flags, payload, 4);
			uint32_t unknown = config->clone_flags & ~nsexec_namespace_all_flags();
			if (unknown != 0)
				FAIL("invalid bootstrap message: clone flags 0x%x are not namespace flags",
							   unknown);
			break;
		}
		case NSEXEC_NS_PATHS_ATTR:
			if (parse_namespace_paths(payload, payload_length, config, &cursor, end, error, error_size) < 0)
				goto fail;
			break;
		case NSEXEC_UIDMAP_ATTR:
			config->uid_map = (const char *)payload;
			config->uid_map_length = text_length(payload, payload_length);
			break;
		case NSEXEC_GIDMAP_ATTR:
			config->gid_map = (const char *)payload;
			config->gid_map_length = text_length(payload, payload_length);
			break;
		case NSEXEC_SETGROUP_ATTR:
			if (expect_payload_size(attribute.type, payload_length, 1, error, error_size) < 0)
				goto fail;
			config->setgroups_allowed = payload[0] != 0;
			break;
		case NSEXEC_OOM_SCORE_ADJ_ATTR:
			config->oom_score_adj = (const char *)payload;
			config->oom_score_adj_length = text_length(payload, payload_length);
			break;
		case NSEXEC_ROOTLESS_EUID_ATTR:
			if (expect_payload_size(attribute.type, payload_length, 1, error, error_size) < 0)
				goto fail;
			config->rootless_euid = payload[0] != 0;
			break;
		case NSEXEC_UIDMAPPATH_ATTR:
		case NSEXEC_GIDMAPPATH_ATTR: {
			size_t text = text_length(payload, payload_length);
			if (text == 0 || memchr(payload, '\0', text) != NULL)
				FAIL("invalid bootstrap message: attribute %u is not a valid path",
							   attribute.type);
			char *path = store(&cursor, end, payload, text);
			if (path == NULL)
				FAIL("invalid bootstrap message: path too long");
			if (attribute.type == NSEXEC_UIDMAPPATH_ATTR)
				config->uid_map_path = path;
			else
				config->gid_map_path = path;
			break;
		}
		case NSEXEC_TIMENSOFFSET_ATTR:
			config->timens_offsets = (const char *)payload;
			config->timens_offsets_length = text_length(payload, payload_length);
			break;
		default:
			FAIL("invalid bootstrap message: unknown attribute type %u",
						   attribute.type);
		}

		offset += ALIGN4((size_t)attribute.length);
	}
	return 0;

fail:
	nsexec_config_free(config);
	errno = EINVAL;
	return -1;
}

void nsexec_config_free(struct nsexec_config *config)
{
	free(config->paths_storage);
	config->paths_storage = NULL;
}

uint8_t *nsexec_read_bootstrap(int fd, size_t *length, char *error, size_t error_size)
{
	struct message_header header;
	ssize_t count;
	size_t have = 0;

	/* A zero-byte read before the header is "no data", not a short header. */
	while (have < sizeof(header)) {
		count = read(fd, (char *)&header + have, sizeof(header) - have);
		if (count < 0 && errno == EINTR)
			continue;
		if (count < 0) {
			snprintf(error, error_size, "cannot read the bootstrap message from the init pipe: %s",
				 strerror(errno));
			return NULL;
		}
		if (count == 0)
			break;
		have += (size_t)count;
	}

	if (have < sizeof(header)) {
		struct nsexec_config unused;
		(void)nsexec_parse_bootstrap((const uint8_t *)&header, have, &unused, error, error_size);
		return NULL;
	}
	if (header.length > NSEXEC_BOOTSTRAP_MAX) {
		snprintf(error, error_size, "invalid bootstrap message: stated length %u exceeds the %u-byte limit",
			 header.length, NSEXEC_BOOTSTRAP_MAX);
		return NULL;
	}
	if (header.length < sizeof(header)) {
		snprintf(error, error_size, "invalid bootstrap message: stated length %u is shorter than the header",
			 header.length);
		return NULL;
	}

	uint8_t *message = malloc(header.length);
	if (message == NULL) {
		snprintf(error, error_size, "cannot allocate %u bytes for the bootstrap message", header.length);
		return NULL;
	}
	memcpy(message, &header, sizeof(header));
	if (nsexec_read_all(fd, message + sizeof(header), header.length - sizeof(header)) < 0) {
		snprintf(error, error_size, "invalid bootstrap message: the init pipe closed before the stated %u bytes",
			 header.length);
		free(message);
		return NULL;
	}

	*length = header.length;
	return message;
}
