/* Conformance tests of the namespace table in namespaces.c. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "nsexec.h"

namespace {

/* The CLONE_NEW* value of each namespace type, from <linux/sched.h> (CLONE_NEWTIME since Linux 5.6). */
struct KnownNamespace {
	const char *name;
	uint32_t flag;
};

constexpr KnownNamespace known_namespaces[] = {
	{ "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "mnt", CLONE_NEWNS },	 { "net", CLONE_NEWNET },
	{ "pid", CLONE_NEWPID },       { "time", 0x00000080 },	{ "user", CLONE_NEWUSER }, { "uts", CLONE_NEWUTS },
};

} // namespace

TEST(namespace_table, lists_eight_types)
{
	std::set<std::string> names;
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		const struct nsexec_namespace *entry = nsexec_namespace_at(i);
		ASSERT_NE(entry, nullptr) << "index " << i;
		ASSERT_NE(entry->name, nullptr) << "index " << i;
		names.insert(entry->name);
	}

	EXPECT_EQ(NSEXEC_NAMESPACE_COUNT, 8u);
	EXPECT_EQ(names, (std::set<std::string>{ "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts" }));
	EXPECT_EQ(nsexec_namespace_at(NSEXEC_NAMESPACE_COUNT), nullptr);
}

TEST(namespace_table, flags_are_clone_constants)
{
	for (const KnownNamespace &known : known_namespaces) {
		const struct nsexec_namespace *entry = nsexec_namespace_by_name(known.name, strlen(known.name));
		ASSERT_NE(entry, nullptr) << known.name;
		EXPECT_EQ(entry->flag, known.flag) << known.name;
	}
}

TEST(namespace_table, finds_entry_by_name)
{
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		const struct nsexec_namespace *entry = nsexec_namespace_at(i);
		EXPECT_EQ(nsexec_namespace_by_name(entry->name, strlen(entry->name)), entry) << entry->name;
	}

	/* The length bounds the name, so a name inside a longer buffer is found. */
	EXPECT_EQ(nsexec_namespace_by_name("net:/proc/1/ns/net", 3), nsexec_namespace_by_flag(CLONE_NEWNET));

	EXPECT_EQ(nsexec_namespace_by_name("ne", 2), nullptr);
	EXPECT_EQ(nsexec_namespace_by_name("netx", 4), nullptr);
	EXPECT_EQ(nsexec_namespace_by_name("NET", 3), nullptr);
	EXPECT_EQ(nsexec_namespace_by_name("mount", 5), nullptr);
	EXPECT_EQ(nsexec_namespace_by_name("", 0), nullptr);
}

TEST(namespace_table, finds_entry_by_flag)
{
	for (const KnownNamespace &known : known_namespaces) {
		const struct nsexec_namespace *entry = nsexec_namespace_by_flag(known.flag);
		ASSERT_NE(entry, nullptr) << known.name;
		EXPECT_STREQ(entry->name, known.name);
	}

	EXPECT_EQ(nsexec_namespace_by_flag(0), nullptr);
	EXPECT_EQ(nsexec_namespace_by_flag(CLONE_NEWNET | CLONE_NEWUTS), nullptr);
	EXPECT_EQ(nsexec_namespace_by_flag(CLONE_VM), nullptr);
}

TEST(namespace_table, all_flags_is_union)
{
	uint32_t expected = 0;
	for (const KnownNamespace &known : known_namespaces)
		expected |= known.flag;

	EXPECT_EQ(nsexec_namespace_all_flags(), expected);
}

TEST(namespace_table, proc_files_have_table_types)
{
	for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++) {
		const struct nsexec_namespace *entry = nsexec_namespace_at(i);
		std::string path = std::string("/proc/self/ns/") + entry->name;

		int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
		ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
		EXPECT_EQ(nsexec_namespace_file_type(fd), entry->flag) << path;
		close(fd);
	}
}

TEST(namespace_table, rejects_non_namespace_file)
{
	for (const char *path : { "/dev/null", "/proc/self/status" }) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_GE(fd, 0) << path << ": " << strerror(errno);

		errno = 0;
		EXPECT_EQ(nsexec_namespace_file_type(fd), 0u) << path;
		EXPECT_EQ(errno, EINVAL) << path;
		close(fd);
	}
}
