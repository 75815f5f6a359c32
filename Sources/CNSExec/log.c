/*
 * Reporting from the stages: JSON log lines on the log pipe, and error
 * records on the init pipe that the supervisor turns into its one error line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nsexec.h"

/* Set once per stage before anything is logged; each stage has its own copy. */
static struct {
	int log_fd;
	int level;
	int report_fd;
	const char *stage;
	pid_t started[2];
	bool echo;
	bool json;
} logging = { -1, NSEXEC_LOG_ERROR, -1, "stage-0", { 0, 0 }, false, true };

static const char *level_names[] = { "panic", "fatal", "error", "warning", "info", "debug", "trace" };

void nsexec_log_setup(int log_fd, int level, int report_fd)
{
	logging.log_fd = log_fd;
	logging.level = level;
	logging.report_fd = report_fd;
}

void nsexec_log_set_report(int report_fd)
{
	logging.report_fd = report_fd;
}

void nsexec_log_format_json(bool json)
{
	logging.json = json;
}

void nsexec_log_echo(bool enabled)
{
	logging.echo = enabled;
}

void nsexec_log_stage(const char *name)
{
	logging.stage = name;
	logging.started[0] = 0;
	logging.started[1] = 0;
}

void nsexec_log_started(pid_t pid)
{
	if (logging.started[0] == 0)
		logging.started[0] = pid;
	else
		logging.started[1] = pid;
}

size_t nsexec_json_escape(char *out, size_t size, const char *text)
{
	size_t used = 0;
	if (size == 0)
		return 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		char escaped[8];
		size_t length;

		if (*p == '"' || *p == '\\') {
			escaped[0] = '\\';
			escaped[1] = (char)*p;
			length = 2;
		} else if (*p < 0x20) {
			length = (size_t)snprintf(escaped, sizeof(escaped), "\\u%04x", *p);
		} else {
			escaped[0] = (char)*p;
			length = 1;
		}

		if (used + length >= size)
			break;
		memcpy(out + used, escaped, length);
		used += length;
	}
	out[used] = '\0';
	return used;
}

static void write_log_line(int level, const char *message)
{
	char escaped[2048];
	char line[2200];

	if (logging.log_fd < 0 || level > logging.level)
		return;

	nsexec_json_escape(escaped, sizeof(escaped), message);
	int length;
	if (logging.json)
		length = snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"%s[%d]: %s\"}\n",
				  level_names[level], logging.stage, (int)getpid(), escaped);
	else
		length = snprintf(line, sizeof(line), "nsexec: %s: %s[%d]: %s\n", level_names[level], logging.stage,
				  (int)getpid(), message);
	if (length > 0)
		(void)nsexec_write_all(logging.log_fd, line, strnlen(line, sizeof(line)));
}

void nsexec_log(int level, const char *format, ...)
{
	char message[1024];
	va_list args;

	if (logging.log_fd < 0 || level > logging.level)
		return;

	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	write_log_line(level, message);
}

const char *nsexec_format_error(char *buffer, size_t size, int error, const char *hint, const char *what)
{
	if (error != 0 && hint != NULL)
		snprintf(buffer, size, "%s: %s; %s", what, strerror(error), hint);
	else if (error != 0)
		snprintf(buffer, size, "%s: %s", what, strerror(error));
	else if (hint != NULL)
		snprintf(buffer, size, "%s; %s", what, hint);
	else
		snprintf(buffer, size, "%s", what);
	return buffer;
}

void nsexec_fail(int status, int error, const char *hint, const char *format, ...)
{
	char what[1024];
	char message[1536];
	char escaped[2048];
	char record[2200];
	va_list args;

	va_start(args, format);
	vsnprintf(what, sizeof(what), format, args);
	va_end(args);
	nsexec_format_error(message, sizeof(message), error, hint, what);

	/*
	 * A parent that closed the log pipe or the init pipe early must not turn
	 * this report into a silent death by SIGPIPE. This process only exits
	 * from here, so ignoring the signal affects nothing else.
	 */
	(void)signal(SIGPIPE, SIG_IGN);

	/* No stage may outlive a failure of the stage that started it. */
	for (size_t i = 0; i < 2; i++) {
		if (logging.started[i] > 0)
			(void)kill(logging.started[i], SIGKILL);
	}

	write_log_line(NSEXEC_LOG_ERROR, message);

	if (logging.report_fd >= 0) {
		nsexec_json_escape(escaped, sizeof(escaped), message);
		/* The pids let a supervisor reap stages that are its children but that it never heard of. */
		int length = snprintf(record, sizeof(record), "{\"error\":\"%s\",\"status\":%d,\"pids\":[%d,%d]}\n",
				      escaped, status, (int)logging.started[0], (int)logging.started[1]);
		if (length > 0)
			(void)nsexec_write_all(logging.report_fd, record, strnlen(record, sizeof(record)));
	}
	if (logging.report_fd < 0 || logging.echo) {
		int length = snprintf(record, sizeof(record), "nsexec: %s\n", message);
		if (length > 0)
			(void)nsexec_write_all(STDERR_FILENO, record, strnlen(record, sizeof(record)));
	}

	_exit(status);
}

void nsexec_test_hook(const char *point)
{
	const char *stop_point = getenv("NSEXEC_TEST_STOP_AT");
	if (stop_point != NULL && strcmp(stop_point, point) == 0) {
		nsexec_log(NSEXEC_LOG_DEBUG, "stopping at %s for a test", point);
		(void)raise(SIGSTOP);
	}
}
