/*
 * Conformance tests of error reporting in log.c: the one-line error format,
 * JSON escaping, and what nsexec_fail writes, kills and exits with. Each
 * nsexec_fail call runs in a forked child, because it ends the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "conformance_support.h"
#include "nsexec.h"

using namespace conformance;

namespace {

/* Logging setup of the child before it calls nsexec_fail. */
struct FailRequest {
	int status = NSEXEC_EXIT_FAILURE;
	int error = 0;
	const char *hint = nullptr;
	std::string message = "cannot do it";
	const char *stage = nullptr;
	bool report = true;
	bool log = false;
	bool echo = false;
	bool start_stage = false;
};

/* Exit status and output of the failing child. */
struct FailOutcome {
	int status = -1;
	pid_t pid = -1;
	pid_t started_pid = 0;
	/* The status of the recorded stage: 128+N when signal N ended it. */
	int started_status = 0;
	std::string report;
	std::string log;
	std::string stderr_text;
};

FailOutcome fail_in_child(const FailRequest &request)
{
	FailOutcome outcome;
	int report[2], log[2], err[2];
	if (pipe2(report, O_CLOEXEC) < 0 || pipe2(log, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		ADD_FAILURE() << "pipe2: " << strerror(errno);
		return outcome;
	}
	int all_fds[] = { report[0], report[1], log[0], log[1], err[0], err[1] };

	/* A sibling of the failing child, so that this test can reap it once nsexec_fail has killed it. */
	if (request.start_stage) {
		outcome.started_pid = fork();
		if (outcome.started_pid == 0) {
			for (int fd : all_fds)
				close(fd);
			alarm(target_lifetime_seconds);
			for (;;)
				pause();
		}
	}

	outcome.pid = fork();
	if (outcome.pid == 0) {
		if (dup2(err[1], STDERR_FILENO) < 0)
			_exit(1);
		nsexec_log_setup(request.log ? log[1] : -1, NSEXEC_LOG_DEBUG, request.report ? report[1] : -1);
		if (request.stage != nullptr)
			nsexec_log_stage(request.stage);
		nsexec_log_echo(request.echo);
		if (outcome.started_pid > 0)
			nsexec_log_started(outcome.started_pid);
		nsexec_fail(request.status, request.error, request.hint, "%s", request.message.c_str());
	}
	close(report[1]);
	close(log[1]);
	close(err[1]);

	outcome.report = read_to_end(report[0]);
	outcome.log = read_to_end(log[0]);
	outcome.stderr_text = read_to_end(err[0]);
	outcome.status = reap(outcome.pid);
	close(report[0]);
	close(log[0]);
	close(err[0]);

	if (outcome.started_pid > 0) {
		/* Normally dead already; the kill only keeps a broken nsexec_fail from leaving it behind. */
		if (outcome.status < 0)
			kill(outcome.started_pid, SIGKILL);
		outcome.started_status = reap(outcome.started_pid);
	}
	return outcome;
}

} // namespace

TEST(error, format_joins_parts)
{
	struct Case {
		int error;
		const char *hint;
		std::string expected;
	};
	const Case cases[] = {
		{ ENOENT, "check the path", std::string("open /x: ") + strerror(ENOENT) + "; check the path" },
		{ ENOENT, nullptr, std::string("open /x: ") + strerror(ENOENT) },
		{ 0, "check the path", "open /x; check the path" },
		{ 0, nullptr, "open /x" },
	};

	for (const Case &c : cases) {
		char buffer[256];
		const char *line = nsexec_format_error(buffer, sizeof(buffer), c.error, c.hint, "open /x");
		EXPECT_EQ(line, buffer);
		EXPECT_EQ(std::string(line), c.expected);
	}
}

TEST(error, format_truncates_to_buffer)
{
	char buffer[10];
	memset(buffer, 'x', sizeof(buffer));

	nsexec_format_error(buffer, sizeof(buffer), EPERM, "run as root", "cannot join net namespace");

	EXPECT_EQ(std::string(buffer), "cannot jo");
}

TEST(error, json_escape_bounds)
{
	char out[64];
	size_t length = nsexec_json_escape(out, sizeof(out), "a\"b\\c\nd\x01");
	EXPECT_EQ(std::string(out), "a\\\"b\\\\c\\u000ad\\u0001");
	EXPECT_EQ(length, strlen(out));

	/* An escape that does not fit whole is left out, and the output stays NUL-terminated. */
	char small[4];
	EXPECT_EQ(nsexec_json_escape(small, sizeof(small), "\"\"\""), 2u);
	EXPECT_EQ(std::string(small), "\\\"");

	EXPECT_EQ(nsexec_json_escape(small, 0, "abc"), 0u);
}

TEST(error, fail_exits_with_status)
{
	for (int status : { NSEXEC_EXIT_FAILURE, NSEXEC_EXIT_NOT_EXECUTABLE, NSEXEC_EXIT_NOT_FOUND, 1 }) {
		FailRequest request;
		request.status = status;
		FailOutcome outcome = fail_in_child(request);

		EXPECT_EQ(outcome.status, status);
		EXPECT_NE(outcome.report.find("\"status\":" + std::to_string(status) + ","), std::string::npos)
			<< outcome.report;
	}
}

TEST(error, fail_writes_json_record)
{
	FailRequest request;
	request.error = EPERM;
	request.hint = "run as root";
	request.message = "cannot join net namespace (/proc/4242/ns/net)";
	FailOutcome outcome = fail_in_child(request);

	std::string expected = std::string("{\"error\":\"cannot join net namespace (/proc/4242/ns/net): ") + strerror(EPERM) +
			       "; run as root\",\"status\":125,\"pids\":[0,0]}\n";
	EXPECT_EQ(outcome.report, expected);
	EXPECT_EQ(outcome.status, NSEXEC_EXIT_FAILURE);
}

TEST(error, fail_escapes_json)
{
	FailRequest request;
	request.message = "bad \"name\" in C:\\dir\nnext\tline";
	FailOutcome outcome = fail_in_child(request);

	EXPECT_EQ(outcome.report,
		  "{\"error\":\"bad \\\"name\\\" in C:\\\\dir\\u000anext\\u0009line\",\"status\":125,\"pids\":[0,0]}\n");
}

TEST(error, fail_kills_started_stages)
{
	FailRequest request;
	request.start_stage = true;
	FailOutcome outcome = fail_in_child(request);

	ASSERT_GT(outcome.started_pid, 0);
	EXPECT_EQ(outcome.started_status, 128 + SIGKILL);
	std::string pids = "\"pids\":[" + std::to_string(outcome.started_pid) + ",0]";
	EXPECT_NE(outcome.report.find(pids), std::string::npos) << outcome.report;
}

TEST(error, fail_logs_error_line)
{
	FailRequest request;
	request.error = ENOENT;
	request.message = "cannot open /x";
	request.stage = "stage-1";
	request.log = true;
	FailOutcome outcome = fail_in_child(request);

	std::string expected = "{\"level\":\"error\",\"msg\":\"stage-1[" + std::to_string(outcome.pid) +
			       "]: cannot open /x: " + strerror(ENOENT) + "\"}\n";
	EXPECT_EQ(outcome.log, expected);
}

TEST(error, fail_echoes_to_stderr)
{
	FailRequest without_report;
	without_report.report = false;
	FailOutcome outcome = fail_in_child(without_report);
	EXPECT_EQ(outcome.stderr_text, "nsexec: cannot do it\n");

	FailRequest echoed;
	echoed.echo = true;
	outcome = fail_in_child(echoed);
	EXPECT_EQ(outcome.stderr_text, "nsexec: cannot do it\n");
	EXPECT_NE(outcome.report, "");

	FailRequest quiet;
	outcome = fail_in_child(quiet);
	EXPECT_EQ(outcome.stderr_text, "");
	EXPECT_NE(outcome.report, "");
}
