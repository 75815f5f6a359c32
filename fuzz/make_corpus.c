/*
 * Writes the fuzzer's seed corpus: valid bootstrap messages that together
 * use every attribute, with and without trailing NULs on text payloads.
 * Usage: make_corpus DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsexec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* A message being built: header first, attributes appended, padded to 4 bytes. */
struct builder {
	uint8_t bytes[8192];
	size_t length;
};

static void start(struct builder *builder)
{
	memset(builder, 0, sizeof(*builder));
	builder->length = 16;
}

static void add(struct builder *builder, uint16_t type, const void *payload, size_t size)
{
	uint16_t length = (uint16_t)(4 + size);
	size_t padded = (4 + size + 3) & ~(size_t)3;
	if (builder->length + padded > sizeof(builder->bytes)) {
		fprintf(stderr, "make_corpus: seed message exceeds the %zu-byte buffer\n", sizeof(builder->bytes));
		exit(1);
	}
	memcpy(builder->bytes + builder->length, &length, 2);
	memcpy(builder->bytes + builder->length + 2, &type, 2);
	memcpy(builder->bytes + builder->length + 4, payload, size);
	builder->length += padded;
}

static void add_text(struct builder *builder, uint16_t type, const char *text, int with_nul)
{
	add(builder, type, text, strlen(text) + (with_nul ? 1 : 0));
}

static void add_u32(struct builder *builder, uint16_t type, uint32_t value)
{
	add(builder, type, &value, sizeof(value));
}

static void add_u8(struct builder *builder, uint16_t type, uint8_t value)
{
	add(builder, type, &value, sizeof(value));
}

/* Fills in the header, checks that the parser accepts the seed, and writes it. */
static void finish(struct builder *builder, const char *directory, const char *name)
{
	uint32_t total = (uint32_t)builder->length;
	uint16_t type = NSEXEC_INIT_MSG;
	memcpy(builder->bytes, &total, 4);
	memcpy(builder->bytes + 4, &type, 2);

	struct nsexec_config config;
	char error[256];
	if (nsexec_parse_bootstrap(builder->bytes, builder->length, &config, error, sizeof(error)) < 0) {
		fprintf(stderr, "make_corpus: seed %s is rejected: %s\n", name, error);
		exit(1);
	}
	nsexec_config_free(&config);

	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", directory, name);
	FILE *file = fopen(path, "wb");
	if (file == NULL || fwrite(builder->bytes, 1, builder->length, file) != builder->length || fclose(file) != 0) {
		fprintf(stderr, "make_corpus: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct builder b;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	const char *dir = argv[1];

	start(&b);
	finish(&b, dir, "header-only");

	start(&b);
	add_u32(&b, NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWNET);
	finish(&b, dir, "unshare-net");

	start(&b);
	add_u32(&b, NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWNET);
	add_text(&b, NSEXEC_NS_PATHS_ATTR, "pid:/proc/self/ns/pid", 0);
	finish(&b, dir, "join-pid-unshare-net");

	start(&b);
	add_text(&b, NSEXEC_NS_PATHS_ATTR,
		 "cgroup:/proc/42/ns/cgroup,ipc:/proc/42/ns/ipc,net:/proc/42/ns/net,pid:/proc/42/ns/pid,"
		 "time:/proc/42/ns/time,uts:/proc/42/ns/uts,mnt:/proc/42/ns/mnt,user:/proc/42/ns/user",
		 1);
	finish(&b, dir, "join-all-with-nul");

	start(&b);
	add_text(&b, NSEXEC_NS_PATHS_ATTR, "net:/run/netns/test,uts:/proc/self/fd/7", 0);
	finish(&b, dir, "join-files");

	start(&b);
	add_u32(&b, NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWUSER | CLONE_NEWNS);
	add_text(&b, NSEXEC_UIDMAP_ATTR, "0 1000 1\n", 0);
	add_text(&b, NSEXEC_GIDMAP_ATTR, "0 1000 1\n", 0);
	add_u8(&b, NSEXEC_SETGROUP_ATTR, 0);
	add_u8(&b, NSEXEC_ROOTLESS_EUID_ATTR, 1);
	add_text(&b, NSEXEC_UIDMAPPATH_ATTR, "/usr/bin/newuidmap", 0);
	add_text(&b, NSEXEC_GIDMAPPATH_ATTR, "/usr/bin/newgidmap", 1);
	finish(&b, dir, "rootless-user");

	start(&b);
	add_u32(&b, NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWUSER);
	add_text(&b, NSEXEC_UIDMAP_ATTR, "0 100000 65536\n65536 0 1\n", 1);
	add_text(&b, NSEXEC_GIDMAP_ATTR, "0 100000 65536\n", 1);
	add_u8(&b, NSEXEC_SETGROUP_ATTR, 1);
	finish(&b, dir, "user-ranges");

	start(&b);
	add_text(&b, NSEXEC_OOM_SCORE_ADJ_ATTR, "-500", 0);
	finish(&b, dir, "oom-score-adj");

	start(&b);
	add_u32(&b, NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWTIME | CLONE_NEWPID);
	add_text(&b, NSEXEC_TIMENSOFFSET_ATTR, "monotonic 1000 0\nboottime 1000 0\n", 0);
	finish(&b, dir, "time-offsets");

	start(&b);
	add_u32(&b, NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWTIME | CLONE_NEWUTS);
	add_text(&b, NSEXEC_NS_PATHS_ATTR, "pid:/proc/1234/ns/pid,ipc:/proc/1234/ns/ipc,mnt:/proc/1234/ns/mnt", 0);
	add_text(&b, NSEXEC_UIDMAP_ATTR, "0 0 1", 1);
	add_text(&b, NSEXEC_GIDMAP_ATTR, "0 0 1", 1);
	add_u8(&b, NSEXEC_SETGROUP_ATTR, 1);
	add_text(&b, NSEXEC_OOM_SCORE_ADJ_ATTR, "100\n", 1);
	add_u8(&b, NSEXEC_ROOTLESS_EUID_ATTR, 0);
	add_text(&b, NSEXEC_UIDMAPPATH_ATTR, "/bin/newuidmap", 0);
	add_text(&b, NSEXEC_GIDMAPPATH_ATTR, "/bin/newgidmap", 0);
	add_text(&b, NSEXEC_TIMENSOFFSET_ATTR, "boottime -20 500\n", 1);
	finish(&b, dir, "every-attribute");

	return 0;
}
