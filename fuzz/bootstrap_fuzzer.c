/*
 * libFuzzer harness for nsexec_parse_bootstrap. Besides the sanitizers'
 * checks, it aborts when a parse breaks the parser's contract. An accepted
 * message must yield a config whose pointers stay inside the message or the
 * parser's own storage. A rejected one must yield one non-empty error line
 * and no storage.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsexec.h"

/* Aborts with the failed condition, so that libFuzzer saves the input. */
#define CHECK(condition)                                                           \
	do {                                                                       \
		if (!(condition)) {                                                \
			fprintf(stderr, "contract violated: %s (%s:%d)\n", #condition, \
				__FILE__, __LINE__);                               \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* Checks that [text, text + length) lies inside [start, start + size). */
static void check_inside(const char *text, size_t length, const uint8_t *start, size_t size)
{
	if (text == NULL) {
		CHECK(length == 0);
		return;
	}
	const uint8_t *bytes = (const uint8_t *)text;
	CHECK(bytes >= start);
	CHECK((size_t)(bytes - start) <= size);
	CHECK(length <= size - (size_t)(bytes - start));
}

static void check_accepted(const struct nsexec_config *config, const uint8_t *data, size_t size)
{
	/* The parser copies paths into one arena of this size; a change there must change this too. */
	size_t storage_size = size + 4 * NSEXEC_NAMESPACE_COUNT;
	const uint8_t *storage = (const uint8_t *)config->paths_storage;

	CHECK(size >= 16);
	CHECK(size <= NSEXEC_BOOTSTRAP_MAX);
	CHECK((config->clone_flags & ~nsexec_namespace_all_flags()) == 0);
	CHECK(config->pidfd == -1);
	CHECK(config->join_count <= NSEXEC_NAMESPACE_COUNT);

	uint32_t seen = 0;
	for (size_t i = 0; i < config->join_count; i++) {
		const struct nsexec_join *join = &config->joins[i];
		CHECK(nsexec_namespace_by_flag(join->flag) != NULL);
		CHECK((seen & join->flag) == 0);
		seen |= join->flag;
		CHECK(join->fd == -1);
		CHECK(join->path != NULL);

		size_t length = strnlen(join->path, storage_size);
		CHECK(length > 0);
		check_inside(join->path, length + 1, storage, storage_size);
		CHECK(memchr(join->path, ',', length) == NULL);
	}

	check_inside(config->uid_map, config->uid_map_length, data, size);
	check_inside(config->gid_map, config->gid_map_length, data, size);
	check_inside(config->oom_score_adj, config->oom_score_adj_length, data, size);
	check_inside(config->timens_offsets, config->timens_offsets_length, data, size);

	const char *map_paths[] = { config->uid_map_path, config->gid_map_path };
	for (size_t i = 0; i < 2; i++) {
		if (map_paths[i] == NULL)
			continue;
		size_t length = strnlen(map_paths[i], storage_size);
		CHECK(length > 0);
		check_inside(map_paths[i], length + 1, storage, storage_size);
	}
}

static void check_rejected(const struct nsexec_config *config, const char *error, size_t error_size)
{
	size_t length = strnlen(error, error_size);
	CHECK(length > 0);
	CHECK(length < error_size);
	CHECK(memchr(error, '\n', length) == NULL);
	CHECK(config->paths_storage == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nsexec_config config;
	char error[256];

	/*
	 * A private copy of exactly size bytes, so that AddressSanitizer reports
	 * any read past the end of the message.
	 */
	uint8_t *message = malloc(size > 0 ? size : 1);
	if (message == NULL)
		return 0;
	if (size > 0)
		memcpy(message, data, size);

	memset(error, 0, sizeof(error));
	if (nsexec_parse_bootstrap(message, size, &config, error, sizeof(error)) == 0) {
		check_accepted(&config, message, size);
		nsexec_config_free(&config);
		CHECK(config.paths_storage == NULL);
	} else {
		check_rejected(&config, error, sizeof(error));
	}

	free(message);
	return 0;
}
