/*
 * Differential conformance tests against util-linux nsenter: a program
 * started by the nsexec CLI and one started by nsenter, on the same target
 * with the same option, must see the same namespaces. The target is
 * started with unshare(1) in a new namespace of every type.
 */
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "conformance_support.h"
#include "nsexec.h"

using namespace conformance;

namespace {

const std::vector<std::string> namespace_names = { "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts" };

/* The text of the /proc/PID/ns/NAME link, such as "net:[4026531840]", or "". */
std::string namespace_link(const std::string &pid, const std::string &name)
{
	char target[256];
	std::string path = "/proc/" + pid + "/ns/" + name;
	ssize_t length = readlink(path.c_str(), target, sizeof(target) - 1);
	if (length < 0)
		return "";
	return std::string(target, static_cast<size_t>(length));
}

/* The first child of pid whose command is "sleep", or 0. */
pid_t sleeping_child(pid_t pid)
{
	std::string list_path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
	std::ifstream list(list_path);
	pid_t child;
	while (list >> child) {
		std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
		std::string name;
		if (comm >> name && name == "sleep")
			return child;
	}
	return 0;
}

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

		launcher_ = fork();
		ASSERT_GE(launcher_, 0) << strerror(errno);
		if (launcher_ == 0) {
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (null < 0 || dup2(null, STDIN_FILENO) < 0)
				_exit(126);
			/*
			 * No --mount-proc: with the target's own /proc mounted, /proc/self
			 * would not resolve for a program that joined only the mount namespace.
			 */
			execl("/usr/bin/unshare", "unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
			      "--cgroup", "--time", "--user", "--map-root-user", "sleep", "600", static_cast<char *>(nullptr));
			_exit(127);
		}

		/* unshare forks, and the child execs sleep once every namespace exists. */
		for (int i = 0; i < 1000 && target_ == 0; i++) {
			target_ = sleeping_child(launcher_);
			if (target_ == 0)
				sleep_ms(10);
		}
		ASSERT_GT(target_, 0) << "unshare did not start sleep within 10 s";
	}

	void TearDown() override
	{
		if (target_ > 0)
			kill(target_, SIGKILL);
		if (launcher_ > 0) {
			kill(launcher_, SIGKILL);
			reap(launcher_);
		}
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
	pid_t launcher_ = 0;
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
