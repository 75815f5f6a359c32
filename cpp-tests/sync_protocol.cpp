/* Conformance tests of the stage messages and the read and write helpers in sync.c. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "conformance_support.h"
#include "nsexec.h"

using namespace conformance;

namespace {

/* The one-byte messages and the values runc's nsexec.c uses for them (SYNC_USERMAP_PLS = 0x40, ...). */
struct KnownMessage {
	enum nsexec_sync message;
	unsigned char byte;
	const char *name;
};

constexpr KnownMessage known_messages[] = {
	{ NSEXEC_SYNC_USERMAP_REQUEST, 0x40, "usermap_request" },
	{ NSEXEC_SYNC_USERMAP_DONE, 0x41, "usermap_done" },
	{ NSEXEC_SYNC_PID, 0x42, "pid" },
	{ NSEXEC_SYNC_PID_RECEIVED, 0x43, "pid_received" },
	{ NSEXEC_SYNC_GO, 0x44, "go" },
	{ NSEXEC_SYNC_FINISHED, 0x45, "finished" },
	{ NSEXEC_SYNC_TIMEOFFSETS_REQUEST, 0x46, "timeoffsets_request" },
	{ NSEXEC_SYNC_TIMEOFFSETS_DONE, 0x47, "timeoffsets_done" },
};

/* A socketpair closed when the test ends; type is SOCK_STREAM as between the stages, or SOCK_SEQPACKET. */
class SocketPair {
public:
	explicit SocketPair(int type = SOCK_STREAM)
	{
		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds_) < 0)
			fds_[0] = fds_[1] = -1;
	}
	~SocketPair()
	{
		close_end(0);
		close_end(1);
	}
	SocketPair(const SocketPair &) = delete;
	SocketPair &operator=(const SocketPair &) = delete;

	int operator[](int end) const { return fds_[end]; }
	void close_end(int end)
	{
		if (fds_[end] >= 0)
			close(fds_[end]);
		fds_[end] = -1;
	}

private:
	int fds_[2];
};

/*
 * Blocks SIGPIPE for the calling thread while it exists, so that a SIGPIPE
 * raised by a write to a closed peer stays pending instead of killing the
 * test. The destructor discards a pending SIGPIPE and restores the mask.
 */
class BlockSigpipe {
public:
	BlockSigpipe()
	{
		sigemptyset(&sigpipe_);
		sigaddset(&sigpipe_, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &sigpipe_, &previous_);
	}
	~BlockSigpipe()
	{
		struct timespec no_wait = { 0, 0 };
		while (sigtimedwait(&sigpipe_, nullptr, &no_wait) == SIGPIPE)
			;
		pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
	}
	BlockSigpipe(const BlockSigpipe &) = delete;
	BlockSigpipe &operator=(const BlockSigpipe &) = delete;

	/* Returns whether a SIGPIPE is pending, for the thread or the process. */
	bool pending() const
	{
		sigset_t set;
		sigpending(&set);
		return sigismember(&set, SIGPIPE) == 1;
	}

private:
	sigset_t sigpipe_;
	sigset_t previous_;
};

} // namespace

TEST(sync, message_bytes_match_runc)
{
	for (const KnownMessage &known : known_messages) {
		EXPECT_EQ(static_cast<int>(known.message), known.byte) << known.name;
		EXPECT_STREQ(nsexec_sync_name(known.message), known.name);
	}
}

TEST(sync, unknown_message_has_no_name)
{
	for (int message : { 0, 0x3f, 0x48, 0xff, -1 })
		EXPECT_EQ(nsexec_sync_name(message), nullptr) << "message " << message;
}

TEST(sync, every_message_round_trips)
{
	SocketPair pair;
	ASSERT_GE(pair[0], 0) << strerror(errno);

	for (const KnownMessage &known : known_messages) {
		/* On the wire: exactly one byte with the message's value. */
		ASSERT_EQ(nsexec_sync_send(pair[0], known.message), 0) << known.name << ": " << strerror(errno);
		unsigned char wire[2] = { 0, 0 };
		ASSERT_EQ(recv(pair[1], wire, sizeof(wire), MSG_DONTWAIT), 1) << known.name;
		EXPECT_EQ(wire[0], known.byte) << known.name;

		ASSERT_EQ(nsexec_sync_send(pair[0], known.message), 0) << known.name << ": " << strerror(errno);
		EXPECT_EQ(nsexec_sync_expect(pair[1], known.message), 0) << known.name << ": " << strerror(errno);
	}
}

TEST(sync, unexpected_message_fails)
{
	SocketPair pair;
	ASSERT_GE(pair[0], 0) << strerror(errno);

	ASSERT_EQ(nsexec_sync_send(pair[0], NSEXEC_SYNC_GO), 0) << strerror(errno);
	errno = 0;
	EXPECT_EQ(nsexec_sync_expect(pair[1], NSEXEC_SYNC_FINISHED), -1);
	EXPECT_EQ(errno, EPROTO);
}

TEST(sync, short_read_fails)
{
	SocketPair pair;
	ASSERT_GE(pair[0], 0) << strerror(errno);

	/* 3 of the 8 bytes, then the peer goes away. */
	ASSERT_EQ(write(pair[0], "abc", 3), 3);
	pair.close_end(0);

	char buffer[8];
	errno = 0;
	EXPECT_EQ(nsexec_read_all(pair[1], buffer, sizeof(buffer)), -1);
	EXPECT_EQ(errno, EPIPE);
}

TEST(sync, peer_closed_early_fails)
{
	BlockSigpipe block;

	SocketPair reading;
	ASSERT_GE(reading[0], 0) << strerror(errno);
	reading.close_end(0);
	errno = 0;
	EXPECT_EQ(nsexec_sync_expect(reading[1], NSEXEC_SYNC_PID), -1);
	EXPECT_EQ(errno, EPIPE);

	SocketPair writing;
	ASSERT_GE(writing[0], 0) << strerror(errno);
	writing.close_end(1);
	errno = 0;
	EXPECT_EQ(nsexec_sync_send(writing[0], NSEXEC_SYNC_PID_RECEIVED), -1);
	EXPECT_EQ(errno, EPIPE);
}

TEST(sync, send_raises_no_sigpipe)
{
	BlockSigpipe block;
	SocketPair pair;
	ASSERT_GE(pair[0], 0) << strerror(errno);
	pair.close_end(1);

	/* A stage whose peer died must live to report it, so the socket write may not raise SIGPIPE. */
	EXPECT_EQ(nsexec_sync_send(pair[0], NSEXEC_SYNC_GO), -1);
	EXPECT_FALSE(block.pending());
}

TEST(sync, short_counts_are_retried)
{
	/* Each read(2) on a SOCK_SEQPACKET socket returns at most one packet, which forces short counts. */
	SocketPair pair(SOCK_SEQPACKET);
	ASSERT_GE(pair[0], 0) << strerror(errno);
	ASSERT_EQ(write(pair[0], "abc", 3), 3);
	ASSERT_EQ(write(pair[0], "de", 2), 2);
	ASSERT_EQ(write(pair[0], "fgh", 3), 3);

	char buffer[9] = {};
	ASSERT_EQ(nsexec_read_all(pair[1], buffer, 8), 0) << strerror(errno);
	EXPECT_STREQ(buffer, "abcdefgh");
}

namespace {

/* Observations of the reader in read_retries_after_eintr. */
struct InterruptedRead {
	int result;
	int error;
	int signals_caught;
	char data[9];
};

volatile sig_atomic_t signals_caught;

void count_signal(int)
{
	signals_caught++;
}

/* The state letter of /proc/PID/stat ('S' while sleeping), or 0. */
char process_state(pid_t pid)
{
	int fd = open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	std::string text = read_to_end(fd);
	close(fd);
	size_t end = text.rfind(')');
	if (end == std::string::npos || end + 2 >= text.size())
		return 0;
	return text[end + 2];
}

} // namespace

TEST(sync, read_retries_after_eintr)
{
	Shared<InterruptedRead> observed;

	/* The reader gets its own process, so that the handler and the signal stay out of the test runner. */
	int status = run_in_child([&] {
		int pair[2];
		struct sigaction action = {};
		action.sa_handler = count_signal; /* no SA_RESTART: read(2) fails with EINTR */
		sigemptyset(&action.sa_mask);
		sigset_t usr1;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		if (sigaction(SIGUSR1, &action, nullptr) < 0 || sigprocmask(SIG_UNBLOCK, &usr1, nullptr) < 0 ||
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
			_exit(1);

		pid_t reader = getpid();
		pid_t writer = fork();
		if (writer < 0)
			_exit(1);
		if (writer == 0) {
			for (int i = 0; i < 5000 && process_state(reader) != 'S'; i++)
				sleep_ms(1);
			if (kill(reader, SIGUSR1) < 0)
				_exit(1);
			sleep_ms(100);
			_exit(nsexec_write_all(pair[1], "eintr-ok", 8) == 0 ? 0 : 1);
		}

		observed->result = nsexec_read_all(pair[0], observed->data, 8);
		observed->error = observed->result < 0 ? errno : 0;
		observed->signals_caught = signals_caught;
		_exit(reap(writer) == 0 ? 0 : 2);
	});

	ASSERT_EQ(status, 0) << "the reader or the writer failed";
	EXPECT_EQ(observed->signals_caught, 1);
	EXPECT_EQ(observed->result, 0) << strerror(observed->error);
	EXPECT_STREQ(observed->data, "eintr-ok");
}
