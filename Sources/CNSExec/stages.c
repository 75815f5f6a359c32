/*
 * The three stages. Stage 0 writes what stage 1 cannot write for itself
 * (uid and gid maps, time offsets) and relays pids. Stage 1 joins and
 * unshares namespaces. Joining a PID or time namespace only affects children,
 * so stage 1 then clones stage 2, which is the first process inside every
 * target namespace and returns to the caller to exec the program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nsexec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* The socketpairs between the stages: [0] for the later stage, [1] for stage 0. */
struct stage_sockets {
	int child[2];
	int grandchild[2];
};

static void close_pair(int pair[2])
{
	(void)close(pair[0]);
	(void)close(pair[1]);
}

static int write_file(const char *path, const char *data, size_t length)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t written = write(fd, data, length);
	int error = errno;
	(void)close(fd);
	if (written < 0) {
		errno = error;
		return -1;
	}
	if ((size_t)written != length) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/*
 * Runs newuidmap or newgidmap for a rootless caller whose own write was
 * rejected. The helper takes the pid and the map as "inside outside count"
 * triples on its command line.
 */
static int run_map_helper(const char *helper, pid_t pid, const char *map, size_t length)
{
	char pid_text[16];
	char copy[4096];
	char *argv[3 + 3 * 64 + 1];
	size_t argc = 0;

	if (length >= sizeof(copy)) {
		errno = E2BIG;
		return -1;
	}
	memcpy(copy, map, length);
	copy[length] = '\0';
	snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);

	argv[argc++] = (char *)helper;
	argv[argc++] = pid_text;
	for (char *save = NULL, *word = strtok_r(copy, " \t\n", &save); word != NULL;
	     word = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= sizeof(argv) / sizeof(argv[0]) - 1) {
			errno = E2BIG;
			return -1;
		}
		argv[argc++] = word;
	}
	argv[argc] = NULL;

	pid_t child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		execv(helper, argv);
		_exit(NSEXEC_EXIT_NOT_FOUND);
	}

	int status;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

static int write_id_map(pid_t pid, const char *kind, const char *map, size_t length, const char *helper)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, kind);
	if (write_file(path, map, length) == 0)
		return 0;
	if (errno == EPERM && helper != NULL)
		return run_map_helper(helper, pid, map, length);
	return -1;
}

/* Stage 0's reply to stage 1's request for uid and gid maps. */
static int write_user_maps(const struct nsexec_config *config, pid_t stage1, char *error, size_t error_size)
{
	char path[64];

	/*
	 * A rootless caller with one mapping may only write gid_map after
	 * setgroups is denied; runc does the same.
	 */
	if (config->rootless_euid && !config->setgroups_allowed) {
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)stage1);
		if (write_file(path, "deny", 4) < 0 && errno != ENOENT) {
			nsexec_format_error(error, error_size, errno, NULL, "cannot write deny to setgroups of stage 1");
			return -1;
		}
	}

	if (config->uid_map_length > 0 &&
	    write_id_map(stage1, "uid_map", config->uid_map, config->uid_map_length, config->uid_map_path) < 0) {
		char what[128];
		snprintf(what, sizeof(what), "cannot write uid map of stage 1 (pid %d)", (int)stage1);
		nsexec_format_error(error, error_size, errno, "check the map and that the caller may map these ids",
				    what);
		return -1;
	}
	if (config->gid_map_length > 0 &&
	    write_id_map(stage1, "gid_map", config->gid_map, config->gid_map_length, config->gid_map_path) < 0) {
		char what[128];
		snprintf(what, sizeof(what), "cannot write gid map of stage 1 (pid %d)", (int)stage1);
		nsexec_format_error(error, error_size, errno, "check the map and that the caller may map these ids",
				    what);
		return -1;
	}
	return 0;
}

static int write_time_offsets(const struct nsexec_config *config, pid_t stage1, char *error, size_t error_size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", (int)stage1);
	if (write_file(path, config->timens_offsets, config->timens_offsets_length) < 0) {
		char what[128];
		snprintf(what, sizeof(what), "cannot write time offsets to %s", path);
		nsexec_format_error(error, error_size, errno, "offsets are lines of 'monotonic|boottime SECONDS NANOSECONDS'",
				    what);
		return -1;
	}
	return 0;
}

static void kill_and_reap(pid_t pid, bool reap)
{
	if (pid <= 0)
		return;
	(void)kill(pid, SIGKILL);
	if (reap) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
}

/*
 * Stage 0's side of the protocol, once stage 1 exists. Returns 0 with the
 * stage 2 pid, or -1 with error set; never exits, so that the inline path can
 * report instead of dying.
 */
static int serve_stage1(const struct nsexec_config *config, const struct stage_sockets *sockets, pid_t stage1,
			pid_t *stage2, char *error, size_t error_size)
{
	int fd = sockets->child[1];
	*stage2 = 0;

	for (;;) {
		unsigned char message;
		if (nsexec_read_all(fd, &message, 1) < 0) {
			nsexec_format_error(error, error_size, errno == EPIPE ? 0 : errno, NULL,
					    "stage 1 exited before it finished");
			return -1;
		}
		nsexec_log(NSEXEC_LOG_DEBUG, "received %s from stage 1",
			   nsexec_sync_name(message) != NULL ? nsexec_sync_name(message) : "an unknown message");

		switch (message) {
		case NSEXEC_SYNC_USERMAP_REQUEST:
			if (write_user_maps(config, stage1, error, error_size) < 0)
				return -1;
			nsexec_log(NSEXEC_LOG_DEBUG, "wrote the uid and gid maps of stage 1 (pid %d)", (int)stage1);
			if (nsexec_sync_send(fd, NSEXEC_SYNC_USERMAP_DONE) < 0)
				goto send_failed;
			break;

		case NSEXEC_SYNC_TIMEOFFSETS_REQUEST:
			if (write_time_offsets(config, stage1, error, error_size) < 0)
				return -1;
			nsexec_log(NSEXEC_LOG_DEBUG, "wrote the time offsets of stage 1 (pid %d)", (int)stage1);
			if (nsexec_sync_send(fd, NSEXEC_SYNC_TIMEOFFSETS_DONE) < 0)
				goto send_failed;
			break;

		case NSEXEC_SYNC_PID:
			if (nsexec_read_all(fd, stage2, sizeof(*stage2)) < 0) {
				nsexec_format_error(error, error_size, errno, NULL, "cannot read the stage 2 pid from stage 1");
				return -1;
			}
			/*
			 * Stage 2 may go as soon as its pid is known here. Stage 1
			 * has nothing left to do but acknowledge, so waiting for
			 * its FINISHED first would only delay the program.
			 */
			if (nsexec_sync_send(sockets->grandchild[1], NSEXEC_SYNC_GO) < 0) {
				nsexec_format_error(error, error_size, errno == EPIPE ? 0 : errno, NULL,
						    "stage 2 exited before it started");
				return -1;
			}
			if (nsexec_sync_send(fd, NSEXEC_SYNC_PID_RECEIVED) < 0)
				goto send_failed;
			break;

		case NSEXEC_SYNC_FINISHED:
			if (*stage2 <= 0) {
				nsexec_format_error(error, error_size, 0, NULL, "stage 1 finished without a stage 2 pid");
				return -1;
			}
			goto stage1_done;

		default:
			snprintf(error, error_size, "unexpected message 0x%02x from stage 1", message);
			return -1;
		}
	}

stage1_done:
	if (nsexec_sync_expect(sockets->grandchild[1], NSEXEC_SYNC_FINISHED) < 0) {
		nsexec_format_error(error, error_size, errno == EPIPE ? 0 : errno, NULL, "stage 2 exited before it started");
		return -1;
	}
	return 0;

send_failed:
	nsexec_format_error(error, error_size, errno, NULL, "cannot send to stage 1");
	return -1;
}

/* Whether stage 1 joins an existing PID namespace, through the pidfd or a namespace file. */
static bool joins_pid_namespace(const struct nsexec_config *config)
{
	if (config->pidfd >= 0 && (config->pidfd_flags & CLONE_NEWPID))
		return true;
	for (size_t i = 0; i < config->join_count; i++) {
		if (config->joins[i].flag == CLONE_NEWPID)
			return true;
	}
	return false;
}

/* Stage 1: join, unshare, clone stage 2, report its pid, exit. */
__attribute__((noreturn)) static void run_stage1(const struct nsexec_config *config, const struct stage_sockets *sockets,
						 jmp_buf *env)
{
	int fd = sockets->child[0];
	struct nsexec_config own = *config;

	nsexec_log_stage("stage-1");
	(void)close(sockets->child[1]);
	(void)close(sockets->grandchild[1]);

	/*
	 * Stages must not outlive the supervisor that waits for them.
	 * NOTE: the death signal follows the parent thread, not the process: on
	 * the helper path that is the thread that spawned the helper, so a
	 * supervisor thread that exits before the stages finish kills them.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot set the parent death signal of stage 1");

	nsexec_test_hook("stage1-start");
	nsexec_open_namespace_files(&own);
	nsexec_join_namespaces(&own);
	nsexec_test_hook("stage1-joined");

	if (config->clone_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot unshare the user namespace");
		nsexec_log(NSEXEC_LOG_DEBUG, "unshared the user namespace");

		/* Stage 0 writes our maps through /proc, which needs us dumpable. */
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot make stage 1 dumpable for its maps");
		if (nsexec_sync_send(fd, NSEXEC_SYNC_USERMAP_REQUEST) < 0 ||
		    nsexec_sync_expect(fd, NSEXEC_SYNC_USERMAP_DONE) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "stage 0 did not write the uid and gid maps");
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot make stage 1 non-dumpable");

		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, "map id 0 in the uid and gid maps",
				    "cannot become root in the new user namespace");
	}

	uint32_t others = config->clone_flags & ~(uint32_t)CLONE_NEWUSER;
	if (others != 0) {
		if (unshare((int)others) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot unshare namespaces 0x%x", others);
		nsexec_log(NSEXEC_LOG_DEBUG, "unshared namespaces 0x%x", others);
	}

	/* Offsets must be in place before the first process enters the time namespace. */
	if ((config->clone_flags & CLONE_NEWTIME) && config->timens_offsets_length > 0) {
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot make stage 1 dumpable for its time offsets");
		if (nsexec_sync_send(fd, NSEXEC_SYNC_TIMEOFFSETS_REQUEST) < 0 ||
		    nsexec_sync_expect(fd, NSEXEC_SYNC_TIMEOFFSETS_DONE) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "stage 0 did not write the time offsets");
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot make stage 1 non-dumpable");
	}

	/* --no-fork: this process goes on as stage 2 and becomes the program. */
	if (config->no_fork) {
		pid_t self = getpid();
		if (nsexec_sync_send(fd, NSEXEC_SYNC_PID) < 0 || nsexec_write_all(fd, &self, sizeof(self)) < 0 ||
		    nsexec_sync_expect(fd, NSEXEC_SYNC_PID_RECEIVED) < 0 || nsexec_sync_send(fd, NSEXEC_SYNC_FINISHED) < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot report the stage 1 pid to stage 0");
		longjmp(*env, STAGE_INIT);
	}

	pid_t stage2 = clone_parent(env, STAGE_INIT);
	if (stage2 < 0) {
		/* The kernel gives ENOMEM for a fork into a PID namespace whose init has exited. */
		int error = errno;
		const char *hint = error == ENOMEM && joins_pid_namespace(config)
					   ? "the init of the target's PID namespace exited; start the target again"
					   : NULL;
		nsexec_fail(NSEXEC_EXIT_FAILURE, error, hint, "cannot clone stage 2");
	}
	nsexec_log_started(stage2);
	nsexec_log(NSEXEC_LOG_DEBUG, "started stage 2 (pid %d)", (int)stage2);

	if (nsexec_sync_send(fd, NSEXEC_SYNC_PID) < 0 || nsexec_write_all(fd, &stage2, sizeof(stage2)) < 0 ||
	    nsexec_sync_expect(fd, NSEXEC_SYNC_PID_RECEIVED) < 0 || nsexec_sync_send(fd, NSEXEC_SYNC_FINISHED) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot report the stage 2 pid to stage 0");

	_exit(0);
}

/* Stage 2: wait for stage 0's go, then return to the caller. */
static void run_stage2(const struct stage_sockets *sockets)
{
	int fd = sockets->grandchild[0];

	nsexec_log_stage("stage-2");
	(void)close(sockets->child[0]);
	(void)close(sockets->child[1]);
	(void)close(sockets->grandchild[1]);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot set the parent death signal of stage 2");
	nsexec_test_hook("stage2-start");
	if (nsexec_sync_expect(fd, NSEXEC_SYNC_GO) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno == EPIPE ? 0 : errno, NULL, "stage 0 exited before stage 2 started");
	if (nsexec_sync_send(fd, NSEXEC_SYNC_FINISHED) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot confirm the start of stage 2");
	(void)close(fd);
	nsexec_log(NSEXEC_LOG_DEBUG, "in the target namespaces");
}

static int open_sockets(struct stage_sockets *sockets, char *error, size_t error_size)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets->child) < 0) {
		nsexec_format_error(error, error_size, errno, NULL, "cannot create the stage 1 socketpair");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets->grandchild) < 0) {
		nsexec_format_error(error, error_size, errno, NULL, "cannot create the stage 2 socketpair");
		close_pair(sockets->child);
		return -1;
	}
	return 0;
}

/* Prepares stage 0 before it clones stage 1, which inherits the result. */
static int prepare_stage0(const struct nsexec_config *config, char *error, size_t error_size)
{
	/* Written while still dumpable: /proc/self files of a non-dumpable process are root-owned. */
	if (config->oom_score_adj_length > 0 &&
	    write_file("/proc/self/oom_score_adj", config->oom_score_adj, config->oom_score_adj_length) < 0) {
		nsexec_format_error(error, error_size, errno, "give an integer from -1000 to 1000",
				    "cannot write oom_score_adj");
		return -1;
	}

	/* Nothing in the target may ptrace a stage or open its /proc files. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		nsexec_format_error(error, error_size, errno, NULL, "cannot make the stages non-dumpable");
		return -1;
	}
	return 0;
}

int nsexec_run_stages(const struct nsexec_config *config, int report_fd)
{
	jmp_buf env;
	struct stage_sockets sockets;
	char error[1024];

	nsexec_log_stage("stage-0");
	if (prepare_stage0(config, error, sizeof(error)) < 0 || open_sockets(&sockets, error, sizeof(error)) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "%s", error);

	switch (setjmp(env)) {
	case STAGE_PARENT: {
		pid_t stage2;
		pid_t stage1 = clone_parent(&env, STAGE_CHILD);
		if (stage1 < 0)
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot clone stage 1");
		nsexec_log_started(stage1);
		nsexec_log(NSEXEC_LOG_DEBUG, "started stage 1 (pid %d)", (int)stage1);
		(void)close(sockets.child[0]);
		(void)close(sockets.grandchild[0]);

		if (serve_stage1(config, &sockets, stage1, &stage2, error, sizeof(error)) < 0) {
			if (stage2 > 0)
				nsexec_log_started(stage2);
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "%s", error);
		}

		char line[64];
		int length = snprintf(line, sizeof(line), "{\"stage1_pid\":%d,\"stage2_pid\":%d}\n", (int)stage1,
				      (int)stage2);
		if (nsexec_write_all(report_fd, line, (size_t)length) < 0) {
			/*
			 * EPIPE: the parent closed the init pipe. Stage 2 reads its
			 * process message from that pipe next, finds it closed and
			 * reports that, so a line from here would only repeat it.
			 */
			if (errno == EPIPE)
				_exit(NSEXEC_EXIT_FAILURE);
			nsexec_log_started(stage2);
			nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot write the stage pids to the init pipe");
		}
		nsexec_log(NSEXEC_LOG_DEBUG, "stage 1 (pid %d) and stage 2 (pid %d) reported", (int)stage1,
			   (int)stage2);
		_exit(0);
	}
	case STAGE_CHILD:
		run_stage1(config, &sockets, &env);
	case STAGE_INIT:
		run_stage2(&sockets);
		return STAGE_INIT;
	}
	nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "unexpected stage value from setjmp");
}

int nsexec_run_stages_inline(const struct nsexec_config *config, int report_fd, struct nsexec_stage_pids *pids,
			     char *error, size_t error_size)
{
	jmp_buf env;
	struct stage_sockets sockets;

	nsexec_log_set_report(report_fd);
	nsexec_log_stage("stage-0");
	if (prepare_stage0(config, error, error_size) < 0 || open_sockets(&sockets, error, error_size) < 0)
		return -1;

	switch (setjmp(env)) {
	case STAGE_PARENT: {
		pid_t stage2 = 0;
		pid_t stage1 = clone_child(&env, STAGE_CHILD);
		if (stage1 < 0) {
			nsexec_format_error(error, error_size, errno, NULL, "cannot clone stage 1");
			close_pair(sockets.child);
			close_pair(sockets.grandchild);
			return -1;
		}
		(void)close(sockets.child[0]);
		(void)close(sockets.grandchild[0]);

		int result = serve_stage1(config, &sockets, stage1, &stage2, error, error_size);
		(void)close(sockets.child[1]);
		(void)close(sockets.grandchild[1]);
		if (result < 0) {
			kill_and_reap(stage1, true);
			kill_and_reap(stage2, true);
			return -1;
		}

		pids->stage1 = stage1;
		pids->stage2 = stage2;
		return STAGE_PARENT;
	}
	case STAGE_CHILD:
		run_stage1(config, &sockets, &env);
	case STAGE_INIT:
		run_stage2(&sockets);
		return STAGE_INIT;
	}
	nsexec_format_error(error, error_size, 0, NULL, "unexpected stage value from setjmp");
	return -1;
}

bool nsexec_direct_possible(const struct nsexec_config *config)
{
	if (config->no_fork || config->clone_flags != 0 || config->uid_map_length > 0 || config->gid_map_length > 0 ||
	    config->timens_offsets_length > 0)
		return false;
	/* The PID namespace is set for children by the caller, which holds only the pidfd open. */
	for (size_t i = 0; i < config->join_count; i++) {
		if (config->joins[i].flag == CLONE_NEWPID)
			return false;
	}
	return true;
}

/* Whether config joins a user or time namespace, which a process sharing its memory cannot. */
static bool joins_user_or_time(const struct nsexec_config *config)
{
	const uint32_t flags = CLONE_NEWUSER | CLONE_NEWTIME;
	if (config->pidfd >= 0 && (config->pidfd_flags & flags))
		return true;
	for (size_t i = 0; i < config->join_count; i++) {
		if (config->joins[i].flag & flags)
			return true;
	}
	return false;
}

struct direct_child {
	const struct nsexec_config *config;
	const struct nsexec_process *process;
	/* The program's environment block, allocated by the supervisor. */
	char **environment;
	int report_fd;
	/* getppid() as the child must see it while the supervisor lives. */
	pid_t supervisor;
};

/*
 * The size of the direct child's stack, a buffer in the supervisor's frame. A
 * run took 8 KiB of it, and a failed exec 16 KiB (debug build, measured by
 * filling the buffer first).
 */
#define DIRECT_CHILD_STACK_SIZE (64 * 1024)

/*
 * The child of the direct path: stage 1's joins and stage 2's role in one
 * process. It was born in the target's PID namespace, so after joining the
 * rest it is in every target namespace. It writes the entered record once it
 * got that far. To the supervisor, a death before the record is a failure to
 * enter, and a death after it is the program's end. It runs on its own stack
 * and may share the supervisor's memory (CLONE_VM). So it returns nothing and
 * changes no state of the supervisor but the logging stage, which the
 * supervisor resets.
 */
static int run_direct_child(void *arg)
{
	const struct direct_child *child = arg;
	struct nsexec_config own = *child->config;

	nsexec_log_stage("stage-2");
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, errno, NULL, "cannot set the parent death signal of stage 2");
	/*
	 * The supervisor died before the death signal was armed. Born in
	 * another PID namespace, this process gets 0 from getppid() until it
	 * is reparented to that namespace's init.
	 */
	if (getppid() != child->supervisor)
		_exit(NSEXEC_EXIT_FAILURE);

	nsexec_test_hook("stage1-start");
	own.pidfd_flags &= ~(uint32_t)CLONE_NEWPID;
	nsexec_open_namespace_files(&own);
	nsexec_join_namespaces(&own);
	nsexec_test_hook("stage1-joined");
	nsexec_test_hook("stage2-start");

	/* The report fd is a pipe, and a record this short is written whole or not at all. */
	ssize_t written;
	do {
		written = write(child->report_fd, NSEXEC_ENTERED_RECORD, sizeof(NSEXEC_ENTERED_RECORD) - 1);
	} while (written < 0 && errno == EINTR);
	if (written != (ssize_t)(sizeof(NSEXEC_ENTERED_RECORD) - 1))
		_exit(NSEXEC_EXIT_FAILURE);
	nsexec_log(NSEXEC_LOG_DEBUG, "in the target namespaces");

	nsexec_exec_process_in(child->process, child->environment);
}

/*
 * Sets the caller's PID namespace for children to the target's. Returns a
 * pidfd of the caller itself, which names the way back, or -1 with error set,
 * or NSEXEC_DIRECT_UNAVAILABLE when the caller lacks the right.
 */
static int enter_pid_namespace_for_children(const struct nsexec_config *config, char *error, size_t error_size)
{
	int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (self < 0) {
		nsexec_format_error(error, error_size, errno, NULL, "cannot open a pidfd of nsexec itself");
		return -1;
	}
	if (setns(config->pidfd, CLONE_NEWPID) == 0)
		return self;

	int saved = errno;
	(void)close(self);
	/* An unprivileged caller gets the right from the target's user namespace, which the stages join first. */
	if (saved == EPERM)
		return NSEXEC_DIRECT_UNAVAILABLE;
	char what[96];
	snprintf(what, sizeof(what), "cannot join pid namespace of pid %d", (int)config->target_pid);
	nsexec_format_error(error, error_size, saved,
			    saved == ESRCH ? "the target process exited; start it again or pick a running one" : NULL, what);
	return -1;
}

int nsexec_run_direct(const struct nsexec_config *config, const struct nsexec_process *process, int report_fd,
		      struct nsexec_stage_pids *pids, char *error, size_t error_size)
{
	bool joins_pid = config->pidfd >= 0 && (config->pidfd_flags & CLONE_NEWPID);
	int own_pid_namespace = -1;

	nsexec_log_set_report(report_fd);
	nsexec_log_stage("stage-0");
	if (prepare_stage0(config, error, error_size) < 0)
		return -1;

	size_t environment_count = nsexec_environment_count(process->envp);
	char **environment = calloc(environment_count + 2, sizeof(char *));
	if (environment == NULL) {
		nsexec_format_error(error, error_size, ENOMEM, NULL, "cannot copy the program's environment");
		return -1;
	}
	/*
	 * The child's stack. With CLONE_VM the supervisor sleeps until the child
	 * execs or exits, as with vfork, and without it the child has a copy, so
	 * a buffer in this frame serves either way and costs no mmap or munmap.
	 */
	char stack[DIRECT_CHILD_STACK_SIZE] __attribute__((aligned(16)));

	/*
	 * setns(CLONE_NEWPID) moves nothing of the caller: it names the PID
	 * namespace of the caller's next child. It is set back right after
	 * the clone, so that the caller's later children are born where they
	 * were before.
	 */
	if (joins_pid) {
		own_pid_namespace = enter_pid_namespace_for_children(config, error, error_size);
		if (own_pid_namespace < 0) {
			free(environment);
			return own_pid_namespace;
		}
	}

	/*
	 * Without a user or time namespace to join, the child shares the
	 * caller's memory and the caller sleeps until the exec (as vfork):
	 * no page tables to copy and no copy-on-write faults on either side.
	 * setns into a user or time namespace needs a process of its own.
	 */
	struct direct_child child = {
		.config = config,
		.process = process,
		.environment = environment,
		.report_fd = report_fd,
		.supervisor = joins_pid ? 0 : getpid(),
	};
	int flags = SIGCHLD;
	if (!joins_user_or_time(config))
		flags |= CLONE_VM | CLONE_VFORK;
	pid_t pid = clone(run_direct_child, stack + sizeof(stack), flags, &child);
	int clone_error = errno;
	nsexec_log_stage("stage-0");

	int restored = 0;
	int restore_error = 0;
	if (own_pid_namespace >= 0) {
		restored = setns(own_pid_namespace, CLONE_NEWPID);
		restore_error = errno;
		(void)close(own_pid_namespace);
	}
	/* The child has exec'd or exited by now, or has a copy of the memory of its own. */
	free(environment);

	if (pid < 0) {
		/* The kernel gives ENOMEM for a fork into a PID namespace whose init has exited. */
		const char *hint = clone_error == ENOMEM && joins_pid
					   ? "the init of the target's PID namespace exited; start the target again"
					   : NULL;
		nsexec_format_error(error, error_size, clone_error, hint, "cannot clone stage 2");
		return -1;
	}
	if (restored < 0) {
		nsexec_format_error(error, error_size, restore_error, NULL,
				    "cannot return to the own PID namespace after starting stage 2");
		kill_and_reap(pid, true);
		return -1;
	}
	pids->stage1 = pid;
	pids->stage2 = pid;
	pids->direct = true;
	return STAGE_PARENT;
}
