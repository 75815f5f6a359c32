/*
 * Malformed bootstrap messages. Each one must be rejected both by
 * nsexec_parse_bootstrap and by the nsexec binary reading it from its init
 * pipe: one error record, exit status 125, no pid line, no stage 1 started
 * (so no namespace joined) and no process left behind.
 */
#include <sched.h>

#include <string>
#include <vector>

#include "bootstrap_support.h"

using namespace bootstrap_test;

namespace {

/* Checks the parser's rejection of message: -1, EINVAL, an error containing detail, no storage left. */
void expect_parser_rejects(const std::vector<uint8_t> &message, const std::string &detail)
{
	struct nsexec_config config;
	char error[512] = "";

	errno = 0;
	int result = nsexec_parse_bootstrap(message.data(), message.size(), &config, error, sizeof(error));
	int parse_errno = errno;

	EXPECT_EQ(result, -1);
	EXPECT_EQ(parse_errno, EINVAL);
	EXPECT_NE(std::string(error).find(detail), std::string::npos) << "parser error: " << error;
	EXPECT_EQ(std::string(error).find('\n'), std::string::npos) << "parser error: " << error;
	EXPECT_EQ(config.paths_storage, nullptr);
	if (result == 0)
		nsexec_config_free(&config);
}

/* Checks that the nsexec binary rejects message with one error record containing detail. */
void expect_helper_rejects(const std::vector<uint8_t> &message, const std::string &detail)
{
	RunOptions run;
	run.bootstrap = message;
	run.end_after_bootstrap = true;
	Outcome outcome = run_nsexec(run);

	EXPECT_TRUE(exited_with(outcome.helper_status, NSEXEC_EXIT_FAILURE)) << "wait status " << outcome.helper_status;
	EXPECT_FALSE(outcome.reported_pids);
	EXPECT_TRUE(outcome.other_records.empty()) << "first other record: " << outcome.other_records[0];
	ASSERT_EQ(outcome.errors.size(), 1u);
	EXPECT_NE(outcome.errors[0].error.find(detail), std::string::npos) << "error record: " << outcome.errors[0].error;
	EXPECT_EQ(outcome.errors[0].status, NSEXEC_EXIT_FAILURE);
	EXPECT_EQ(outcome.errors[0].pids[0], 0) << "stage 0 had started a stage";
	EXPECT_EQ(outcome.errors[0].pids[1], 0) << "stage 0 had started a stage";

	/* At debug level every step is logged: nothing may come from a later stage or report a join. */
	size_t error_lines = 0;
	for (const std::string &line : split_lines(outcome.log)) {
		LogLine entry;
		ASSERT_TRUE(parse_log_line(line, entry)) << "log line is not {\"level\",\"msg\"} JSON: " << line;
		EXPECT_EQ(entry.msg.find("stage-1"), std::string::npos) << entry.msg;
		EXPECT_EQ(entry.msg.find("stage-2"), std::string::npos) << entry.msg;
		EXPECT_EQ(entry.msg.find("joined"), std::string::npos) << entry.msg;
		if (entry.level == "error")
			error_lines++;
	}
	EXPECT_EQ(error_lines, 1u) << "log: " << outcome.log;

	EXPECT_TRUE(outcome.leftovers.empty()) << "first process left: " << outcome.leftovers[0];
}

void expect_rejected(const std::vector<uint8_t> &message, const std::string &detail)
{
	expect_parser_rejects(message, detail);
	expect_helper_rejects(message, detail);
}

/* A message with one raw attribute whose length field is attribute_length, and size bytes after the header. */
std::vector<uint8_t> message_with_raw_attribute(uint16_t attribute_length, uint16_t attribute_type, size_t size)
{
	std::vector<uint8_t> bytes = header_bytes(static_cast<uint32_t>(16 + size), NSEXEC_INIT_MSG);
	bytes.resize(16 + size, 0);
	memcpy(bytes.data() + 16, &attribute_length, 2);
	memcpy(bytes.data() + 18, &attribute_type, 2);
	return bytes;
}

} // namespace

TEST(bootstrap, rejects_empty_input)
{
	expect_rejected({}, "the init pipe sent no data");
}

TEST(bootstrap, rejects_short_header)
{
	std::vector<uint8_t> header = header_bytes(16, NSEXEC_INIT_MSG);
	header.resize(8);
	expect_rejected(header, "8 bytes is shorter than the 16-byte header");
}

TEST(bootstrap, rejects_wrong_message_type)
{
	expect_rejected(header_bytes(16, NSEXEC_PROCESS_MSG), "type 62001, expected 62000");
}

TEST(bootstrap, rejects_length_below_header)
{
	expect_rejected(header_bytes(8, NSEXEC_INIT_MSG), "stated length 8 is shorter than the header");
}

TEST(bootstrap, rejects_truncated_message)
{
	/* The header states 64 bytes; only 24 arrive before end of file. */
	std::vector<uint8_t> message = NetlinkMessage().add_u32(NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWNET).encode();
	uint32_t stated = 64;
	memcpy(message.data(), &stated, 4);

	expect_parser_rejects(message, "stated length 64 differs from the 24 bytes received");
	expect_helper_rejects(message, "closed before the stated 64 bytes");
}

TEST(bootstrap, rejects_attribute_past_end)
{
	expect_rejected(message_with_raw_attribute(40, NSEXEC_NS_PATHS_ATTR, 8),
			"attribute 27282 of length 40 runs past the end of the 24-byte message");
}

TEST(bootstrap, rejects_attribute_length_below_4)
{
	expect_rejected(message_with_raw_attribute(2, NSEXEC_CLONE_FLAGS_ATTR, 8),
			"attribute 27281 has length 2, below the 4-byte minimum");
}

TEST(bootstrap, rejects_unknown_attribute)
{
	expect_rejected(NetlinkMessage().add_u32(27299, 1).encode(), "unknown attribute type 27299");
}

TEST(bootstrap, rejects_empty_namespace_paths)
{
	expect_rejected(NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "").encode(), "namespace paths are empty");
}

TEST(bootstrap, rejects_path_without_colon)
{
	expect_rejected(NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "/proc/self/ns/net").encode(),
			"namespace path entry '/proc/self/ns/net' has no ':'");
}

TEST(bootstrap, rejects_unknown_namespace_type)
{
	expect_rejected(NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "foo:/proc/self/ns/net").encode(),
			"unknown namespace type 'foo'");
}

TEST(bootstrap, rejects_message_over_1mib)
{
	/* A well-formed message with one attribute padding it to 1 MiB + 16 bytes. */
	std::vector<uint8_t> message = header_bytes(NSEXEC_BOOTSTRAP_MAX + 16, NSEXEC_INIT_MSG);
	message.resize(NSEXEC_BOOTSTRAP_MAX + 16, 0);

	expect_parser_rejects(message, "exceeds the 1048576-byte limit");
	expect_helper_rejects(message, "exceeds the 1048576-byte limit");
}

TEST(bootstrap, rejects_duplicate_namespace)
{
	expect_rejected(NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "net:/run/netns/a,net:/run/netns/b").encode(),
			"net namespace is listed twice");
}

TEST(bootstrap, rejects_non_namespace_clone_flags)
{
	expect_rejected(NetlinkMessage().add_u32(NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWNET | CLONE_VM).encode(),
			"clone flags 0x100 are not namespace flags");
}

TEST(bootstrap, error_escapes_control_bytes)
{
	/*
	 * Found by the fuzzer: an entry containing a newline was copied into the
	 * error as is, so the error was no longer one line.
	 */
	expect_rejected(NetlinkMessage().add_text(NSEXEC_NS_PATHS_ATTR, "0 1000 1\n").encode(),
			"namespace path entry '0 1000 1\\x0a' has no ':'");
}
