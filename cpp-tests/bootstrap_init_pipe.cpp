/*
 * The nsexec binary driven over its init pipe, as runc drives its own
 * nsexec: ports of the scenarios of runc's libcontainer/nsenter tests (valid
 * paths, invalid path, wrong namespace type, child logging), plus a new user
 * namespace with a uid map and a time namespace with clock offsets.
 */
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "bootstrap_support.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

using namespace bootstrap_test;

namespace {

/* The environment variable that makes this test binary print its clocks instead of running tests. */
constexpr const char *print_clocks_variable = "NSEXEC_TEST_PRINT_CLOCKS";

/* Reads the first field of /proc/uptime (CLOCK_BOOTTIME as the time namespace shows it), or NAN. */
double read_uptime()
{
	double uptime = NAN;
	FILE *file = fopen("/proc/uptime", "re");
	if (file == nullptr)
		return uptime;
	if (fscanf(file, "%lf", &uptime) != 1)
		uptime = NAN;
	fclose(file);
	return uptime;
}

double read_monotonic()
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

/*
 * Runs before GoogleTest: when stage 2 of the time namespace test execs this
 * binary, it prints "UPTIME MONOTONIC" as read inside and exits.
 */
__attribute__((constructor)) void print_clocks_if_requested()
{
	if (getenv(print_clocks_variable) == nullptr)
		return;
	printf("%.2f %.9f\n", read_uptime(), read_monotonic());
	fflush(stdout);
	_exit(0);
}

/* The path of this test binary, for stage 2 to exec. */
std::string own_executable()
{
	char path[4096];
	ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
	return length < 0 ? std::string() : std::string(path, static_cast<size_t>(length));
}

std::string own_namespace_file(const char *name)
{
	return "/proc/" + std::to_string(getpid()) + "/ns/" + name;
}

/* The bootstrap message of runc's nsenter tests: unshare net, join paths. */
std::vector<uint8_t> runc_test_message(const std::string &paths)
{
	return NetlinkMessage()
		.add_u32(NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWNET)
		.add_text(NSEXEC_NS_PATHS_ATTR, paths)
		.encode();
}

/* Checks a run that must succeed: pid line, every stage exited 0, nothing left. */
void expect_success(const Outcome &outcome)
{
	EXPECT_TRUE(exited_with(outcome.helper_status, 0)) << "stage 0 wait status " << outcome.helper_status;
	ASSERT_TRUE(outcome.reported_pids);
	EXPECT_TRUE(exited_with(outcome.stage1_status, 0)) << "stage 1 wait status " << outcome.stage1_status;
	EXPECT_TRUE(exited_with(outcome.stage2_status, 0)) << "program wait status " << outcome.stage2_status;
	EXPECT_TRUE(outcome.errors.empty()) << "error record: " << outcome.errors[0].error;
	EXPECT_TRUE(outcome.other_records.empty()) << "unexpected init pipe line: " << outcome.other_records[0];
	EXPECT_TRUE(outcome.leftovers.empty()) << "first process left: " << outcome.leftovers[0];
}

/* Checks a run that stage 1 must fail: non-zero exit, an error naming detail, nothing joined or left. */
void expect_stage1_failure(const Outcome &outcome, const std::string &detail)
{
	EXPECT_TRUE(exited_with(outcome.helper_status, NSEXEC_EXIT_FAILURE)) << "wait status " << outcome.helper_status;
	EXPECT_FALSE(outcome.reported_pids);
	ASSERT_FALSE(outcome.errors.empty());
	EXPECT_NE(outcome.errors[0].error.find(detail), std::string::npos) << "first error: " << outcome.errors[0].error;
	EXPECT_EQ(outcome.log.find("joined"), std::string::npos) << "log: " << outcome.log;
	EXPECT_TRUE(outcome.leftovers.empty()) << "first process left: " << outcome.leftovers[0];
}

} // namespace

TEST(bootstrap, joins_own_pid_namespace)
{
	/* Joining the PID namespace one is already in is allowed, unlike the user namespace. */
	std::string own_pid = namespace_link(getpid(), "pid");
	std::string own_net = namespace_link(getpid(), "net");
	std::string stage2_pid, stage2_net;

	RunOptions run;
	run.bootstrap = runc_test_message("pid:" + own_namespace_file("pid"));
	run.inspect_stage2 = [&](const StagePids &pids) {
		stage2_pid = namespace_link(pids.stage2, "pid");
		stage2_net = namespace_link(pids.stage2, "net");
	};
	Outcome outcome = run_nsexec(run);

	expect_success(outcome);
	EXPECT_NE(outcome.pids.stage1, outcome.helper_pid);
	EXPECT_NE(outcome.pids.stage2, outcome.helper_pid);
	EXPECT_NE(outcome.pids.stage1, outcome.pids.stage2);
	EXPECT_EQ(stage2_pid, own_pid);
	EXPECT_FALSE(stage2_net.empty());
	EXPECT_NE(stage2_net, own_net) << "stage 2 did not get a new network namespace";
}

TEST(bootstrap, rejects_invalid_path)
{
	RunOptions run;
	run.bootstrap = runc_test_message("pid:/proc/-1/ns/pid");
	Outcome outcome = run_nsexec(run);

	expect_stage1_failure(outcome, "cannot open pid namespace file /proc/-1/ns/pid");
}

TEST(bootstrap, rejects_wrong_namespace_type)
{
	RunOptions run;
	run.bootstrap = runc_test_message("net:" + own_namespace_file("pid"));
	Outcome outcome = run_nsexec(run);

	expect_stage1_failure(outcome, "is a pid namespace, not a net namespace");
}

TEST(bootstrap, logs_json_lines)
{
	RunOptions run;
	run.bootstrap = runc_test_message("pid:" + own_namespace_file("pid"));
	run.log_level = NSEXEC_LOG_DEBUG;
	Outcome outcome = run_nsexec(run);
	expect_success(outcome);

	std::vector<std::string> lines = split_lines(outcome.log);
	ASSERT_FALSE(lines.empty()) << "no log line at debug level";

	bool seen[3] = { false, false, false };
	pid_t stage_pids[3] = { outcome.helper_pid, outcome.pids.stage1, outcome.pids.stage2 };
	for (const std::string &line : lines) {
		LogLine entry;
		ASSERT_TRUE(parse_log_line(line, entry)) << "log line is not {\"level\",\"msg\"} JSON: " << line;
		EXPECT_FALSE(entry.level.empty()) << line;
		EXPECT_FALSE(entry.msg.empty()) << line;
		EXPECT_EQ(entry.level, "debug") << line;

		/* Every line names its stage and that stage's pid: "stage-N[PID]: ...". */
		bool named = false;
		for (int stage = 0; stage < 3; stage++) {
			std::string prefix = "stage-" + std::to_string(stage) + "[" + std::to_string(stage_pids[stage]) + "]: ";
			if (entry.msg.compare(0, prefix.size(), prefix) == 0) {
				named = true;
				seen[stage] = true;
			}
		}
		EXPECT_TRUE(named) << "line names no stage with its pid: " << line;
	}
	EXPECT_TRUE(seen[0]) << "no line from stage 0";
	EXPECT_TRUE(seen[1]) << "no line from stage 1";
	EXPECT_TRUE(seen[2]) << "no line from stage 2";

	/* The steps of this run, each logged by the stage that took it. */
	std::string stage1 = "stage-1[" + std::to_string(outcome.pids.stage1) + "]: ";
	std::string stage2 = "stage-2[" + std::to_string(outcome.pids.stage2) + "]: ";
	EXPECT_NE(outcome.log.find(stage1 + "joined pid namespace " + own_namespace_file("pid")), std::string::npos)
		<< outcome.log;
	EXPECT_NE(outcome.log.find(stage1 + "unshared namespaces 0x40000000"), std::string::npos) << outcome.log;
	EXPECT_NE(outcome.log.find(stage2 + "executing /bin/true"), std::string::npos) << outcome.log;
}

TEST(bootstrap, logs_nothing_below_error_level)
{
	RunOptions run;
	run.bootstrap = runc_test_message("pid:" + own_namespace_file("pid"));
	run.log_level = NSEXEC_LOG_ERROR;
	Outcome outcome = run_nsexec(run);

	expect_success(outcome);
	EXPECT_EQ(outcome.log, "");
}

TEST(bootstrap, new_user_namespace_maps_root)
{
	/* The caller's own uid, as the map of an unprivileged caller, and an unrelated one that root may map. */
	for (uid_t outside : { getuid(), static_cast<uid_t>(65534) }) {
		SCOPED_TRACE("uid outside " + std::to_string(outside));
		std::string uid_map = "0 " + std::to_string(outside) + " 1\n";
		std::string gid_map = "0 " + std::to_string(outside == getuid() ? getgid() : outside) + " 1\n";
		std::string own_user = namespace_link(getpid(), "user");
		std::string stage2_user;

		RunOptions run;
		run.bootstrap = NetlinkMessage()
					.add_u32(NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWUSER)
					.add_text(NSEXEC_UIDMAP_ATTR, uid_map)
					.add_text(NSEXEC_GIDMAP_ATTR, gid_map)
					.encode();
		run.program = { "/bin/sh", "-c", "id -u && cat /proc/self/uid_map" };
		run.capture_output = true;
		run.inspect_stage2 = [&](const StagePids &pids) { stage2_user = namespace_link(pids.stage2, "user"); };
		Outcome outcome = run_nsexec(run);
		expect_success(outcome);

		EXPECT_FALSE(stage2_user.empty());
		EXPECT_NE(stage2_user, own_user) << "stage 2 did not get a new user namespace";

		std::istringstream output(outcome.output);
		std::string id;
		unsigned long inside = 99, host = 0, count = 0;
		ASSERT_TRUE(std::getline(output, id)) << "output: " << outcome.output;
		EXPECT_EQ(id, "0") << "output: " << outcome.output;
		ASSERT_TRUE(output >> inside >> host >> count) << "output: " << outcome.output;
		EXPECT_EQ(inside, 0u);
		EXPECT_EQ(host, outside);
		EXPECT_EQ(count, 1u);
	}
}

TEST(bootstrap, time_namespace_offsets)
{
	std::string own_time = namespace_link(getpid(), "time");
	std::string stage2_time;
	double uptime_before = read_uptime();
	double monotonic_before = read_monotonic();

	RunOptions run;
	run.bootstrap = NetlinkMessage()
				.add_u32(NSEXEC_CLONE_FLAGS_ATTR, CLONE_NEWTIME)
				.add_text(NSEXEC_TIMENSOFFSET_ATTR, "monotonic 1000 0\nboottime 1000 0\n")
				.encode();
	run.program = { own_executable() };
	run.environment = { std::string(print_clocks_variable) + "=1" };
	run.capture_output = true;
	run.inspect_stage2 = [&](const StagePids &pids) { stage2_time = namespace_link(pids.stage2, "time"); };
	Outcome outcome = run_nsexec(run);
	expect_success(outcome);

	double uptime_after = read_uptime();
	double monotonic_after = read_monotonic();
	EXPECT_FALSE(stage2_time.empty());
	EXPECT_NE(stage2_time, own_time) << "stage 2 did not get a new time namespace";

	double uptime_inside = NAN, monotonic_inside = NAN;
	ASSERT_EQ(sscanf(outcome.output.c_str(), "%lf %lf", &uptime_inside, &monotonic_inside), 2)
		<< "output: " << outcome.output;

	/* Inside = outside + 1000 s at some moment between before and after; /proc/uptime has 10 ms steps. */
	EXPECT_GE(uptime_inside, uptime_before + 1000 - 0.02);
	EXPECT_LE(uptime_inside, uptime_after + 1000 + 0.02);
	EXPECT_GE(monotonic_inside, monotonic_before + 1000);
	EXPECT_LE(monotonic_inside, monotonic_after + 1000);
}
