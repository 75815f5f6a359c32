/*
 * Support for the bootstrap tests: builds netlink messages and drives the
 * nsexec binary over its init pipe the way runc drives its own nsexec. The
 * test forks and execs nsexec with one end of a socketpair as
 * _LIBCONTAINER_INITPIPE and a pipe as _LIBCONTAINER_LOGPIPE, sends the
 * bootstrap message, reads the pid line, then sends the process message that
 * stage 2 execs. Stage 1 and stage 2 are clone(CLONE_PARENT) siblings of
 * stage 0, so they are children of the test process, which reaps them.
 *
 * Header-only, so that each bootstrap_*.cpp file also builds on its own.
 */
#ifndef NSEXEC_BOOTSTRAP_SUPPORT_H
#define NSEXEC_BOOTSTRAP_SUPPORT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nsexec.h"

namespace bootstrap_test {

/* How long a test waits for nsexec before it fails instead of hanging. */
constexpr int timeout_ms = 30000;

/* A netlink message in runc's bootstrap format, native byte order. */
class NetlinkMessage {
public:
	explicit NetlinkMessage(uint16_t type = NSEXEC_INIT_MSG) : type_(type) {}

	/* Appends one attribute: 2-byte length (header included), 2-byte type, payload padded to 4 bytes. */
	NetlinkMessage &add(uint16_t type, const void *payload, size_t size)
	{
		uint16_t length = static_cast<uint16_t>(4 + size);
		append(&length, 2);
		append(&type, 2);
		append(payload, size);
		body_.resize((body_.size() + 3) & ~static_cast<size_t>(3), 0);
		return *this;
	}

	NetlinkMessage &add_u32(uint16_t type, uint32_t value) { return add(type, &value, sizeof(value)); }
	NetlinkMessage &add_u8(uint16_t type, uint8_t value) { return add(type, &value, sizeof(value)); }

	/* Text without a terminating NUL, as runc's Go side sends it. */
	NetlinkMessage &add_text(uint16_t type, const std::string &text) { return add(type, text.data(), text.size()); }

	/* Text with a terminating NUL, as the process message requires. */
	NetlinkMessage &add_string(uint16_t type, const std::string &text)
	{
		return add(type, text.c_str(), text.size() + 1);
	}

	/* The 16-byte nlmsghdr (length, type, flags, sequence, port) followed by the attributes. */
	std::vector<uint8_t> encode() const
	{
		std::vector<uint8_t> bytes(16, 0);
		uint32_t total = static_cast<uint32_t>(16 + body_.size());
		memcpy(bytes.data(), &total, 4);
		memcpy(bytes.data() + 4, &type_, 2);
		bytes.insert(bytes.end(), body_.begin(), body_.end());
		return bytes;
	}

private:
	void append(const void *data, size_t size)
	{
		const uint8_t *bytes = static_cast<const uint8_t *>(data);
		body_.insert(body_.end(), bytes, bytes + size);
	}

	uint16_t type_;
	std::vector<uint8_t> body_;
};

/* A bare 16-byte header with the given stated length and type. */
inline std::vector<uint8_t> header_bytes(uint32_t length, uint16_t type)
{
	std::vector<uint8_t> bytes(16, 0);
	memcpy(bytes.data(), &length, 4);
	memcpy(bytes.data() + 4, &type, 2);
	return bytes;
}

/* The search path that the helper and the programs it runs get. */
constexpr const char *search_path = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/* The process message that makes stage 2 exec argv with environment envp. */
inline std::vector<uint8_t> process_message(const std::vector<std::string> &argv, const std::vector<std::string> &envp)
{
	NetlinkMessage message(NSEXEC_PROCESS_MSG);
	for (const std::string &argument : argv)
		message.add_string(NSEXEC_PROCESS_ARG_ATTR, argument);
	for (const std::string &entry : envp)
		message.add_string(NSEXEC_PROCESS_ENV_ATTR, entry);
	return message.encode();
}

/*
 * The nsexec binary: $NSEXEC_BINARY, else the one that CMake names in
 * NSEXEC_DEFAULT_BINARY, else .build/debug/nsexec of the package that this
 * file belongs to, as `swift build` leaves it.
 */
inline std::string nsexec_binary()
{
	const char *configured = getenv("NSEXEC_BINARY");
	if (configured != NULL && *configured != '\0')
		return configured;
#ifdef NSEXEC_DEFAULT_BINARY
	return NSEXEC_DEFAULT_BINARY;
#else
	std::string source = __FILE__;
	size_t slash = source.rfind("/cpp-tests/");
	std::string root = slash == std::string::npos ? std::string(".") : source.substr(0, slash);
	return root + "/.build/debug/nsexec";
#endif
}

/* Milliseconds left until deadline (a CLOCK_MONOTONIC time in ms), at least 0. */
inline int remaining_ms(int64_t deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t left = deadline - (static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000);
	return left > 0 ? static_cast<int>(left) : 0;
}

inline int64_t deadline_after(int ms)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000 + ms;
}

/*
 * Reads from fd until end of file, or until a newline when stop_at_newline
 * (one byte at a time, so nothing after the line is consumed). Gives up and
 * sets timed_out when the read has not finished after timeout_ms.
 */
inline std::string read_from(int fd, bool stop_at_newline, bool *timed_out = nullptr)
{
	std::string text;
	int64_t deadline = deadline_after(timeout_ms);
	if (timed_out != nullptr)
		*timed_out = false;

	for (;;) {
		struct pollfd ready = { fd, POLLIN, 0 };
		int count = poll(&ready, 1, remaining_ms(deadline));
		if (count < 0 && errno == EINTR)
			continue;
		if (count == 0) {
			if (timed_out != nullptr)
				*timed_out = true;
			return text;
		}
		if (count < 0)
			return text;

		char buffer[4096];
		ssize_t length = read(fd, buffer, stop_at_newline ? 1 : sizeof(buffer));
		if (length < 0 && errno == EINTR)
			continue;
		if (length <= 0)
			return text;
		text.append(buffer, static_cast<size_t>(length));
		if (stop_at_newline && buffer[0] == '\n')
			return text;
	}
}

/* Sends bytes, returning false when the peer is gone (EPIPE, ECONNRESET) instead of raising SIGPIPE. */
inline bool send_all(int fd, const std::vector<uint8_t> &bytes)
{
	size_t sent = 0;
	while (sent < bytes.size()) {
		ssize_t count = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
		if (count < 0 && errno == EINTR)
			continue;
		if (count < 0)
			return false;
		sent += static_cast<size_t>(count);
	}
	return true;
}

/*
 * Waits for a child of the test process and returns its wait status, or -1
 * when it is not a child. A child still running after timeout_ms is killed,
 * so that a hung stage fails the test instead of hanging it.
 */
inline int wait_for(pid_t pid)
{
	int status = 0;
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		pid_t result = waitpid(pid, &status, WNOHANG);
		if (result == pid)
			return status;
		if (result < 0 && errno != EINTR)
			return -1;
		if (remaining_ms(deadline) == 0) {
			ADD_FAILURE() << "pid " << pid << " still running after " << timeout_ms << " ms; killing it";
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return status;
		}
		usleep(1000);
	}
}

/*
 * Returns the pids of the test process's children, zombies included. A stage
 * left behind shows up here, and so would a child of another test, which is
 * why callers compare two snapshots instead of expecting none.
 */
inline std::set<pid_t> child_pids()
{
	std::set<pid_t> pids;
	DIR *tasks = opendir("/proc/self/task");
	if (tasks == nullptr)
		return pids;
	while (struct dirent *task = readdir(tasks)) {
		if (task->d_name[0] == '.')
			continue;
		std::string path = std::string("/proc/self/task/") + task->d_name + "/children";
		FILE *file = fopen(path.c_str(), "re");
		if (file == nullptr)
			continue;
		int pid;
		while (fscanf(file, "%d", &pid) == 1)
			pids.insert(static_cast<pid_t>(pid));
		fclose(file);
	}
	closedir(tasks);
	return pids;
}

inline std::vector<std::string> split_lines(const std::string &text)
{
	std::vector<std::string> lines;
	size_t start = 0;
	while (start < text.size()) {
		size_t end = text.find('\n', start);
		if (end == std::string::npos)
			end = text.size();
		lines.push_back(text.substr(start, end - start));
		start = end + 1;
	}
	return lines;
}

/* Decodes the escapes of a JSON string body already checked by a strict pattern. */
inline std::string json_unescape(const std::string &body)
{
	std::string text;
	for (size_t i = 0; i < body.size(); i++) {
		if (body[i] != '\\') {
			text += body[i];
			continue;
		}
		char escaped = body[++i];
		switch (escaped) {
		case 'n': text += '\n'; break;
		case 't': text += '\t'; break;
		case 'r': text += '\r'; break;
		case 'b': text += '\b'; break;
		case 'f': text += '\f'; break;
		case 'u': {
			unsigned long code = strtoul(body.substr(i + 1, 4).c_str(), nullptr, 16);
			text += code < 0x80 ? static_cast<char>(code) : '?';
			i += 4;
			break;
		}
		default: text += escaped; break;
		}
	}
	return text;
}

/* The body of a JSON string: no raw quote, backslash or control byte, only the escapes JSON defines. */
#define JSON_STRING_BODY "((?:[^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})*)"

/* One log line {"level":"...","msg":"..."}, with exactly these two keys. */
struct LogLine {
	std::string level;
	std::string msg;
};

inline bool parse_log_line(const std::string &line, LogLine &entry)
{
	static const std::regex pattern("\\{\"level\":\"" JSON_STRING_BODY "\",\"msg\":\"" JSON_STRING_BODY "\"\\}");
	std::smatch match;
	if (!std::regex_match(line, match, pattern))
		return false;
	entry.level = json_unescape(match[1].str());
	entry.msg = json_unescape(match[2].str());
	return true;
}

/* The line {"stage1_pid":N,"stage2_pid":M} that stage 0 writes to the init pipe. */
struct StagePids {
	pid_t stage1 = 0;
	pid_t stage2 = 0;
};

inline bool parse_pid_line(const std::string &line, StagePids &pids)
{
	static const std::regex pattern("\\{\"stage1_pid\":([1-9][0-9]*),\"stage2_pid\":([1-9][0-9]*)\\}\n");
	std::smatch match;
	if (!std::regex_match(line, match, pattern))
		return false;
	pids.stage1 = static_cast<pid_t>(std::stol(match[1].str()));
	pids.stage2 = static_cast<pid_t>(std::stol(match[2].str()));
	return true;
}

/* An error record {"error":"...","status":N,"pids":[A,B]} from a failed stage. */
struct ErrorRecord {
	std::string error;
	int status = 0;
	pid_t pids[2] = { 0, 0 };
};

inline bool parse_error_record(const std::string &line, ErrorRecord &record)
{
	static const std::regex pattern("\\{\"error\":\"" JSON_STRING_BODY
					"\",\"status\":([0-9]+),\"pids\":\\[([0-9]+),([0-9]+)\\]\\}");
	std::smatch match;
	if (!std::regex_match(line, match, pattern))
		return false;
	record.error = json_unescape(match[1].str());
	record.status = std::stoi(match[2].str());
	record.pids[0] = static_cast<pid_t>(std::stol(match[3].str()));
	record.pids[1] = static_cast<pid_t>(std::stol(match[4].str()));
	return true;
}

#undef JSON_STRING_BODY

/* The namespace link of a process, such as "net:[4026531840]", or "" when unreadable. */
inline std::string namespace_link(pid_t pid, const char *name)
{
	char path[64];
	char target[256];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", static_cast<int>(pid), name);
	ssize_t length = readlink(path, target, sizeof(target) - 1);
	if (length < 0)
		return "";
	return std::string(target, static_cast<size_t>(length));
}

/* The file descriptors a started nsexec helper shares with the test. */
struct Helper {
	pid_t pid = -1;
	int init_pipe = -1; /* the test's end of the init pipe socketpair */
	int log_pipe = -1;  /* read end of the log pipe */
	int output = -1;    /* read end of the helper's stdout, or -1 when inherited */

	Helper() = default;
	Helper(const Helper &) = delete;
	Helper &operator=(const Helper &) = delete;

	~Helper()
	{
		for (int fd : { init_pipe, log_pipe, output }) {
			if (fd >= 0)
				close(fd);
		}
	}
};

/*
 * Starts nsexec with its init pipe on fd 3 and its log pipe on fd 4 at
 * log_level, and with stdout on a pipe when capture_output. Returns false
 * (with a test failure added) when anything fails.
 */
inline bool start_helper(Helper &helper, int log_level, bool capture_output)
{
	int init_pair[2];
	int log_pair[2];
	int output_pair[2] = { -1, -1 };

	std::string binary = nsexec_binary();
	if (access(binary.c_str(), X_OK) != 0) {
		ADD_FAILURE() << "nsexec binary " << binary << " is missing (" << strerror(errno)
			      << "); run swift build first or set NSEXEC_BINARY";
		return false;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, init_pair) < 0 || pipe2(log_pair, O_CLOEXEC) < 0 ||
	    (capture_output && pipe2(output_pair, O_CLOEXEC) < 0)) {
		ADD_FAILURE() << "cannot create the pipes for nsexec: " << strerror(errno);
		return false;
	}

	std::string level = "_LIBCONTAINER_LOGLEVEL=" + std::to_string(log_level);
	const char *envp[] = { "_LIBCONTAINER_INITPIPE=3", "_LIBCONTAINER_LOGPIPE=4", level.c_str(),
			       search_path, nullptr };
	const char *argv[] = { binary.c_str(), nullptr };

	pid_t pid = fork();
	if (pid < 0) {
		ADD_FAILURE() << "cannot fork nsexec: " << strerror(errno);
		return false;
	}
	if (pid == 0) {
		/* Move every source above the target numbers first, so that no dup2 overwrites a later source. */
		int init_fd = fcntl(init_pair[1], F_DUPFD_CLOEXEC, 100);
		int log_fd = fcntl(log_pair[1], F_DUPFD_CLOEXEC, 100);
		if (init_fd < 0 || log_fd < 0 || dup2(init_fd, 3) < 0 || dup2(log_fd, 4) < 0)
			_exit(120);
		if (capture_output && dup2(output_pair[1], 1) < 0)
			_exit(120);
		execve(binary.c_str(), const_cast<char *const *>(argv), const_cast<char *const *>(envp));
		_exit(127);
	}

	close(init_pair[1]);
	close(log_pair[1]);
	if (capture_output)
		close(output_pair[1]);
	helper.pid = pid;
	helper.init_pipe = init_pair[0];
	helper.log_pipe = log_pair[0];
	helper.output = output_pair[0];
	return true;
}

/* The results of one nsexec run. */
struct Outcome {
	pid_t helper_pid = -1;	   /* stage 0, the nsexec process itself */
	int helper_status = -1;	   /* its wait status */
	bool reported_pids = false;
	StagePids pids;
	int stage1_status = -1;
	int stage2_status = -1;
	std::vector<ErrorRecord> errors; /* error records on the init pipe */
	std::vector<std::string> other_records; /* init pipe lines that are neither pids nor errors */
	std::string log;		 /* everything on the log pipe */
	std::string output;		 /* the program's stdout, when captured */
	std::vector<pid_t> leftovers;	 /* children of the test that the run started and left behind */
};

/* Options of one run. */
struct RunOptions {
	std::vector<uint8_t> bootstrap;
	/* argv that stage 2 execs; see process_message. */
	std::vector<std::string> program = { "/bin/true" };
	std::vector<std::string> environment = { search_path };
	int log_level = NSEXEC_LOG_DEBUG;
	bool capture_output = false;
	/* Closes the test's sending side after the bootstrap message, so that a short one ends in EOF. */
	bool end_after_bootstrap = false;
	/* Called with the stage pids while stage 2 waits for its process message. */
	std::function<void(const StagePids &)> inspect_stage2;
};

inline bool exited_with(int status, int code)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == code;
}

/*
 * Runs nsexec once: sends the bootstrap message, reads the pid line, lets
 * stage 2 exec the program, reaps every stage, and collects what each pipe
 * carried. Stages named only in error records are reaped too.
 */
inline Outcome run_nsexec(const RunOptions &run)
{
	Outcome outcome;
	Helper helper;
	std::set<pid_t> children_before = child_pids();
	if (!start_helper(helper, run.log_level, run.capture_output))
		return outcome;

	/* nsexec may reject a message before reading all of it: a failed send is not an error here. */
	(void)send_all(helper.init_pipe, run.bootstrap);
	if (run.end_after_bootstrap)
		(void)shutdown(helper.init_pipe, SHUT_WR);

	bool timed_out = false;
	std::string first = read_from(helper.init_pipe, true, &timed_out);
	EXPECT_FALSE(timed_out) << "no line on the init pipe within " << timeout_ms << " ms";
	std::string rest;
	if (parse_pid_line(first, outcome.pids)) {
		outcome.reported_pids = true;
		if (run.inspect_stage2)
			run.inspect_stage2(outcome.pids);
		EXPECT_TRUE(send_all(helper.init_pipe, process_message(run.program, run.environment)))
			<< "cannot send the process message: " << strerror(errno);
	} else {
		rest = first;
	}
	(void)shutdown(helper.init_pipe, SHUT_WR);
	rest += read_from(helper.init_pipe, false, &timed_out);
	EXPECT_FALSE(timed_out) << "the init pipe stayed open for " << timeout_ms << " ms";

	for (const std::string &line : split_lines(rest)) {
		ErrorRecord record;
		if (parse_error_record(line, record))
			outcome.errors.push_back(record);
		else if (!line.empty())
			outcome.other_records.push_back(line);
	}

	outcome.helper_pid = helper.pid;
	outcome.helper_status = wait_for(helper.pid);
	if (outcome.reported_pids) {
		outcome.stage1_status = wait_for(outcome.pids.stage1);
		outcome.stage2_status = wait_for(outcome.pids.stage2);
	}
	for (const ErrorRecord &record : outcome.errors) {
		for (pid_t pid : record.pids) {
			if (pid > 0 && pid != outcome.pids.stage1 && pid != outcome.pids.stage2)
				(void)wait_for(pid);
		}
	}

	outcome.log = read_from(helper.log_pipe, false, &timed_out);
	EXPECT_FALSE(timed_out) << "the log pipe stayed open for " << timeout_ms << " ms";
	if (helper.output >= 0) {
		outcome.output = read_from(helper.output, false, &timed_out);
		EXPECT_FALSE(timed_out) << "the program's stdout stayed open for " << timeout_ms << " ms";
	}

	for (pid_t pid : child_pids()) {
		if (children_before.count(pid) == 0)
			outcome.leftovers.push_back(pid);
	}
	return outcome;
}

} // namespace bootstrap_test

#endif
