/*
 * The direct path of nsexec_spawn_inline: one child instead of stage 1 and
 * stage 2. It is born in the target's PID namespace, because the caller
 * names that namespace for its children and sets it back after the clone.
 * The targets come from unshare(1). Without a user or time namespace the
 * child shares the caller's memory, as vfork. With a time namespace it has
 * memory of its own.
 */
#include <gtest/gtest.h>

#include <fcntl.h>
#include <fstream>
#include <sched.h>
#include <signal.h>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "conformance_support.h"

using namespace conformance;

namespace {

/* The text of the /proc/PROCESS/ns/NAME link, such as "net:[4026531840]", or "". */
std::string namespace_link(const std::string &process, const std::string &name)
{
	std::string path = "/proc/" + process + "/ns/" + name;
	char target[256];
	ssize_t length = readlink(path.c_str(), target, sizeof(target) - 1);
	return length < 0 ? std::string() : std::string(target, static_cast<size_t>(length));
}

/* The namespaces that the program prints, in this order. */
const std::vector<std::string> printed = { "pid", "mnt", "uts", "ipc", "net", "time" };

const char *report_script = "for ns in pid mnt uts ipc net time; do readlink /proc/self/ns/$ns; done";

/* The child of launcher that runs sleep: the process in every new namespace. */
pid_t sleeping_child(pid_t launcher)
{
	std::ifstream list("/proc/" + std::to_string(launcher) + "/task/" + std::to_string(launcher) + "/children");
	pid_t child;
	while (list >> child) {
		std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
		std::string name;
		if (comm >> name && name == "sleep")
			return child;
	}
	return 0;
}

std::string read_all(int fd)
{
	std::string text;
	char buffer[4096];
	ssize_t count;
	while ((count = read(fd, buffer, sizeof(buffer))) > 0)
		text.append(buffer, static_cast<size_t>(count));
	return text;
}

/* The outcome of one run of nsexec_spawn_inline. */
struct DirectRun {
	int result = -1;
	struct nsexec_stage_pids pids = { 0, 0, false };
	std::string output;
	std::string report;
	int status = -1;
	/* Children of this process, the target's launcher aside, once the run's child was reaped. */
	bool other_children = false;
};

/* Whether this thread has a child other than launcher. */
bool has_children_besides(pid_t launcher)
{
	std::ifstream list("/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/children");
	pid_t child;
	while (list >> child) {
		if (child != launcher)
			return true;
	}
	return false;
}

/* Runs report_script in the namespaces of target given by flags, plus joins, and waits for it. */
DirectRun run_direct(pid_t launcher, pid_t target, uint32_t flags,
		     const std::vector<std::pair<uint32_t, std::string>> &joins = {})
{
	DirectRun run;
	int report[2], out[2];
	if (pipe2(report, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return run;
	int pidfd = static_cast<int>(syscall(SYS_pidfd_open, target, 0));

	struct nsexec_config config;
	nsexec_config_init(&config);
	config.pidfd = pidfd;
	config.pidfd_flags = flags;
	config.target_pid = target;
	for (const auto &join : joins)
		nsexec_config_add_join(&config, join.first, -1, join.second.c_str());

	const char *argv[] = { "/bin/sh", "-c", report_script, nullptr };
	const char *envp[] = { "PATH=/usr/bin:/bin", nullptr };
	struct nsexec_process process;
	nsexec_process_init(&process);
	process.argv = const_cast<char *const *>(argv);
	process.envp = const_cast<char *const *>(envp);
	process.stdio[1] = out[1];

	char error[1024] = "";
	run.result = nsexec_spawn_inline(&config, &process, report[1], &run.pids, error, sizeof(error));
	close(report[1]);
	close(out[1]);
	run.output = read_all(out[0]);
	run.report = run.result == 0 ? read_all(report[0]) : error;
	close(out[0]);
	close(report[0]);
	if (run.result == 0) {
		int status;
		if (waitpid(run.pids.stage2, &status, 0) == run.pids.stage2)
			run.status = status;
		run.other_children = has_children_besides(launcher);
	}
	if (pidfd >= 0)
		close(pidfd);
	return run;
}

/* Starts `unshare --fork <options> sleep 600` before each test and kills it afterwards. */
class direct : public ::testing::Test {
protected:
	void start(const std::vector<std::string> &options)
	{
		if (geteuid() != 0)
			GTEST_SKIP() << "needs root to make and enter namespaces";
		launcher_ = fork();
		ASSERT_GE(launcher_, 0) << strerror(errno);
		if (launcher_ == 0) {
			std::vector<const char *> argv = { "unshare", "--fork" };
			for (const std::string &option : options)
				argv.push_back(option.c_str());
			argv.insert(argv.end(), { "sleep", "600", nullptr });
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (null < 0 || dup2(null, STDIN_FILENO) < 0)
				_exit(126);
			execv("/usr/bin/unshare", const_cast<char *const *>(argv.data()));
			_exit(127);
		}
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

	std::string expected_output() const
	{
		std::string text;
		for (const std::string &name : printed)
			text += namespace_link(std::to_string(target_), name) + "\n";
		return text;
	}

	pid_t launcher_ = 0;
	pid_t target_ = 0;
};

const uint32_t shared_memory_flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;

} // namespace

TEST_F(direct, one_child_runs_the_program_in_every_namespace)
{
	start({ "--pid", "--mount-proc", "--uts", "--ipc", "--net" });
	DirectRun run = run_direct(launcher_, target_, shared_memory_flags);

	ASSERT_EQ(run.result, 0) << run.report;
	EXPECT_TRUE(run.pids.direct);
	EXPECT_EQ(run.pids.stage1, run.pids.stage2) << "the direct path starts one process";
	EXPECT_EQ(run.output, expected_output());
	EXPECT_TRUE(WIFEXITED(run.status)) << "wait status " << run.status;
	EXPECT_EQ(WEXITSTATUS(run.status), 0);
	EXPECT_FALSE(run.other_children) << "a second stage process was started";
	EXPECT_EQ(run.report, NSEXEC_ENTERED_RECORD) << "the child reports once it is in every namespace";
}

TEST_F(direct, caller_children_stay_in_its_own_pid_namespace)
{
	start({ "--pid", "--mount-proc", "--uts" });
	std::string own = namespace_link("self", "pid");
	ASSERT_NE(own, namespace_link(std::to_string(target_), "pid"));

	DirectRun run = run_direct(launcher_, target_, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS);
	ASSERT_EQ(run.result, 0) << run.report;
	EXPECT_EQ(namespace_link("thread-self", "pid_for_children"), own);

	/* A child started afterwards is born in the caller's PID namespace. */
	pid_t child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	EXPECT_EQ(namespace_link(std::to_string(child), "pid"), own);
	kill(child, SIGKILL);
	reap(child);
}

TEST_F(direct, time_namespace_child_copies_memory)
{
	start({ "--pid", "--mount-proc", "--uts", "--ipc", "--net", "--time", "--monotonic", "1000" });
	ASSERT_NE(namespace_link(std::to_string(target_), "time"), namespace_link("self", "time"));

	DirectRun run = run_direct(launcher_, target_, shared_memory_flags | CLONE_NEWTIME);
	ASSERT_EQ(run.result, 0) << run.report;
	EXPECT_TRUE(run.pids.direct);
	EXPECT_EQ(run.output, expected_output());
	EXPECT_FALSE(run.other_children);
}

TEST_F(direct, failed_join_is_reported_and_leaves_nothing)
{
	start({ "--pid", "--mount-proc", "--uts" });
	DirectRun run = run_direct(launcher_, target_, CLONE_NEWPID | CLONE_NEWUTS, { { CLONE_NEWNET, "/etc/hostname" } });

	ASSERT_EQ(run.result, 0) << "the child starts and reports the error itself";
	EXPECT_EQ(run.output, "");
	EXPECT_TRUE(WIFEXITED(run.status)) << "wait status " << run.status;
	EXPECT_EQ(WEXITSTATUS(run.status), NSEXEC_EXIT_FAILURE);
	EXPECT_NE(run.report.find("\"error\":\"/etc/hostname is not a namespace file"), std::string::npos)
		<< run.report;
	EXPECT_EQ(run.report.find("entered"), std::string::npos) << "no entered record before the error";
	EXPECT_FALSE(run.other_children);
	EXPECT_EQ(namespace_link("thread-self", "pid_for_children"), namespace_link("self", "pid"));
}

TEST_F(direct, pid_namespace_file_takes_the_stages)
{
	start({ "--pid", "--mount-proc", "--uts" });
	std::string pid_file = "/proc/" + std::to_string(target_) + "/ns/pid";
	DirectRun run = run_direct(launcher_, target_, CLONE_NEWUTS, { { CLONE_NEWPID, pid_file } });

	ASSERT_EQ(run.result, 0) << run.report;
	EXPECT_FALSE(run.pids.direct) << "a PID namespace given as a file is joined by stage 1";
	EXPECT_NE(run.pids.stage1, run.pids.stage2);
	reap(run.pids.stage1);
	EXPECT_NE(run.output.find(namespace_link(std::to_string(target_), "pid")), std::string::npos);
}
