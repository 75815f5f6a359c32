/*
 * The text helpers of text.c, which build /proc paths and environment
 * entries on the hot path without snprintf, and the /proc and environment
 * helpers of api.c built on them.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "nsexec.h"

TEST(text, formats_unsigned_numbers)
{
	char out[32];
	EXPECT_EQ(nsexec_format_unsigned(out, sizeof(out), 0), 1);
	EXPECT_STREQ(out, "0");
	EXPECT_EQ(nsexec_format_unsigned(out, sizeof(out), 4194304), 7);
	EXPECT_STREQ(out, "4194304");
	EXPECT_EQ(nsexec_format_unsigned(out, sizeof(out), ULONG_MAX), 20);
	EXPECT_EQ(std::string(out), std::to_string(ULONG_MAX));
}

TEST(text, unsigned_number_needs_room_for_the_nul)
{
	char out[4];
	EXPECT_EQ(nsexec_format_unsigned(out, sizeof(out), 123), 3);
	EXPECT_STREQ(out, "123");
	errno = 0;
	EXPECT_EQ(nsexec_format_unsigned(out, sizeof(out), 1234), -1);
	EXPECT_EQ(errno, ENAMETOOLONG);
}

TEST(text, concatenates_parts)
{
	char out[16];
	EXPECT_EQ(nsexec_concat(out, sizeof(out), "HOME=", "/root", (const char *)NULL), 10);
	EXPECT_STREQ(out, "HOME=/root");
	EXPECT_EQ(nsexec_concat(out, sizeof(out), (const char *)NULL), 0);
	EXPECT_STREQ(out, "");
}

TEST(text, concatenation_fails_whole_when_it_does_not_fit)
{
	char out[8];
	EXPECT_EQ(nsexec_concat(out, sizeof(out), "1234", "567", (const char *)NULL), 7);
	EXPECT_STREQ(out, "1234567");
	errno = 0;
	EXPECT_EQ(nsexec_concat(out, sizeof(out), "1234", "5678", (const char *)NULL), -1);
	EXPECT_EQ(errno, ENAMETOOLONG);
	errno = 0;
	EXPECT_EQ(nsexec_concat(out, 0, (const char *)NULL), -1);
	EXPECT_EQ(errno, ENAMETOOLONG);
}

TEST(text, builds_proc_paths)
{
	char out[64];
	EXPECT_EQ(nsexec_proc_path(out, sizeof(out), 4242, "root"), 15);
	EXPECT_STREQ(out, "/proc/4242/root");
	errno = 0;
	EXPECT_EQ(nsexec_proc_path(out, sizeof(out), 0, "root"), -1);
	EXPECT_EQ(errno, EINVAL);
	errno = 0;
	EXPECT_EQ(nsexec_proc_path(out, 12, 4242, "root"), -1);
	EXPECT_EQ(errno, ENAMETOOLONG);
}

TEST(text, reads_a_proc_link_of_a_process)
{
	char cwd[PATH_MAX];
	ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
	char buffer[PATH_MAX];
	ssize_t length = nsexec_read_proc_link(getpid(), "cwd", buffer, sizeof(buffer));
	ASSERT_GE(length, 0) << strerror(errno);
	EXPECT_EQ(std::string(buffer, static_cast<size_t>(length)), cwd);

	/* A buffer the link fills exactly cannot tell a whole link from a cut one. */
	errno = 0;
	EXPECT_EQ(nsexec_read_proc_link(getpid(), "cwd", buffer, static_cast<size_t>(length)), -1);
	EXPECT_EQ(errno, ENAMETOOLONG);
	errno = 0;
	EXPECT_EQ(nsexec_read_proc_link(getpid(), "no-such-link", buffer, sizeof(buffer)), -1);
	EXPECT_EQ(errno, ENOENT);
}

TEST(text, finds_whole_environment_entries)
{
	ASSERT_EQ(setenv("NSEXEC_TEXT_TEST", "a=b", 1), 0);
	const char *entry = nsexec_environment_entry("NSEXEC_TEXT_TEST");
	ASSERT_NE(entry, nullptr);
	EXPECT_STREQ(entry, "NSEXEC_TEXT_TEST=a=b");
	/* A prefix of a name is not the name. */
	EXPECT_EQ(nsexec_environment_entry("NSEXEC_TEXT"), nullptr);
	unsetenv("NSEXEC_TEXT_TEST");
	EXPECT_EQ(nsexec_environment_entry("NSEXEC_TEXT_TEST"), nullptr);
}
