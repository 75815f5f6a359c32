/*
 * nsexec_namespaces_to_join, which picks the namespaces that --all joins.
 * With CAP_SYS_ADMIN in the initial user namespace, a caller joins the
 * target's cgroup, ipc, net and uts namespaces without comparing them,
 * because joining its own is a no-op that it is allowed. Without that
 * capability it joins only those that differ. The targets come from unshare(1).
 */
#include <gtest/gtest.h>

#include <linux/capability.h>
#include <memory>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conformance_support.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

using namespace conformance;

namespace {

const uint32_t compared_without_privilege = CLONE_NEWCGROUP | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS;

/* Clears CAP_SYS_ADMIN from the effective set of the calling process. */
bool drop_sys_admin()
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &header, data) < 0)
		return false;
	data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
	return syscall(SYS_capset, &header, data) == 0;
}

/* Returns the result of nsexec_namespaces_to_join for pid in a child without CAP_SYS_ADMIN, or ~0 on failure. */
uint32_t join_flags_without_sys_admin(pid_t pid)
{
	int channel[2];
	if (pipe(channel) < 0)
		return ~0u;
	pid_t child = fork();
	if (child == 0) {
		uint32_t join = ~0u, failed = 0;
		if (!drop_sys_admin() || nsexec_namespaces_to_join(pid, &join, &failed) < 0)
			join = ~0u;
		_exit(write(channel[1], &join, sizeof(join)) == sizeof(join) ? 0 : 1);
	}
	close(channel[1]);
	uint32_t join = ~0u;
	if (read(channel[0], &join, sizeof(join)) != sizeof(join))
		join = ~0u;
	close(channel[0]);
	int status;
	waitpid(child, &status, 0);
	return join;
}

class namespaces_to_join : public ::testing::Test {
protected:
	void start(const std::vector<std::string> &options)
	{
		if (geteuid() != 0)
			GTEST_SKIP() << "needs root to make namespaces";
		if (namespace_link("self", "user") != "user:[4026531837]")
			GTEST_SKIP() << "needs to run in the initial user namespace";
		target_ = std::make_unique<UnshareSleep>(options);
		ASSERT_GT(target_->pid(), 0) << "unshare did not start sleep within 10 s";
	}

	std::unique_ptr<UnshareSleep> target_;
};

} // namespace

TEST_F(namespaces_to_join, root_joins_shared_namespaces_without_comparing)
{
	/* Only the mount namespace differs from this process's. */
	start({ "--mount" });
	uint32_t join = 0, failed = 0;
	ASSERT_EQ(nsexec_namespaces_to_join(target_->pid(), &join, &failed), 0);
	EXPECT_EQ(join & compared_without_privilege, compared_without_privilege);
	EXPECT_NE(join & CLONE_NEWNS, 0u);
	EXPECT_EQ(join & CLONE_NEWPID, 0u);
	EXPECT_EQ(join & CLONE_NEWUSER, 0u);
	EXPECT_EQ(join & CLONE_NEWTIME, 0u);
}

TEST_F(namespaces_to_join, caller_without_sys_admin_compares_every_type)
{
	start({ "--mount", "--uts" });
	uint32_t join = join_flags_without_sys_admin(target_->pid());
	ASSERT_NE(join, ~0u) << "the child without CAP_SYS_ADMIN failed";
	EXPECT_EQ(join, static_cast<uint32_t>(CLONE_NEWNS | CLONE_NEWUTS));
}
