/*
 * Conformance tests of clone_parent (clone.c). The STAGE_PARENT/STAGE_CHILD
 * sequence runs in a forked intermediate process, so that the CLONE_PARENT
 * child is the intermediate's sibling and a child of the test process,
 * which reaps both.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "conformance_support.h"
#include "nsexec.h"

using namespace conformance;

namespace {

/* Observations of each stage of the sequence, written into shared memory. */
struct CloneObservation {
	pid_t caller_pid;
	pid_t caller_ppid;
	uint64_t caller_userns;
	pid_t clone_result;
	pid_t pid_received;
	ssize_t bytes_read;

	pid_t child_pid;
	pid_t child_ppid;
	long marker_seen;
	uint64_t child_userns_before;
	uint64_t child_userns_after;
	int unshare_error;
	ssize_t bytes_written;
};

/* The marker's value when clone_parent is called, and the value the caller sets right after. */
constexpr long marker_at_call = 5;
constexpr long marker_after_call = 7;

uint64_t own_user_namespace()
{
	struct stat info;
	if (stat("/proc/self/ns/user", &info) < 0)
		return 0;
	return static_cast<uint64_t>(info.st_ino);
}

/*
 * The sequence. The child longjmps into this frame, skipping every frame
 * between setjmp and clone_parent, so nothing here may need a destructor.
 */
[[noreturn]] void run_sequence(CloneObservation *observed)
{
	jmp_buf env;
	int sync_pipe[2];
	volatile long marker = 1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pipe) < 0)
		_exit(1);

	switch (setjmp(env)) {
	case STAGE_PARENT: {
		observed->caller_pid = getpid();
		observed->caller_ppid = getppid();
		observed->caller_userns = own_user_namespace();

		marker = marker_at_call;
		pid_t child = clone_parent(&env, STAGE_CHILD);
		marker = marker_after_call;
		observed->clone_result = child;
		if (child < 0)
			_exit(2);

		close(sync_pipe[0]);
		pid_t received = 0;
		observed->bytes_read = read(sync_pipe[1], &received, sizeof(received));
		observed->pid_received = received;
		_exit(0);
	}
	case STAGE_CHILD: {
		observed->marker_seen = marker;
		close(sync_pipe[1]);

		observed->child_userns_before = own_user_namespace();
		observed->unshare_error = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
		observed->child_userns_after = own_user_namespace();

		pid_t self = getpid();
		observed->child_pid = self;
		observed->child_ppid = getppid();
		observed->bytes_written = write(sync_pipe[0], &self, sizeof(self));
		_exit(0);
	}
	}
	_exit(3);
}

struct CloneRun {
	CloneObservation observed;
	int caller_status;
	int child_status;
};

/* Runs the sequence under an intermediate and reaps the intermediate and the clone_parent child. */
CloneRun run_clone_parent()
{
	Shared<CloneObservation> observed;
	CloneRun run = {};
	run.child_status = -1;

	pid_t intermediate = fork();
	if (intermediate == 0)
		run_sequence(&*observed);
	run.caller_status = intermediate > 0 ? reap(intermediate) : -1;

	if (observed->clone_result > 0)
		run.child_status = reap(observed->clone_result);
	run.observed = *observed;
	return run;
}

} // namespace

TEST(clone_parent, returns_child_pid)
{
	CloneRun run = run_clone_parent();

	ASSERT_EQ(run.caller_status, 0);
	EXPECT_GT(run.observed.clone_result, 0);
	EXPECT_EQ(run.observed.clone_result, run.observed.child_pid);
	EXPECT_NE(run.observed.clone_result, run.observed.caller_pid);
}

TEST(clone_parent, child_is_sibling)
{
	CloneRun run = run_clone_parent();

	ASSERT_EQ(run.caller_status, 0);
	EXPECT_EQ(run.observed.caller_ppid, getpid());
	EXPECT_EQ(run.observed.child_ppid, run.observed.caller_ppid);
	EXPECT_NE(run.observed.child_ppid, run.observed.caller_pid);

	/* Only the caller's parent can reap the child, and did. */
	EXPECT_EQ(run.child_status, 0);
}

TEST(clone_parent, child_sees_memory_at_call)
{
	CloneRun run = run_clone_parent();

	ASSERT_EQ(run.caller_status, 0);
	EXPECT_EQ(run.observed.marker_seen, marker_at_call);
}

TEST(clone_parent, child_unshares_user_namespace)
{
	CloneRun run = run_clone_parent();

	ASSERT_EQ(run.caller_status, 0);
	EXPECT_EQ(run.observed.unshare_error, 0) << strerror(run.observed.unshare_error);
	EXPECT_NE(run.observed.caller_userns, 0u);
	EXPECT_EQ(run.observed.child_userns_before, run.observed.caller_userns);
	EXPECT_NE(run.observed.child_userns_after, 0u);
	EXPECT_NE(run.observed.child_userns_after, run.observed.caller_userns);
}

TEST(clone_parent, pid_reaches_parent)
{
	CloneRun run = run_clone_parent();

	ASSERT_EQ(run.caller_status, 0);
	EXPECT_EQ(run.observed.bytes_written, static_cast<ssize_t>(sizeof(pid_t)));
	EXPECT_EQ(run.observed.bytes_read, static_cast<ssize_t>(sizeof(pid_t)));
	EXPECT_EQ(run.observed.pid_received, run.observed.clone_result);
	EXPECT_EQ(run.child_status, 0);
}
