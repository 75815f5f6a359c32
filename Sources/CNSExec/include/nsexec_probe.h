/*
 * Probes of the C core for tests that cannot fork themselves. The Swift
 * Testing runner is multi-threaded, so a test there must not run Swift code
 * in a forked child. These functions fork in C, run one step of the core in
 * the child and return what it observed. Each reaps every process it starts.
 */
#ifndef NSEXEC_PROBE_H
#define NSEXEC_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "nsexec.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Forks a target process that switches to uid and gid (unless uid is
 * (uid_t)-1), unshares flags (CLONE_NEW*) and then sleeps. It exits on
 * SIGALRM after 300 s unless stopped before. Returns its pid once the unshare has
 * happened, or -1 with errno set to the unshare's error.
 */
pid_t nsexec_probe_start_target(uint32_t flags, uid_t uid);

/* Kills a target with SIGKILL and reaps it. Returns 0, or -1 with errno set. */
int nsexec_probe_stop_target(pid_t pid);

/* Result of nsexec_join_namespaces in a forked process. */
struct nsexec_join_probe {
	/* 0 when the join succeeded, else the status nsexec_fail exited with. */
	int exit_status;
	/* The error record nsexec_fail wrote on the report fd, or "". */
	char error[1024];
	/* Inodes of /proc/self/ns/NAME after the join, in namespace table order; 0 if unreadable. */
	uint64_t namespaces[NSEXEC_NAMESPACE_COUNT];
	/* How many of the config's namespace fds were still open after the join. */
	int open_join_fds;
};

/*
 * Forks a process that switches to uid and gid (unless uid is (uid_t)-1,
 * and losing every capability when it does), opens the namespace files of
 * config with nsexec_open_namespace_files, joins them with
 * nsexec_join_namespaces and records the result in probe. Returns 0, or -1
 * with errno set when the probe itself failed.
 */
int nsexec_probe_join(const struct nsexec_config *config, uid_t uid, struct nsexec_join_probe *probe);

/* Logging setup for the nsexec_fail call of nsexec_probe_fail. */
struct nsexec_fail_request {
	int status;
	int error;
	const char *hint;
	/* The failure description, passed to nsexec_fail as "%s". */
	const char *message;
	/* The stage name for nsexec_log_stage, or NULL to keep the default. */
	const char *stage;
	/* Gives nsexec_fail a report fd (the init pipe). */
	bool report;
	/* Gives nsexec_fail a log fd at debug level. */
	bool log;
	/* Calls nsexec_log_echo(true). */
	bool echo;
	/* Records a sleeping sibling process with nsexec_log_started. */
	bool start_stage;
};

/* Exit status and output of a forked nsexec_fail call. */
struct nsexec_fail_probe {
	/* The exit status of the failing process, or 128+N if signal N ended it. */
	int exit_status;
	/* The failing process. */
	pid_t pid;
	/* The sleeping process recorded as a started stage, or 0. */
	pid_t started_pid;
	/* The signal that ended that process, or 0 if it exited. */
	int started_signal;
	/* What arrived on the report fd, the log fd and stderr, NUL-terminated. */
	char report[2048];
	char log[2048];
	char stderr_text[2048];
};

/* Forks a process that calls nsexec_fail as request describes. Returns 0, or -1 with errno set. */
int nsexec_probe_fail(const struct nsexec_fail_request *request, struct nsexec_fail_probe *probe);

/* Result of an nsexec_read_all call that a signal interrupted. */
struct nsexec_interrupted_read_probe {
	/* nsexec_read_all's return value, and its errno when that is -1. */
	int result;
	int error;
	/* SIGUSR1 deliveries while the read waited. */
	int signals_caught;
	/* The 8 bytes read, NUL-terminated. */
	char data[9];
};

/*
 * Forks a reader that blocks in nsexec_read_all for 8 bytes on a socket,
 * with a SIGUSR1 handler installed without SA_RESTART. A writer process
 * sends SIGUSR1 once the reader sleeps, then writes the bytes. Returns 0, or
 * -1 with errno set.
 */
int nsexec_probe_interrupted_read(struct nsexec_interrupted_read_probe *probe);

#ifdef __cplusplus
}
#endif

#endif
