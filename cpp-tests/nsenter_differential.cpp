/*
 * Differential conformance tests against util-linux nsenter: a program
 * started by the nsexec CLI and one started by nsenter, on the same target
 * with the same option, must see the same namespaces. The target is
 * started with unshare(1) in a new namespace of every type.
 */
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "conformance_support.h"
#include "nsexec.h"

using namespace conformance;

namespace {

const std::vector<std::string> namespace_names = { "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts" };

} // namespace

/* Starts the target before each test and kills it afterwards. */
class nsenter : public ::testing::Test {
protected:
	void SetUp() override
	{
		nsexec_ = nsexec_binary();
		if (access(nsexec_.c_str(), X_OK) != 0)
			GTEST_SKIP() << nsexec_ << " not found; run swift build first or set NSEXEC_BINARY";
		if (access("/usr/bin/nsenter", X_OK) != 0)
			GTEST_SKIP() << "/usr/bin/nsenter not found; install util-linux";

		/*
		 * No --mount-proc: with the target's own /proc mounted, /proc/self
		 * would not resolve for a program that joined only the mount namespace.
		 */
		target_process_ = std::make_unique<UnshareSleep>(std::vector<std::string>{
			"--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "--time", "--user", "--map-root-user" });
		target_ = target_process_->pid();
		ASSERT_GT(target_, 0) << "unshare did not start sleep within 10 s";
	}

	/* Runs PROGRAM through nsexec and through nsenter with the same options; both must succeed alike. */
	void expect_same_output(const std::vector<std::string> &options, const std::vector<std::string> &program)
	{
		std::vector<std::string> by_nsexec = { nsexec_, "-t", std::to_string(target_) };
		std::vector<std::string> by_nsenter = { "/usr/bin/nsenter", "-t", std::to_string(target_) };
		for (const std::string &option : options) {
			by_nsexec.push_back(option);
			by_nsenter.push_back(option);
		}
		by_nsexec.push_back("--");
		by_nsenter.push_back("--");
		by_nsexec.insert(by_nsexec.end(), program.begin(), program.end());
		by_nsenter.insert(by_nsenter.end(), program.begin(), program.end());

		nsexec_result_ = run_command(by_nsexec);
		nsenter_result_ = run_command(by_nsenter);
		ASSERT_EQ(nsexec_result_.status, 0) << nsexec_result_.err;
		ASSERT_EQ(nsenter_result_.status, 0) << nsenter_result_.err;
		EXPECT_EQ(nsexec_result_.out, nsenter_result_.out);
	}

	/* Checks one namespace type: both tools give the target's namespace, not the test's own. */
	void expect_same_namespace(const std::string &option, const std::string &name)
	{
		expect_same_output({ option }, { "readlink", "/proc/self/ns/" + name });

		std::string target_link = namespace_link(std::to_string(target_), name);
		ASSERT_NE(target_link, "");
		EXPECT_EQ(nsexec_result_.out, target_link + "\n");
		EXPECT_NE(target_link, namespace_link("self", name)) << "the target did not get its own " << name
								       << " namespace";
	}

	std::string nsexec_;
	std::unique_ptr<UnshareSleep> target_process_;
	pid_t target_ = 0;
	CommandResult nsexec_result_;
	CommandResult nsenter_result_;
};

TEST_F(nsenter, cgroup_namespace_matches)
{
	expect_same_namespace("--cgroup", "cgroup");
}

TEST_F(nsenter, ipc_namespace_matches)
{
	expect_same_namespace("--ipc", "ipc");
}

TEST_F(nsenter, mnt_namespace_matches)
{
	expect_same_namespace("--mount", "mnt");
}

TEST_F(nsenter, net_namespace_matches)
{
	expect_same_namespace("--net", "net");
}

TEST_F(nsenter, pid_namespace_matches)
{
	expect_same_namespace("--pid", "pid");
}

TEST_F(nsenter, time_namespace_matches)
{
	expect_same_namespace("--time", "time");
}

TEST_F(nsenter, user_namespace_matches)
{
	expect_same_namespace("--user", "user");
}

TEST_F(nsenter, uts_namespace_matches)
{
	expect_same_namespace("--uts", "uts");
}

TEST_F(nsenter, all_namespaces_match)
{
	std::string loop = "for name in";
	for (const std::string &name : namespace_names)
		loop += " " + name;
	loop += "; do readlink /proc/self/ns/$name; done";
	expect_same_output({ "--all" }, { "sh", "-c", loop });

	std::string expected;
	for (const std::string &name : namespace_names)
		expected += namespace_link(std::to_string(target_), name) + "\n";
	EXPECT_EQ(nsexec_result_.out, expected);
}
