/*
 * nsexec C core: the clone trick, the three stages, the bootstrap message
 * parser and the final process setup. The one public header, callable from
 * C, C++ and Swift.
 */
#ifndef NSEXEC_H
#define NSEXEC_H

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stage numbers, also the values that setjmp returns in each stage. */
#define STAGE_PARENT 0
#define STAGE_CHILD 1
#define STAGE_INIT 2

/* Exit statuses, as documented for the CLI. */
#define NSEXEC_EXIT_FAILURE 125
#define NSEXEC_EXIT_NOT_EXECUTABLE 126
#define NSEXEC_EXIT_NOT_FOUND 127

/* ---- clone.c: the clone trick -------------------------------------------- */

/*
 * Clones a sibling of the caller (CLONE_PARENT | SIGCHLD) that starts on a
 * small stack and longjmps back to *env with jmpval. Returns the child's pid
 * in the parent, or -1 with errno set.
 */
int clone_parent(jmp_buf *env, int jmpval);

/* Same as clone_parent, but the new process is the caller's own child. */
int clone_child(jmp_buf *env, int jmpval);

/* ---- namespaces.c: the namespace table ----------------------------------- */

/* One namespace type: its CLONE_NEW* flag and its name under /proc/PID/ns. */
struct nsexec_namespace {
	const char *name;
	uint32_t flag;
};

/* Number of entries in the namespace table. */
#define NSEXEC_NAMESPACE_COUNT 8

/* Returns the table entry at index, or NULL past the end. */
const struct nsexec_namespace *nsexec_namespace_at(size_t index);

/* Returns the entry whose /proc name equals name ("mnt", "net", ...), or NULL. */
const struct nsexec_namespace *nsexec_namespace_by_name(const char *name, size_t length);

/* Returns the entry for a single CLONE_NEW* flag, or NULL. */
const struct nsexec_namespace *nsexec_namespace_by_flag(uint32_t flag);

/* All CLONE_NEW* flags of the table, or-ed together. */
uint32_t nsexec_namespace_all_flags(void);

/*
 * Returns the CLONE_NEW* type of an open namespace file (NS_GET_NSTYPE), or 0
 * with errno set when fd is not a namespace file.
 */
uint32_t nsexec_namespace_file_type(int fd);

/*
 * Opens a namespace file for reading (O_RDONLY | O_CLOEXEC) without opening
 * anything that is not a regular file: a FIFO, device, socket or directory
 * gives -1 with errno EINVAL, as nsexec_namespace_file_type does for a file
 * that is no namespace. Returns the fd, or -1 with errno set.
 */
int nsexec_open_namespace_file(const char *path);

/*
 * Sets *join to the namespaces that --all joins. Those are the namespaces of
 * process pid that are not the caller's own, compared by the link text of
 * their files under /proc/PID/ns and /proc/self/ns ("net:[4026531840]", the
 * type and inode), and those whose file of the caller cannot be read. A type
 * with no file for pid (ENOENT: the kernel lacks it, or pid has exited) is
 * left out.
 *
 * The user, time, mount and PID namespaces are always compared. When both
 * processes are in the initial user namespace and the caller has
 * CAP_SYS_ADMIN, the cgroup, ipc, net and uts namespaces are joined without
 * a comparison. Joining one's own namespace of those types succeeds and
 * changes nothing, and 8 fewer readlinks save about 23 us.
 *
 * Returns 0, or -1 with errno set and *failed set to the flag of the first
 * type whose file of pid cannot be read otherwise.
 */
int nsexec_namespaces_to_join(pid_t pid, uint32_t *join, uint32_t *failed);

/* ---- sync.c: messages between stages ------------------------------------- */

/* One-byte messages exchanged by the stages over socketpairs. */
enum nsexec_sync {
	NSEXEC_SYNC_USERMAP_REQUEST = 0x40,
	NSEXEC_SYNC_USERMAP_DONE = 0x41,
	NSEXEC_SYNC_PID = 0x42,
	NSEXEC_SYNC_PID_RECEIVED = 0x43,
	NSEXEC_SYNC_GO = 0x44,
	NSEXEC_SYNC_FINISHED = 0x45,
	NSEXEC_SYNC_TIMEOFFSETS_REQUEST = 0x46,
	NSEXEC_SYNC_TIMEOFFSETS_DONE = 0x47,
};

/* Returns the message's name ("usermap_request", ...), or NULL if unknown. */
const char *nsexec_sync_name(int message);

/*
 * Writes or reads exactly length bytes, retrying on EINTR and short counts.
 * Return 0 on success; -1 with errno set on failure, and errno EPIPE when the
 * peer closed before all bytes were read.
 */
int nsexec_write_all(int fd, const void *buffer, size_t length);
int nsexec_read_all(int fd, void *buffer, size_t length);

/* Sends one message; reads one message and checks it is the expected one. */
int nsexec_sync_send(int fd, enum nsexec_sync message);
int nsexec_sync_expect(int fd, enum nsexec_sync expected);

/* ---- log.c: error and debug reporting ------------------------------------ */

/* Log levels, as numbers in _LIBCONTAINER_LOGLEVEL (logrus order). */
enum nsexec_log_level {
	NSEXEC_LOG_PANIC = 0,
	NSEXEC_LOG_FATAL = 1,
	NSEXEC_LOG_ERROR = 2,
	NSEXEC_LOG_WARNING = 3,
	NSEXEC_LOG_INFO = 4,
	NSEXEC_LOG_DEBUG = 5,
	NSEXEC_LOG_TRACE = 6,
};

/*
 * Where the stages report to. The log fd receives JSON lines; the report fd
 * (the init pipe) receives the pid line and error records.
 */
void nsexec_log_setup(int log_fd, int level, int report_fd);

/* Writes one JSON log line {"level":...,"msg":...} naming the stage and pid. */
void nsexec_log(int level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Sets the stage name used in log lines ("stage-0", "stage-1", "stage-2"). */
void nsexec_log_stage(const char *name);

/* Sets only the report fd, keeping the log fd and level. */
void nsexec_log_set_report(int report_fd);

/* Chooses JSON lines (the default, runc's format) or plain text lines for the log fd. */
void nsexec_log_format_json(bool json);

/* Makes nsexec_fail also print its error line to stderr. */
void nsexec_log_echo(bool enabled);

/* Records a stage this process started, which nsexec_fail kills first. */
void nsexec_log_started(pid_t pid);

/*
 * Formats one error line into buffer as "what: errno text; hint". Returns the
 * buffer. Used by nsexec_fail and tests.
 */
const char *nsexec_format_error(char *buffer, size_t size, int error, const char *hint, const char *what);

/*
 * Kills the stages this process started, reports an error record
 * {"error":"...","status":N,"pids":[A,B]} (A and B: those stages, or 0) on the
 * report fd and at error level on the log fd, then _exit(status). error is an
 * errno value or 0.
 */
__attribute__((noreturn)) void nsexec_fail(int status, int error, const char *hint, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

/* Escapes text as the inside of a JSON string. Returns bytes written. */
size_t nsexec_json_escape(char *out, size_t size, const char *text);

/*
 * A test hook: stops the calling stage with SIGSTOP when the environment
 * variable NSEXEC_TEST_STOP_AT equals point ("stage1-joined", "stage2-exec",
 * ...), so that a test can inspect or kill it there. Costs one getenv.
 */
void nsexec_test_hook(const char *point);

/* ---- bootstrap.c: the runc bootstrap message ----------------------------- */

#define NSEXEC_INIT_MSG 62000
#define NSEXEC_CLONE_FLAGS_ATTR 27281
#define NSEXEC_NS_PATHS_ATTR 27282
#define NSEXEC_UIDMAP_ATTR 27283
#define NSEXEC_GIDMAP_ATTR 27284
#define NSEXEC_SETGROUP_ATTR 27285
#define NSEXEC_OOM_SCORE_ADJ_ATTR 27286
#define NSEXEC_ROOTLESS_EUID_ATTR 27287
#define NSEXEC_UIDMAPPATH_ATTR 27288
#define NSEXEC_GIDMAPPATH_ATTR 27289
#define NSEXEC_TIMENSOFFSET_ATTR 27290

/* Largest bootstrap message accepted, in bytes. */
#define NSEXEC_BOOTSTRAP_MAX (1u << 20)

/* One namespace to join: its type and either an open fd or a path. */
struct nsexec_join {
	uint32_t flag;
	int fd;
	const char *path;
};

/*
 * The stage configuration: what to join, what to unshare, and what stage 0
 * writes for stage 1. Strings point into the message buffer or the caller's
 * memory; lengths exclude any terminating NUL.
 */
struct nsexec_config {
	/* CLONE_NEW* flags that stage 1 unshares. */
	uint32_t clone_flags;

	/* A pidfd of the target; when >= 0, stage 1 joins pidfd_flags through it. */
	int pidfd;
	uint32_t pidfd_flags;
	/* The target's pid, for error messages only. */
	pid_t target_pid;

	/* Namespace files to join, opened before any join. */
	struct nsexec_join joins[NSEXEC_NAMESPACE_COUNT];
	size_t join_count;

	const char *uid_map;
	size_t uid_map_length;
	const char *gid_map;
	size_t gid_map_length;
	const char *uid_map_path;
	const char *gid_map_path;
	bool setgroups_allowed;
	bool rootless_euid;
	const char *oom_score_adj;
	size_t oom_score_adj_length;
	const char *timens_offsets;
	size_t timens_offsets_length;

	/* Fork path only: stage 1 execs the program itself, without stage 2. */
	bool no_fork;

	/* Storage for the parsed namespace paths (NUL-terminated copies). */
	char *paths_storage;
};

/*
 * Parses a bootstrap message of length bytes into config. On failure returns
 * -1 and writes one error line into error (size bytes); nothing is opened or
 * joined. On success config->paths_storage must be freed with
 * nsexec_config_free.
 */
int nsexec_parse_bootstrap(const uint8_t *message, size_t length, struct nsexec_config *config,
			   char *error, size_t error_size);

/* Frees what nsexec_parse_bootstrap allocated. */
void nsexec_config_free(struct nsexec_config *config);

/*
 * Reads one bootstrap message from fd: exactly the length its header states,
 * nothing more, so that anything after it stays in the pipe. Returns a
 * malloc'd buffer and its length, or NULL with an error line.
 */
uint8_t *nsexec_read_bootstrap(int fd, size_t *length, char *error, size_t error_size);

/* ---- stages.c: stage 0, 1 and 2 ------------------------------------------ */

/* The pids of stage 1 and stage 2, as seen from the supervisor. */
struct nsexec_stage_pids {
	pid_t stage1;
	pid_t stage2;
	/* Set by the direct path, where one process is both stages. */
	bool direct;
};

/*
 * Runs the stages from the calling process, which becomes stage 0. Stage 1
 * and stage 2 are siblings of stage 0 (children of its parent). Stage 0 and
 * stage 1 never return: they _exit, stage 0 after writing the pid line
 * {"stage1_pid":N,"stage2_pid":M} to report_fd (the init pipe). Returns
 * STAGE_INIT in stage 2, which is then in every target namespace; the caller
 * finishes the process setup. Stage 2 must read report_fd next: when the
 * parent has closed it, stage 0 exits 125 without a report and leaves the
 * report to stage 2.
 */
int nsexec_run_stages(const struct nsexec_config *config, int report_fd);

/*
 * Runs the stages with the calling process as stage 0 and as the parent of
 * stage 1 and stage 2: the fork path of a single-threaded supervisor, one
 * process creation cheaper. Returns STAGE_PARENT in the caller once stage 2
 * is running, with pids filled in; the caller must reap both stages. Returns
 * STAGE_INIT in stage 2. Returns -1 in the caller on failure, with error set
 * and any stage it started killed and reaped. Stage 1 and stage 2 report
 * their own errors on report_fd.
 */
int nsexec_run_stages_inline(const struct nsexec_config *config, int report_fd, struct nsexec_stage_pids *pids,
			     char *error, size_t error_size);

struct nsexec_process;

/* The direct child's record once it is in every namespace (its pid there means nothing outside). */
#define NSEXEC_ENTERED_RECORD "{\"entered\":true}\n"

/* The return value of nsexec_run_direct when only the stages can do the job. */
#define NSEXEC_DIRECT_UNAVAILABLE (-2)

/*
 * Whether config suits the direct path: existing namespaces to join only, the
 * PID namespace (if any) through the pidfd, and a fork before the exec.
 */
bool nsexec_direct_possible(const struct nsexec_config *config);

/*
 * Runs the direct path of a single-threaded caller, for a config that
 * nsexec_direct_possible accepts: two processes where the stages take three.
 * The caller sets its own PID namespace for children to the target's
 * (setns(CLONE_NEWPID) moves nothing else), clones one child and sets it
 * back. The child joins every other namespace, writes NSEXEC_ENTERED_RECORD
 * to report_fd and execs process.
 *
 * Returns STAGE_PARENT with pids filled in (both the child, direct set), or
 * -1 with error set when nothing was started. Returns
 * NSEXEC_DIRECT_UNAVAILABLE, with nothing changed, when the caller may not
 * join the PID namespace before the user namespace. The stages must run then.
 */
int nsexec_run_direct(const struct nsexec_config *config, const struct nsexec_process *process, int report_fd,
		      struct nsexec_stage_pids *pids, char *error, size_t error_size);

/* ---- join.c: joining namespaces ------------------------------------------ */

/*
 * Joins the namespaces of config in the safe order: pidfd or files opened
 * first, non-user namespaces the current credentials allow, then the user
 * namespace, then the rest. Calls nsexec_fail on error.
 */
void nsexec_join_namespaces(const struct nsexec_config *config);

/* Opens every namespace path of config (O_RDONLY | O_CLOEXEC) into its fd. */
void nsexec_open_namespace_files(struct nsexec_config *config);

/* ---- process.c: the final process setup in stage 2 ----------------------- */

/* The program's identity, root, working directory, fds and terminal. Strings are NUL-terminated. */
struct nsexec_process {
	char *const *argv;
	char *const *envp;

	/* Directory fd of the root to chroot into, or -1 to keep the current root. */
	int root_fd;
	/* Working directory, resolved inside the root; NULL means target_cwd. */
	const char *cwd;
	/* The target's cwd as read from /proc/PID/cwd ("/" when it cannot be
	 * resolved inside the root); when both are NULL the cwd is not changed. */
	const char *target_cwd;
	/* cwd is resolved in the mount namespace's root, before the chroot. */
	bool cwd_from_namespace_root;

	/* uid and gid as numbers or as names from the root's /etc/passwd and /etc/group; NULL keeps them. */
	const char *user;
	const char *group;
	bool preserve_credentials;
	bool entered_user_namespace;
	/*
	 * The target's root, where user and group names are looked up when the
	 * program keeps the caller's root (no chroot); -1 to look up in the
	 * program's root.
	 */
	int lookup_root_fd;

	/* Adds HOME from the user's passwd entry unless envp already has HOME. */
	bool set_home;

	/* The program's signal mask; nsexec_process_init empties it. */
	sigset_t signal_mask;

	/* When >= 0, dup2'ed onto 0, 1 and 2 before exec. */
	int stdio[3];

	/* Extra fds kept open for the program; every other fd above 2 is closed. */
	int keep_fds[16];
	size_t keep_fd_count;

	/*
	 * cgroup.procs files of the target's cgroups, opened on the host: stage 2
	 * writes "0" to each to move itself. The kernel checks the opener's
	 * credentials and cgroup namespace, so this works after joining the
	 * target's cgroup namespace.
	 */
	int cgroup_fds[16];
	size_t cgroup_fd_count;

	/*
	 * When >= 0, a socket over which stage 2 sends the master of a new
	 * pseudo-terminal; the slave becomes the program's stdio and
	 * controlling terminal. The pty comes from the root's /dev/ptmx, else
	 * from host_ptmx_fd (an open /dev/ptmx of the host, or -1).
	 */
	int tty_socket;
	int host_ptmx_fd;
};

/*
 * Finishes stage 2: root, credentials, working directory, terminal, fds,
 * signal mask, then execs argv[0], searched in envp's PATH inside the root.
 * Never returns: a failure is reported with nsexec_fail and exit status 125,
 * 126 (not executable) or 127 (not found).
 */
__attribute__((noreturn)) void nsexec_exec_process(const struct nsexec_process *process);

/* Returns the number of entries of envp before its NULL. */
size_t nsexec_environment_count(char *const *envp);

/*
 * nsexec_exec_process with the program's environment built in storage, which
 * has room for nsexec_environment_count(process->envp) + 2 pointers. The direct
 * path's child shares the supervisor's memory, so the supervisor allocates
 * storage before the clone and frees it after: a block that the child
 * allocated would stay in the supervisor.
 */
__attribute__((noreturn)) void nsexec_exec_process_in(const struct nsexec_process *process, char **storage);

/* ---- api.c: setup helpers for callers that cannot index C arrays ------- */

/* Empties config: nothing to join or unshare, no pidfd. */
void nsexec_config_init(struct nsexec_config *config);

/* Adds a namespace to join from an open fd (path names it in errors). Returns 0, or -1 when full. */
int nsexec_config_add_join(struct nsexec_config *config, uint32_t flag, int fd, const char *path);

/* Sets every fd field of process to -1 and empties the signal mask. */
void nsexec_process_init(struct nsexec_process *process);

/* Adds an fd kept open for the program, or a cgroup.procs fd. Returns 0, or -1 when full. */
int nsexec_process_keep_fd(struct nsexec_process *process, int fd);
int nsexec_process_add_cgroup_fd(struct nsexec_process *process, int fd);

/*
 * The fork path: runs the direct path where the config allows it, else the
 * stages inline (nsexec_run_stages_inline), and execs process in the last
 * stage. Returns 0 in the caller with pids filled in, or -1 with error set.
 * Stage errors arrive as records on report_fd.
 */
int nsexec_spawn_inline(const struct nsexec_config *config, const struct nsexec_process *process, int report_fd,
			struct nsexec_stage_pids *pids, char *error, size_t error_size);

/*
 * Opens path as a directory (O_PATH) resolved with root_fd as the root, with
 * no magic links. Returns the fd, or -1 with errno set.
 */
int nsexec_open_in_root(int root_fd, const char *path);

/* Opens a directory as O_PATH | O_DIRECTORY | O_CLOEXEC. Returns the fd, or -1 with errno. */
int nsexec_open_directory(const char *path);

/*
 * The next three work on /proc/PID/NAME for the Swift side, which would
 * otherwise format the pid with the standard library's integer printing:
 * pages of code that the CLI touches nowhere else.
 */

/* Opens /proc/PID/NAME as nsexec_open_directory does. */
int nsexec_open_proc_directory(pid_t pid, const char *name);

/* Opens /proc/PID/NAME read-only and close-on-exec. Returns the fd, or -1 with errno set. */
int nsexec_open_proc_file(pid_t pid, const char *name);

/*
 * Reads the link /proc/PID/NAME into buffer without a NUL. Returns its length,
 * or -1 with errno set. A link that fills the whole buffer may be cut, so it
 * fails with ENAMETOOLONG.
 */
ssize_t nsexec_read_proc_link(pid_t pid, const char *name, char *buffer, size_t size);

/*
 * Returns the caller's environment entry "NAME=VALUE" for name, or NULL.
 * The CLI copies the entry whole instead of joining NAME, "=" and getenv's
 * value in Swift.
 */
const char *nsexec_environment_entry(const char *name);

/* A close-on-exec signalfd for mask, and one read from it: the signal number, or -1. */
int nsexec_signalfd(const sigset_t *mask);
int nsexec_signalfd_read(int fd);

/* pipe2(fds, O_CLOEXEC), which Swift's Glibc module does not export. */
int nsexec_pipe_cloexec(int fds[2]);

/* Opens a file for reading the same way, resolved inside root_fd. */
int nsexec_open_file_in_root(int root_fd, const char *path);

/* pidfd_open(2) and pidfd_send_signal(2). Return -1 with errno on failure. */
int nsexec_pidfd_open(pid_t pid);
int nsexec_pidfd_send_signal(int pidfd, int signal);
/*
 * Whether the process of pidfd has exited (also a zombie that no one reaped
 * yet), waiting up to timeout_ms for it.
 */
bool nsexec_pidfd_exited(int pidfd, int timeout_ms);

/* ---- probe.c: observations of the clone trick for tests ------------------- */

/* The observations of each stage of the clone_parent sequence. */
struct nsexec_clone_probe {
	pid_t parent_pid;	   /* getpid() in STAGE_PARENT */
	pid_t parent_ppid;	   /* getppid() in STAGE_PARENT */
	pid_t clone_result;	   /* what clone_parent returned */
	pid_t child_pid;	   /* getpid() in STAGE_CHILD, as sent */
	pid_t child_ppid;	   /* getppid() in STAGE_CHILD, as sent */
	pid_t pid_received;	   /* the pid STAGE_PARENT read from the socket, or 0 */
	uint64_t parent_userns;	   /* inode of /proc/self/ns/user in STAGE_PARENT */
	uint64_t child_userns;	   /* inode after unshare(CLONE_NEWUSER) in STAGE_CHILD */
	int child_unshare_errno;   /* 0 if unshare succeeded */
	int64_t marker_seen;	   /* value of a marker variable as the child saw it */
	ssize_t bytes_written;	   /* bytes the child wrote */
	ssize_t bytes_read;	   /* bytes the parent read */
	int child_exit_status;	   /* the child's exit status, as reaped by the caller */
};

/*
 * Runs STAGE_PARENT/STAGE_CHILD from a fresh intermediate process, so that
 * the CLONE_PARENT child is the intermediate's sibling and a child of the
 * caller. Reaps both and fills probe. Returns 0, or -1 with errno set.
 */
int nsexec_probe_clone_parent(struct nsexec_clone_probe *probe);

/* ---- helper.c: the init pipe entry point --------------------------------- */

/*
 * Runs the bootstrap entry. When _LIBCONTAINER_INITPIPE names an fd, it reads
 * the bootstrap message, runs the stages and returns the init pipe fd in
 * stage 2. It returns -1 when the variable is not set. Called from a constructor
 * of the nsexec executable, before any language runtime starts.
 */
int nsexec_bootstrap_entry(void);

/* The init pipe fd that the constructor ran with, or -1. */
int nsexec_bootstrap_initpipe(void);

/*
 * In stage 2 of the bootstrap path: reads the process message that follows
 * the bootstrap message on the init pipe and execs it. Never returns.
 */
__attribute__((noreturn)) void nsexec_bootstrap_exec(int initpipe);

/* Type of the process message that follows the bootstrap message. */
#define NSEXEC_PROCESS_MSG 62001
#define NSEXEC_PROCESS_ARG_ATTR 27401
#define NSEXEC_PROCESS_ENV_ATTR 27402
#define NSEXEC_PROCESS_CWD_ATTR 27403
#define NSEXEC_PROCESS_USER_ATTR 27404
#define NSEXEC_PROCESS_GROUP_ATTR 27405
#define NSEXEC_PROCESS_FLAGS_ATTR 27406
#define NSEXEC_PROCESS_TARGET_CWD_ATTR 27407
#define NSEXEC_PROCESS_ROOT_ATTR 27408
#define NSEXEC_PROCESS_TTY_ATTR 27409
#define NSEXEC_PROCESS_CGROUP_ATTR 27410
#define NSEXEC_PROCESS_LOOKUP_ROOT_ATTR 27411

/* Bits of NSEXEC_PROCESS_FLAGS_ATTR. */
#define NSEXEC_PROCESS_PRESERVE_CREDENTIALS 0x1
#define NSEXEC_PROCESS_ENTERED_USERNS 0x2
#define NSEXEC_PROCESS_SET_HOME 0x4
#define NSEXEC_PROCESS_CWD_FROM_NAMESPACE_ROOT 0x8

/* ---- text.c: paths and entries without snprintf ----------------------------- */

/*
 * Writes value in decimal and a NUL into out. Returns the length, or -1 with
 * errno ENAMETOOLONG when it does not fit.
 */
int nsexec_format_unsigned(char *out, size_t size, unsigned long value);

/*
 * Writes the concatenation of the strings that follow size, up to a NULL
 * (cast to const char *), and a NUL into out. Returns the length, or -1 with
 * errno ENAMETOOLONG when it does not fit.
 */
int nsexec_concat(char *out, size_t size, ...);

/* Writes "/proc/PID/NAME" into out, as nsexec_concat does; pid must be positive. */
int nsexec_proc_path(char *out, size_t size, pid_t pid, const char *name);

#ifdef __cplusplus
}
#endif

#endif
