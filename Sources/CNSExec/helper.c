/*
 * The init pipe entry point: how a parent process (runc-style, or the Swift
 * library from a multi-threaded program) drives the stages. It starts the
 * nsexec binary with _LIBCONTAINER_INITPIPE=<fd>, sends the bootstrap
 * message, then the process message; stage 0 writes the pid line back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsexec.h"

#define MAX_ARGS 4096

/* Parses a non-negative fd number from an environment variable; -1 when unset. */
static int fd_from_environment(const char *name)
{
	const char *text = getenv(name);
	if (text == NULL || *text == '\0')
		return -1;

	char *end;
	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < 0 || value > 65535) {
		fprintf(stderr, "nsexec: invalid %s=%s: expected an fd number\n", name, text);
		_exit(NSEXEC_EXIT_FAILURE);
	}
	if (fcntl((int)value, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "nsexec: %s=%s is not an open fd: %s\n", name, text, strerror(errno));
		_exit(NSEXEC_EXIT_FAILURE);
	}
	return (int)value;
}

static int bootstrap_initpipe = -1;

int nsexec_bootstrap_initpipe(void)
{
	return bootstrap_initpipe;
}

int nsexec_bootstrap_entry(void)
{
	char error[1024];
	size_t length = 0;
	struct nsexec_config config;

	int initpipe = fd_from_environment("_LIBCONTAINER_INITPIPE");
	if (initpipe < 0)
		return -1;

	int log_fd = fd_from_environment("_LIBCONTAINER_LOGPIPE");
	int level = NSEXEC_LOG_ERROR;
	const char *level_text = getenv("_LIBCONTAINER_LOGLEVEL");
	if (level_text != NULL && *level_text != '\0') {
		char *end;
		long value = strtol(level_text, &end, 10);
		if (*end != '\0' || value < NSEXEC_LOG_PANIC || value > NSEXEC_LOG_TRACE) {
			fprintf(stderr, "nsexec: invalid _LIBCONTAINER_LOGLEVEL=%s: expected 0 to 6\n", level_text);
			_exit(NSEXEC_EXIT_FAILURE);
		}
		level = (int)value;
	}

	/* Errors go to stderr too when no log pipe would carry them to a person. */
	nsexec_log_setup(log_fd, level, initpipe);
	nsexec_log_echo(log_fd < 0);
	nsexec_log_stage("stage-0");
	nsexec_log(NSEXEC_LOG_DEBUG, "reading the bootstrap message from fd %d", initpipe);

	uint8_t *message = nsexec_read_bootstrap(initpipe, &length, error, sizeof(error));
	if (message == NULL)
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "%s", error);
	if (nsexec_parse_bootstrap(message, length, &config, error, sizeof(error)) < 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "%s", error);

	nsexec_run_stages(&config, initpipe);

	/* Stage 2: the Swift runtime starts next and calls nsexec_bootstrap_exec. */
	bootstrap_initpipe = initpipe;
	return initpipe;
}

/* Reads a u32 attribute payload. */
static bool read_u32(const uint8_t *payload, size_t length, uint32_t *value)
{
	if (length != 4)
		return false;
	memcpy(value, payload, 4);
	return true;
}

/* Returns payload as a C string when it is NUL-terminated with no other NUL. */
static const char *read_string(const uint8_t *payload, size_t length)
{
	if (length == 0 || payload[length - 1] != '\0' || memchr(payload, '\0', length - 1) != NULL)
		return NULL;
	return (const char *)payload;
}

void nsexec_bootstrap_exec(int initpipe)
{
	char error[1024];
	size_t length = 0;
	static char *argv[MAX_ARGS + 1];
	static char *envp[MAX_ARGS + 1];
	size_t argc = 0, envc = 0;
	struct nsexec_process process;

	memset(&process, 0, sizeof(process));
	process.root_fd = -1;
	process.tty_socket = -1;
	process.host_ptmx_fd = -1;
	process.lookup_root_fd = -1;
	for (int i = 0; i < 3; i++)
		process.stdio[i] = -1;
	sigemptyset(&process.signal_mask);

	uint8_t *message = nsexec_read_bootstrap(initpipe, &length, error, sizeof(error));
	if (message == NULL)
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "process message: %s", error);

	uint16_t type;
	memcpy(&type, message + 4, sizeof(type));
	if (type != NSEXEC_PROCESS_MSG)
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: type %u, expected %u", type,
			    NSEXEC_PROCESS_MSG);

	for (size_t offset = 16; offset < length;) {
		uint16_t attribute_length, attribute_type;
		if (length - offset < 4)
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: trailing bytes");
		memcpy(&attribute_length, message + offset, 2);
		memcpy(&attribute_type, message + offset + 2, 2);
		if (attribute_length < 4 || attribute_length > length - offset)
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: attribute %u has length %u",
				    attribute_type, attribute_length);

		const uint8_t *payload = message + offset + 4;
		size_t payload_length = attribute_length - 4u;
		const char *text = read_string(payload, payload_length);
		uint32_t number = 0;

		switch (attribute_type) {
		case NSEXEC_PROCESS_ARG_ATTR:
		case NSEXEC_PROCESS_ENV_ATTR:
			if (text == NULL)
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: bad string in attribute %u",
					    attribute_type);
			if (attribute_type == NSEXEC_PROCESS_ARG_ATTR && argc < MAX_ARGS)
				argv[argc++] = (char *)text;
			else if (attribute_type == NSEXEC_PROCESS_ENV_ATTR && envc < MAX_ARGS)
				envp[envc++] = (char *)text;
			else
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: over %d entries", MAX_ARGS);
			break;
		case NSEXEC_PROCESS_CWD_ATTR:
		case NSEXEC_PROCESS_TARGET_CWD_ATTR:
		case NSEXEC_PROCESS_USER_ATTR:
		case NSEXEC_PROCESS_GROUP_ATTR:
			if (text == NULL)
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: bad string in attribute %u",
					    attribute_type);
			if (attribute_type == NSEXEC_PROCESS_CWD_ATTR)
				process.cwd = text;
			else if (attribute_type == NSEXEC_PROCESS_TARGET_CWD_ATTR)
				process.target_cwd = text;
			else if (attribute_type == NSEXEC_PROCESS_USER_ATTR)
				process.user = text;
			else
				process.group = text;
			break;
		case NSEXEC_PROCESS_FLAGS_ATTR:
		case NSEXEC_PROCESS_ROOT_ATTR:
		case NSEXEC_PROCESS_TTY_ATTR:
		case NSEXEC_PROCESS_CGROUP_ATTR:
		case NSEXEC_PROCESS_LOOKUP_ROOT_ATTR:
			if (!read_u32(payload, payload_length, &number))
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: attribute %u is not a u32",
					    attribute_type);
			if (attribute_type == NSEXEC_PROCESS_FLAGS_ATTR) {
				process.preserve_credentials = number & NSEXEC_PROCESS_PRESERVE_CREDENTIALS;
				process.entered_user_namespace = number & NSEXEC_PROCESS_ENTERED_USERNS;
				process.set_home = number & NSEXEC_PROCESS_SET_HOME;
				process.cwd_from_namespace_root = number & NSEXEC_PROCESS_CWD_FROM_NAMESPACE_ROOT;
			} else if (attribute_type == NSEXEC_PROCESS_ROOT_ATTR) {
				process.root_fd = (int)number;
			} else if (attribute_type == NSEXEC_PROCESS_LOOKUP_ROOT_ATTR) {
				process.lookup_root_fd = (int)number;
			} else if (attribute_type == NSEXEC_PROCESS_TTY_ATTR) {
				process.tty_socket = (int)number;
			} else if (nsexec_process_add_cgroup_fd(&process, (int)number) < 0) {
				nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: too many cgroup fds");
			}
			break;
		default:
			nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: unknown attribute type %u",
				    attribute_type);
		}
		offset += ((size_t)attribute_length + 3u) & ~(size_t)3u;
	}

	if (argc == 0)
		nsexec_fail(NSEXEC_EXIT_FAILURE, 0, NULL, "invalid process message: no program");
	argv[argc] = NULL;
	envp[envc] = NULL;
	process.argv = argv;
	process.envp = envp;

	nsexec_log(NSEXEC_LOG_DEBUG, "executing %s", argv[0]);
	nsexec_exec_process(&process);
}
