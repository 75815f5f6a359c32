/*
 * The C core's code paths that return to their caller: the bootstrap parser,
 * the init pipe reader, and the fork path's stages (nsexec_run_stages_inline),
 * on success and on failure. They run in this process, so that LeakSanitizer
 * checks them when the test program exits. In an
 * ordinary build these tests check only the results; scripts/test also runs
 * them in a -DNSEXEC_SANITIZE=ON tree, where a leak or undefined behaviour
 * fails the test program.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bootstrap_support.h"

using namespace bootstrap_test;

namespace {

/* How many times each path runs, so that a leak per call would stand out. */
constexpr int rounds = 50;

/* Sends bytes into a new socketpair, closes the sending end, and reads one bootstrap message. */
std::string read_message(const std::vector<uint8_t> &bytes, size_t *length)
{
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return "socketpair failed";
	if (!bytes.empty() && write(pair[1], bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
		close(pair[0]);
		close(pair[1]);
		return "write failed";
	}
	close(pair[1]);

	char error[512] = "";
	uint8_t *message = nsexec_read_bootstrap(pair[0], length, error, sizeof(error));
	close(pair[0]);
	if (message == nullptr)
		return error;
	free(message);
	return "";
}

/* Reaps pid if it is a child; returns its wait status, or -1. */
int reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return status;
}

/*
 * Runs the fork path's stages with this process as stage 0, joining the UTS
 * namespace file at uts_path; stage 2 exits 0 at once instead of running a
 * program. Returns what nsexec_run_stages_inline returned in this process,
 * after reaping the stages and reading their records.
 */
int run_inline(const char *uts_path, std::string *error_text)
{
	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return -2;
	struct nsexec_config config;
	nsexec_config_init(&config);
	if (nsexec_config_add_join(&config, CLONE_NEWUTS, -1, uts_path) < 0)
		return -2;

	struct nsexec_stage_pids pids = { 0, 0, false };
	char error[1024] = "";
	int stage = nsexec_run_stages_inline(&config, report[1], &pids, error, sizeof(error));
	if (stage == STAGE_INIT)
		_exit(0);
	close(report[1]);

	/* Stage errors arrive as records; EOF comes once every stage has exited or exec'd. */
	char records[4096];
	while (read(report[0], records, sizeof(records)) > 0)
		;
	close(report[0]);

	/* A failed run has reaped its stages already. */
	if (stage == STAGE_PARENT) {
		reap(pids.stage1);
		reap(pids.stage2);
	}
	*error_text = error;
	return stage;
}

} // namespace

TEST(leaks, parser_paths_free_their_storage)
{
	std::vector<uint8_t> valid = NetlinkMessage()
					     .add_text(NSEXEC_NS_PATHS_ATTR, "uts:/proc/self/ns/uts,net:/proc/self/ns/net")
					     .add_text(NSEXEC_UIDMAPPATH_ATTR, "/usr/bin/newuidmap")
					     .add_text(NSEXEC_GIDMAPPATH_ATTR, "/usr/bin/newgidmap")
					     .encode();
	/* Each fails after the paths storage was allocated. */
	std::vector<std::vector<uint8_t>> invalid = {
		NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "uts:/a,uts:/b").encode(),
		NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "uts:/a").add_text(NSEXEC_NS_PATHS_ATTR, "net:/b").encode(),
		NetlinkMessage().add_text(NSEXEC_UIDMAPPATH_ATTR, "/a").add(27299, "x", 1).encode(),
		NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "uts:/a").add_u32(NSEXEC_CLONE_FLAGS_ATTR, 0x100).encode(),
	};

	for (int round = 0; round < rounds; round++) {
		struct nsexec_config config;
		char error[512] = "";
		ASSERT_EQ(nsexec_parse_bootstrap(valid.data(), valid.size(), &config, error, sizeof(error)), 0) << error;
		nsexec_config_free(&config);

		for (const std::vector<uint8_t> &message : invalid) {
			ASSERT_EQ(nsexec_parse_bootstrap(message.data(), message.size(), &config, error, sizeof(error)), -1);
			EXPECT_EQ(config.paths_storage, nullptr) << error;
		}
	}
}

TEST(leaks, init_pipe_reader_frees_on_failure)
{
	std::vector<uint8_t> valid = NetlinkMessage().add_text(NSEXEC_OOM_SCORE_ADJ_ATTR, "0").encode();
	std::vector<uint8_t> truncated(valid.begin(), valid.end() - 4);
	std::vector<uint8_t> short_header(valid.begin(), valid.begin() + 10);

	for (int round = 0; round < rounds; round++) {
		size_t length = 0;
		EXPECT_EQ(read_message(valid, &length), "");
		EXPECT_EQ(length, valid.size());
		EXPECT_NE(read_message(truncated, &length), "");
		EXPECT_NE(read_message(short_header, &length), "");
		EXPECT_NE(read_message({}, &length), "");
	}
}

TEST(leaks, inline_stages_return_to_the_caller)
{
	/* nsexec_run_stages_inline makes this process non-dumpable, as a supervisor is. */
	for (int round = 0; round < 10; round++) {
		std::string error;
		EXPECT_EQ(run_inline("/proc/self/ns/uts", &error), STAGE_PARENT) << error;
		EXPECT_EQ(run_inline("/nsexec-missing", &error), -1) << "stage 1 cannot open the file";
		EXPECT_EQ(error, "stage 1 exited before it finished");
		EXPECT_EQ(run_inline("/etc/hostname", &error), -1) << "the file is no namespace file";
		EXPECT_EQ(error, "stage 1 exited before it finished");
	}
}
