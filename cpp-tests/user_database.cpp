/*
 * User and group lookup in a container's /etc/passwd and /etc/group (users.c),
 * on a throwaway root directory. users.c reads the files in 4 KiB chunks. The
 * cases cover a line that crosses a chunk, a line too long for the line
 * buffer, comments and a last line with no newline.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "../Sources/CNSExec/users.h"
}

namespace {

/* A temporary root with an etc directory, removed with its files at the end. */
class FakeRoot {
public:
	FakeRoot()
	{
		char pattern[] = "/tmp/nsexec-users-XXXXXX";
		char *directory = mkdtemp(pattern);
		if (directory != nullptr) {
			path_ = directory;
			(void)mkdir((path_ + "/etc").c_str(), 0755);
			fd_ = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
	}

	~FakeRoot()
	{
		if (fd_ >= 0)
			(void)close(fd_);
		(void)unlink((path_ + "/etc/passwd").c_str());
		(void)unlink((path_ + "/etc/group").c_str());
		(void)rmdir((path_ + "/etc").c_str());
		(void)rmdir(path_.c_str());
	}

	void write(const char *name, const std::string &text)
	{
		std::string file = path_ + "/etc/" + name;
		int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		ASSERT_GE(fd, 0);
		ASSERT_EQ(::write(fd, text.data(), text.size()), (ssize_t)text.size());
		(void)close(fd);
	}

	int fd() const { return fd_; }

private:
	std::string path_;
	int fd_ = -1;
};

/* Returns the errno of a user lookup that fails, or 0 when the lookup succeeds. */
int user_lookup_errno(int root_fd, const char *name)
{
	struct nsexec_user user;
	errno = 0;
	return nsexec_lookup_user(root_fd, name, &user) == -1 ? errno : 0;
}

} // namespace

TEST(users, parse_id_takes_digits_only)
{
	uint32_t id = 7;
	EXPECT_TRUE(nsexec_parse_id("0", &id));
	EXPECT_EQ(id, 0u);
	EXPECT_TRUE(nsexec_parse_id("4294967294", &id));
	EXPECT_EQ(id, 4294967294u);
	EXPECT_FALSE(nsexec_parse_id("4294967295", &id));
	EXPECT_FALSE(nsexec_parse_id("99999999999999999999", &id));
	EXPECT_FALSE(nsexec_parse_id("", &id));
	EXPECT_FALSE(nsexec_parse_id("-1", &id));
	EXPECT_FALSE(nsexec_parse_id("+1", &id));
	EXPECT_FALSE(nsexec_parse_id(" 1", &id));
	EXPECT_FALSE(nsexec_parse_id("1x", &id));
	EXPECT_FALSE(nsexec_parse_id(nullptr, &id));
}

TEST(users, finds_user_by_name_and_uid)
{
	FakeRoot root;
	ASSERT_GE(root.fd(), 0);
	root.write("passwd", "# comment\n\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh");

	struct nsexec_user user;
	ASSERT_EQ(nsexec_lookup_user(root.fd(), "app", &user), 0);
	EXPECT_TRUE(user.has_entry);
	EXPECT_EQ(user.uid, 1000u);
	EXPECT_EQ(user.gid, 1001u);
	EXPECT_STREQ(user.home, "/home/app");

	ASSERT_EQ(nsexec_lookup_user(root.fd(), "0", &user), 0);
	EXPECT_TRUE(user.has_entry);
	EXPECT_STREQ(user.home, "/root");
}

/* An unknown name fails with ENOENT, and an unknown uid is still a valid uid. */
TEST(users, unknown_user_lookups)
{
	FakeRoot root;
	ASSERT_GE(root.fd(), 0);
	root.write("passwd", "root:x:0:0:root:/root:/bin/sh\n");

	EXPECT_EQ(user_lookup_errno(root.fd(), "nobody-here"), ENOENT);

	struct nsexec_user user;
	ASSERT_EQ(nsexec_lookup_user(root.fd(), "4242", &user), 0);
	EXPECT_FALSE(user.has_entry);
	EXPECT_EQ(user.uid, 4242u);
}

TEST(users, chunk_boundary_and_long_lines)
{
	FakeRoot root;
	ASSERT_GE(root.fd(), 0);
	std::string text;
	/* Filler entries push the wanted line across the 4096-byte read boundary. */
	for (int i = 0; text.size() < 4080; i++)
		text += "filler" + std::to_string(i) + ":x:" + std::to_string(2000 + i) + ":0::/:/bin/sh\n";
	/* A line longer than the 1024-byte line buffer. Its tail after 1023 bytes looks like an entry, which a reader that splits long lines would find. */
	text += std::string(1023, 'a') + "ghost:x:7:7::/ghost:/bin/sh\n";
	text += "wanted:x:3000:3000:Wanted:/home/wanted:/bin/sh\n";
	root.write("passwd", text);

	struct nsexec_user user;
	ASSERT_EQ(nsexec_lookup_user(root.fd(), "wanted", &user), 0);
	EXPECT_EQ(user.uid, 3000u);
	EXPECT_STREQ(user.home, "/home/wanted");

	EXPECT_EQ(user_lookup_errno(root.fd(), "ghost"), ENOENT);
}

TEST(users, finds_group_by_name)
{
	FakeRoot root;
	ASSERT_GE(root.fd(), 0);
	root.write("group", "root:x:0:\nstaff:x:50:app,other\n");

	uint32_t gid = 0;
	ASSERT_EQ(nsexec_lookup_group(root.fd(), "staff", &gid), 0);
	EXPECT_EQ(gid, 50u);
	ASSERT_EQ(nsexec_lookup_group(root.fd(), "77", &gid), 0);
	EXPECT_EQ(gid, 77u);
	errno = 0;
	EXPECT_EQ(nsexec_lookup_group(root.fd(), "wheel", &gid), -1);
	EXPECT_EQ(errno, ENOENT);
}

TEST(users, missing_file_reports_errno)
{
	FakeRoot root;
	ASSERT_GE(root.fd(), 0);

	EXPECT_EQ(user_lookup_errno(root.fd(), "app"), ENOENT);
}
