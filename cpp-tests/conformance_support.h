/*
 * Fixtures for the conformance tests: forked children that report back
 * through shared memory or pipes, target processes in new namespaces, and
 * running commands with their output captured. Every process a fixture
 * starts is reaped by it.
 *
 * Header-only, so that each conformance test file builds on its own.
 */
#ifndef NSEXEC_CONFORMANCE_SUPPORT_H
#define NSEXEC_CONFORMANCE_SUPPORT_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nsexec.h"

namespace conformance {

/* A target that is never stopped exits on SIGALRM after this many seconds. */
constexpr unsigned target_lifetime_seconds = 300;

/* The uid that unprivileged steps switch to (65534, "nobody" on Debian). */
constexpr uid_t unprivileged_uid = 65534;

/* Waits for pid, retrying on EINTR. Returns its exit status, 128+N for signal N, or -1. */
inline int reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* Reads fd until end of file. */
inline std::string read_to_end(int fd)
{
	std::string text;
	char chunk[512];
	for (;;) {
		ssize_t count = read(fd, chunk, sizeof(chunk));
		if (count < 0 && errno == EINTR)
			continue;
		if (count <= 0)
			break;
		text.append(chunk, static_cast<size_t>(count));
	}
	return text;
}

/* A value of type T in a MAP_SHARED page, so that a forked child can fill it in. */
template <typename T> class Shared {
public:
	Shared()
	{
		void *page = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			abort();
		memset(page, 0, sizeof(T));
		value_ = static_cast<T *>(page);
	}
	~Shared() { munmap(value_, sizeof(T)); }
	Shared(const Shared &) = delete;
	Shared &operator=(const Shared &) = delete;

	T *operator->() { return value_; }
	T &operator*() { return *value_; }

private:
	T *value_;
};

/*
 * Runs body in a forked child and returns the child's exit status. body must
 * end with _exit; if it returns, the child exits with 0. Only async-signal-safe
 * work and the C core belong in body, because gtest's state is a copy there.
 */
inline int run_in_child(const std::function<void()> &body)
{
	pid_t child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		body();
		_exit(0);
	}
	return reap(child);
}

/* Switches to uid and gid with no supplementary groups, which clears every capability. */
inline int switch_user(uid_t uid)
{
	if (setgroups(0, nullptr) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;

	/* Changing uid clears the dumpable flag, which would hide /proc/PID/ns from other processes of uid. */
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* The inode of /proc/PID/ns/NAME ("self" for the caller), or 0 if it cannot be read. */
inline uint64_t namespace_inode(const std::string &pid, const std::string &name)
{
	struct stat info;
	std::string path = "/proc/" + pid + "/ns/" + name;
	if (stat(path.c_str(), &info) < 0)
		return 0;
	return static_cast<uint64_t>(info.st_ino);
}

inline uint64_t namespace_inode(pid_t pid, const std::string &name)
{
	return namespace_inode(std::to_string(pid), name);
}

/*
 * A forked process that switched to uid (when given), unshared flags and
 * sleeps until the destructor kills and reaps it.
 */
class Target {
public:
	explicit Target(uint32_t flags, uid_t uid = static_cast<uid_t>(-1))
	{
		int ready[2];
		if (pipe2(ready, O_CLOEXEC) < 0) {
			error_ = errno;
			return;
		}

		pid_ = fork();
		if (pid_ == 0) {
			close(ready[0]);
			int error = 0;
			if ((uid != static_cast<uid_t>(-1) && switch_user(uid) < 0) || unshare(static_cast<int>(flags)) < 0)
				error = errno;
			(void)nsexec_write_all(ready[1], &error, sizeof(error));
			if (error != 0)
				_exit(1);
			alarm(target_lifetime_seconds);
			for (;;)
				pause();
		}

		close(ready[1]);
		if (pid_ < 0 || nsexec_read_all(ready[0], &error_, sizeof(error_)) < 0)
			error_ = errno;
		close(ready[0]);
	}

	~Target()
	{
		if (pid_ > 0) {
			kill(pid_, SIGKILL);
			reap(pid_);
		}
	}

	Target(const Target &) = delete;
	Target &operator=(const Target &) = delete;

	pid_t pid() const { return pid_; }
	/* 0 once the target runs in its namespaces, else the errno of the step that failed. */
	int error() const { return error_; }
	std::string ns_path(const std::string &name) const { return "/proc/" + std::to_string(pid_) + "/ns/" + name; }
	uint64_t inode(const std::string &name) const { return namespace_inode(pid_, name); }

private:
	pid_t pid_ = -1;
	int error_ = 0;
};

/* Output and exit status of a finished command. */
struct CommandResult {
	int status = -1;
	std::string out;
	std::string err;
};

/* Runs argv with stdin from /dev/null and stdout and stderr captured. */
inline CommandResult run_command(const std::vector<std::string> &argv)
{
	CommandResult result;
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return result;
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(out[0]);
		close(out[1]);
		return result;
	}

	std::vector<char *> args;
	for (const std::string &argument : argv)
		args.push_back(const_cast<char *>(argument.c_str()));
	args.push_back(nullptr);

	pid_t child = fork();
	if (child == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		execvp(args[0], args.data());
		_exit(127);
	}
	close(out[1]);
	close(err[1]);

	if (child > 0) {
		/*
		 * Reads stdout to the end, then stderr. A command that fills the
		 * stderr pipe (64 KiB) before closing stdout would block, and the
		 * tests run none that do.
		 */
		result.out = read_to_end(out[0]);
		result.err = read_to_end(err[0]);
		result.status = reap(child);
	}
	close(out[0]);
	close(err[0]);
	return result;
}

/* The nsexec CLI: $NSEXEC_BINARY, else the .build/debug/nsexec that CMake was configured with. */
inline std::string nsexec_binary()
{
	const char *configured = getenv("NSEXEC_BINARY");
	if (configured != nullptr && *configured != '\0')
		return configured;
#ifdef NSEXEC_DEFAULT_BINARY
	return NSEXEC_DEFAULT_BINARY;
#else
	return ".build/debug/nsexec";
#endif
}

/* Sleeps for milliseconds, resuming after signals. */
inline void sleep_ms(long milliseconds)
{
	struct timespec delay = { milliseconds / 1000, (milliseconds % 1000) * 1000000 };
	while (nanosleep(&delay, &delay) < 0 && errno == EINTR)
		;
}

/* The text of the /proc/PROCESS/ns/NAME link, such as "net:[4026531840]", or "". */
inline std::string namespace_link(const std::string &process, const std::string &name)
{
	char target[256];
	std::string path = "/proc/" + process + "/ns/" + name;
	ssize_t length = readlink(path.c_str(), target, sizeof(target) - 1);
	if (length < 0)
		return "";
	return std::string(target, static_cast<size_t>(length));
}

/*
 * Runs `unshare --fork OPTIONS sleep 600` with stdin on /dev/null. unshare
 * forks once every namespace exists, and the child execs sleep, which is then
 * the process in all of them. The destructor kills sleep and reaps unshare.
 */
class UnshareSleep {
public:
	explicit UnshareSleep(const std::vector<std::string> &options)
	{
		launcher_ = fork();
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
		for (int i = 0; launcher_ > 0 && i < 1000 && pid_ == 0; i++) {
			pid_ = sleeping_child();
			if (pid_ == 0)
				sleep_ms(10);
		}
	}

	~UnshareSleep()
	{
		if (pid_ > 0)
			kill(pid_, SIGKILL);
		if (launcher_ > 0) {
			kill(launcher_, SIGKILL);
			reap(launcher_);
		}
	}

	UnshareSleep(const UnshareSleep &) = delete;
	UnshareSleep &operator=(const UnshareSleep &) = delete;

	/* The sleep process, or 0 when it did not start within 10 s. */
	pid_t pid() const { return pid_; }
	/* The unshare process: a child of the caller for as long as the object lives. */
	pid_t launcher() const { return launcher_; }

private:
	/* The child of unshare whose command is "sleep", or 0. */
	pid_t sleeping_child() const
	{
		std::ifstream list("/proc/" + std::to_string(launcher_) + "/task/" + std::to_string(launcher_) +
				   "/children");
		pid_t child;
		while (list >> child) {
			std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
			std::string name;
			if (comm >> name && name == "sleep")
				return child;
		}
		return 0;
	}

	pid_t launcher_ = -1;
	pid_t pid_ = 0;
};

} // namespace conformance

#endif
