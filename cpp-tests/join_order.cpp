/*
 * Conformance tests of nsexec_open_namespace_files and nsexec_join_namespaces
 * (join.c), against real namespaces that forked targets create with
 * unshare(2). Each join runs in a forked child, because joining changes the
 * caller for good.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "conformance_support.h"
#include "nsexec.h"

using namespace conformance;

namespace {

constexpr uid_t keep_uid = static_cast<uid_t>(-1);

/* Result of a join in a forked child. */
struct JoinOutcome {
	/* 0 after a successful join, else the status nsexec_fail exited with. */
	int status = -1;
	/* The "error" text of nsexec_fail's record on the report fd, or "". */
	std::string error;
	/* Namespace inodes of the child after the join, by name. */
	std::map<std::string, uint64_t> namespaces;
	/* Config fds still open after the join. */
	int open_join_fds = -1;
};

struct JoinObservation {
	uint64_t namespaces[NSEXEC_NAMESPACE_COUNT];
	int open_join_fds;
};

/* The "error" string of a record {"error":"...","status":N,...}, unescaped only as far as these tests need. */
std::string record_error(const std::string &record)
{
	const std::string start = "{\"error\":\"";
	size_t end = record.find("\",\"status\":");
	if (record.compare(0, start.size(), start) != 0 || end == std::string::npos)
		return record;
	return record.substr(start.size(), end - start.size());
}

/*
 * Forks a child that switches to uid (unless keep_uid), opens the namespace
 * files of config, joins them and reports where it ended up.
 */
JoinOutcome join_in_child(const struct nsexec_config &config, uid_t uid)
{
	JoinOutcome outcome;
	Shared<JoinObservation> observed;
	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return outcome;

	pid_t child = fork();
	if (child == 0) {
		close(report[0]);
		nsexec_log_setup(-1, NSEXEC_LOG_ERROR, report[1]);
		if (uid != keep_uid && switch_user(uid) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, nullptr, "cannot switch to uid %u", uid);

		struct nsexec_config copy = config;
		nsexec_open_namespace_files(&copy);
		int fds[NSEXEC_NAMESPACE_COUNT];
		for (size_t i = 0; i < copy.join_count; i++)
			fds[i] = copy.joins[i].fd;

		nsexec_join_namespaces(&copy);

		for (size_t i = 0; i < copy.join_count; i++) {
			if (fcntl(fds[i], F_GETFD) >= 0)
				observed->open_join_fds++;
		}
		for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++)
			observed->namespaces[i] = namespace_inode("self", nsexec_namespace_at(i)->name);
		_exit(0);
	}
	close(report[1]);

	if (child > 0) {
		outcome.error = record_error(read_to_end(report[0]));
		outcome.status = reap(child);
		outcome.open_join_fds = observed->open_join_fds;
		for (size_t i = 0; i < NSEXEC_NAMESPACE_COUNT; i++)
			outcome.namespaces[nsexec_namespace_at(i)->name] = observed->namespaces[i];
	}
	close(report[0]);
	return outcome;
}

/* A config that joins the given namespace files in the given order. */
struct nsexec_config config_joining(const std::vector<std::pair<uint32_t, std::string>> &files)
{
	struct nsexec_config config;
	nsexec_config_init(&config);
	for (const auto &file : files) {
		/* The strings live in the caller's vector for as long as config is used. */
		if (nsexec_config_add_join(&config, file.first, -1, file.second.c_str()) < 0)
			ADD_FAILURE() << "config is full";
	}
	return config;
}

/*
 * Joins the namespace files in the given order with plain setns(2) in a
 * child that switched to uid. Returns the errno of the first failing
 * setns, or 0 if all succeeded.
 */
int setns_in_order(const std::vector<std::pair<uint32_t, std::string>> &files, uid_t uid)
{
	Shared<int> first_error;
	int status = run_in_child([&] {
		if (uid != keep_uid && switch_user(uid) < 0)
			_exit(1);
		int fds[NSEXEC_NAMESPACE_COUNT];
		for (size_t i = 0; i < files.size(); i++) {
			fds[i] = open(files[i].second.c_str(), O_RDONLY | O_CLOEXEC);
			if (fds[i] < 0)
				_exit(1);
		}
		for (size_t i = 0; i < files.size(); i++) {
			if (setns(fds[i], static_cast<int>(files[i].first)) < 0) {
				*first_error = errno;
				_exit(0);
			}
		}
		_exit(0);
	});
	return status == 0 ? *first_error : -1;
}

} // namespace

TEST(join, privileged_joins_user_last)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root, to own both namespaces";

	/* Two unrelated targets: a user namespace, and a UTS namespace of the initial user namespace. */
	Target user_target(CLONE_NEWUSER);
	Target uts_target(CLONE_NEWUTS);
	ASSERT_EQ(user_target.error(), 0) << strerror(user_target.error());
	ASSERT_EQ(uts_target.error(), 0) << strerror(uts_target.error());

	/* Listed user first: only joining the user namespace last can succeed. */
	std::vector<std::pair<uint32_t, std::string>> files = {
		{ CLONE_NEWUSER, user_target.ns_path("user") },
		{ CLONE_NEWUTS, uts_target.ns_path("uts") },
	};
	JoinOutcome outcome = join_in_child(config_joining(files), keep_uid);

	EXPECT_EQ(outcome.status, 0) << outcome.error;
	EXPECT_EQ(outcome.namespaces["user"], user_target.inode("user"));
	EXPECT_EQ(outcome.namespaces["uts"], uts_target.inode("uts"));

	/* Control: in the listed order the UTS join fails, because root has no rights left outside the user namespace. */
	EXPECT_EQ(setns_in_order(files, keep_uid), EPERM);
}

TEST(join, unprivileged_joins_user_first)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root, to switch to uid " << unprivileged_uid;

	/* The target's network namespace belongs to a user namespace that the unprivileged uid owns. */
	Target target(CLONE_NEWUSER | CLONE_NEWNET, unprivileged_uid);
	ASSERT_EQ(target.error(), 0) << strerror(target.error());

	/* Listed net first: an unprivileged caller can join it only after the user namespace. */
	std::vector<std::pair<uint32_t, std::string>> files = {
		{ CLONE_NEWNET, target.ns_path("net") },
		{ CLONE_NEWUSER, target.ns_path("user") },
	};
	JoinOutcome outcome = join_in_child(config_joining(files), unprivileged_uid);

	EXPECT_EQ(outcome.status, 0) << outcome.error;
	EXPECT_EQ(outcome.namespaces["net"], target.inode("net"));
	EXPECT_EQ(outcome.namespaces["user"], target.inode("user"));

	/* Control: in the listed order the net join fails for lack of CAP_SYS_ADMIN. */
	EXPECT_EQ(setns_in_order(files, unprivileged_uid), EPERM);
}

TEST(join, pidfd_joins_namespaces)
{
	Target target(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC);
	ASSERT_EQ(target.error(), 0) << strerror(target.error());
	int pidfd = nsexec_pidfd_open(target.pid());
	ASSERT_GE(pidfd, 0) << strerror(errno);

	struct nsexec_config config;
	nsexec_config_init(&config);
	config.pidfd = pidfd;
	config.pidfd_flags = CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC;
	config.target_pid = target.pid();
	JoinOutcome outcome = join_in_child(config, keep_uid);
	close(pidfd);

	EXPECT_EQ(outcome.status, 0) << outcome.error;
	for (const char *name : { "net", "uts", "ipc" })
		EXPECT_EQ(outcome.namespaces[name], target.inode(name)) << name;
	for (const char *name : { "user", "mnt", "cgroup" })
		EXPECT_EQ(outcome.namespaces[name], namespace_inode("self", name)) << name;
}

TEST(join, closes_namespace_files)
{
	Target target(CLONE_NEWNET | CLONE_NEWUTS);
	ASSERT_EQ(target.error(), 0) << strerror(target.error());

	std::vector<std::pair<uint32_t, std::string>> files = {
		{ CLONE_NEWNET, target.ns_path("net") },
		{ CLONE_NEWUTS, target.ns_path("uts") },
	};
	JoinOutcome outcome = join_in_child(config_joining(files), keep_uid);

	EXPECT_EQ(outcome.status, 0) << outcome.error;
	EXPECT_EQ(outcome.open_join_fds, 0);
}

TEST(join, open_rejects_wrong_type)
{
	std::vector<std::pair<uint32_t, std::string>> files = { { CLONE_NEWNET, "/proc/self/ns/uts" } };
	JoinOutcome outcome = join_in_child(config_joining(files), keep_uid);

	EXPECT_EQ(outcome.status, NSEXEC_EXIT_FAILURE);
	EXPECT_EQ(outcome.error, "/proc/self/ns/uts is a uts namespace, not a net namespace");
}

TEST(join, open_rejects_non_namespace_file)
{
	std::vector<std::pair<uint32_t, std::string>> files = { { CLONE_NEWNET, "/dev/null" } };
	JoinOutcome outcome = join_in_child(config_joining(files), keep_uid);

	EXPECT_EQ(outcome.status, NSEXEC_EXIT_FAILURE);
	EXPECT_NE(outcome.error.find("/dev/null is not a namespace file"), std::string::npos) << outcome.error;
}

TEST(join, open_missing_file_fails)
{
	std::vector<std::pair<uint32_t, std::string>> files = { { CLONE_NEWNET, "/nonexistent/ns/net" } };
	JoinOutcome outcome = join_in_child(config_joining(files), keep_uid);

	EXPECT_EQ(outcome.status, NSEXEC_EXIT_FAILURE);
	std::string expected = std::string("cannot open net namespace file /nonexistent/ns/net: ") + strerror(ENOENT) + "; ";
	EXPECT_EQ(outcome.error.compare(0, expected.size(), expected), 0) << outcome.error;
}

TEST(join, failure_names_namespace)
{
	/* Joining the user namespace the caller is already in fails with EINVAL. */
	std::vector<std::pair<uint32_t, std::string>> files = { { CLONE_NEWUSER, "/proc/self/ns/user" } };
	JoinOutcome outcome = join_in_child(config_joining(files), keep_uid);

	EXPECT_EQ(outcome.status, NSEXEC_EXIT_FAILURE);
	std::string expected = std::string("cannot join user namespace (/proc/self/ns/user): ") + strerror(EINVAL);
	EXPECT_EQ(outcome.error.compare(0, expected.size(), expected), 0) << outcome.error;
}
