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
#include <memory>
#include <sstream>
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

/* The namespaces that the program prints, in this order. */
const std::vector<std::string> printed = { "pid", "mnt", "uts", "ipc", "net", "time" };

const char *report_script = "for ns in pid mnt uts ipc net time; do readlink /proc/self/ns/$ns; done";

/* The program of the rootless case: three namespace links, then the uid. */
const char *rootless_script = "for ns in pid user uts; do readlink /proc/self/ns/$ns; done; id -u";

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
		     const std::vector<std::pair<uint32_t, std::string>> &joins = {}, const char *script = report_script,
		     bool enters_user_namespace = false, char *const *environment = nullptr)
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

	const char *argv[] = { "/bin/sh", "-c", script, nullptr };
	const char *envp[] = { "PATH=/usr/bin:/bin", nullptr };
	struct nsexec_process process;
	nsexec_process_init(&process);
	process.argv = const_cast<char *const *>(argv);
	process.envp = environment != nullptr ? environment : const_cast<char *const *>(envp);
	process.stdio[1] = out[1];
	process.entered_user_namespace = enters_user_namespace;

	char error[1024] = "";
	run.result = nsexec_spawn_inline(&config, &process, report[1], &run.pids, error, sizeof(error));
	close(report[1]);
	close(out[1]);
	run.output = read_to_end(out[0]);
	run.report = run.result == 0 ? read_to_end(report[0]) : error;
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

/* Starts the target with unshare(1) in each test and kills it afterwards. */
class direct : public ::testing::Test {
protected:
	void start(const std::vector<std::string> &options)
	{
		if (geteuid() != 0)
			GTEST_SKIP() << "needs root to make and enter namespaces";
		target_process_ = std::make_unique<UnshareSleep>(options);
		launcher_ = target_process_->launcher();
		target_ = target_process_->pid();
		ASSERT_GT(target_, 0) << "unshare did not start sleep within 10 s";
	}

	std::string expected_output() const
	{
		std::string text;
		for (const std::string &name : printed)
			text += namespace_link(std::to_string(target_), name) + "\n";
		return text;
	}

	std::unique_ptr<UnshareSleep> target_process_;
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

namespace {

/* Writes text to /proc/self/FILE. Returns false on failure. */
bool write_self(const char *file, const std::string &text)
{
	int fd = open((std::string("/proc/self/") + file).c_str(), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
	close(fd);
	return written;
}

/*
 * In a process of unprivileged_uid: makes a user, PID and UTS namespace with
 * root mapped to that uid, forks the first process of the PID namespace,
 * writes its pid to ready and waits. Never returns.
 */
[[noreturn]] void run_rootless_target(int ready)
{
	const std::string id = std::to_string(unprivileged_uid);
	if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS) < 0 || !write_self("setgroups", "deny") ||
	    !write_self("uid_map", "0 " + id + " 1") || !write_self("gid_map", "0 " + id + " 1"))
		_exit(1);
	pid_t init = fork();
	if (init == 0) {
		alarm(target_lifetime_seconds);
		for (;;)
			pause();
	}
	(void)nsexec_write_all(ready, &init, sizeof(init));
	reap(init);
	_exit(0);
}

} // namespace

TEST(direct_rootless, user_namespace_owner_takes_stages)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to switch to uid " << unprivileged_uid;

	/*
	 * The caller and the target's creator run as unprivileged_uid in
	 * processes of their own. The caller writes "RESULT DIRECT", the
	 * expected lines and the program's lines, separated by "--".
	 */
	int result[2];
	ASSERT_EQ(pipe2(result, O_CLOEXEC), 0);
	pid_t caller = fork();
	ASSERT_GE(caller, 0);
	if (caller == 0) {
		close(result[0]);
		int ready[2];
		if (switch_user(unprivileged_uid) < 0 || pipe2(ready, O_CLOEXEC) < 0)
			_exit(1);
		pid_t creator = fork();
		if (creator == 0) {
			close(result[1]);
			run_rootless_target(ready[1]);
		}
		close(ready[1]);

		pid_t target = 0;
		std::string text = "-1 -1\n";
		if (nsexec_read_all(ready[0], &target, sizeof(target)) == 0) {
			std::string expected;
			for (const char *name : { "pid", "user", "uts" })
				expected += namespace_link(std::to_string(target), name) + "\n";
			DirectRun run = run_direct(creator, target, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS, {},
						   rootless_script, true);
			text = std::to_string(run.result) + " " + std::to_string(run.pids.direct) + "\n" + expected +
			       "0\n--\n" + run.output;
			if (!run.pids.direct && run.result == 0)
				reap(run.pids.stage1);
		}
		(void)nsexec_write_all(result[1], text.data(), text.size());
		if (target > 0)
			kill(target, SIGKILL);
		reap(creator);
		_exit(0);
	}
	close(result[1]);
	std::string text = read_to_end(result[0]);
	close(result[0]);
	EXPECT_EQ(reap(caller), 0);

	std::istringstream lines(text);
	int spawn_result = -1;
	int direct = -1;
	lines >> spawn_result >> direct;
	ASSERT_EQ(spawn_result, 0) << text;
	EXPECT_EQ(direct, 0) << "an unprivileged caller may join the PID namespace only from the target's user namespace";

	size_t separator = text.find("--\n");
	ASSERT_NE(separator, std::string::npos) << text;
	size_t first_line_end = text.find('\n') + 1;
	EXPECT_EQ(text.substr(separator + 3), text.substr(first_line_end, separator - first_line_end))
		<< "the program runs as root in the target's user, PID and UTS namespaces";
}

/*
 * The supervisor allocates the program's environment block before the clone
 * and frees it after, so any size works on the shared-memory path and nothing
 * stays behind (LeakSanitizer checks that in the sanitizer build).
 */
TEST_F(direct, large_environment_reaches_the_program)
{
	start({ "--pid", "--mount-proc", "--uts" });
	const int count = 5000;
	std::vector<std::string> entries = { "PATH=/usr/bin:/bin" };
	for (int i = 0; i < count; i++)
		entries.push_back("NSEXEC_TEST_" + std::to_string(i) + "=" + std::to_string(i));
	std::vector<char *> environment;
	for (std::string &entry : entries)
		environment.push_back(entry.data());
	environment.push_back(nullptr);

	DirectRun run = run_direct(launcher_, target_, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS, {},
				   "env | grep -c '^NSEXEC_TEST_'; echo \"$NSEXEC_TEST_4999\"", false, environment.data());

	ASSERT_EQ(run.result, 0) << run.report;
	EXPECT_TRUE(run.pids.direct);
	EXPECT_EQ(run.output, std::to_string(count) + "\n4999\n");
	ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
	EXPECT_EQ(WEXITSTATUS(run.status), 0);
}
