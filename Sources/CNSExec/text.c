/*
 * Text helpers for the paths and environment entries that every run builds.
 * snprintf would do, but its code and its stack (a few KiB, also on the
 * direct child's own stack) cost page faults on each run, and these run in
 * a few hundred bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "nsexec.h"

int nsexec_format_unsigned(char *out, size_t size, unsigned long value)
{
	char digits[24];
	size_t count = 0;
	do {
		digits[count++] = (char)('0' + value % 10);
		value /= 10;
	} while (value != 0);
	if (count >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (size_t i = 0; i < count; i++)
		out[i] = digits[count - 1 - i];
	out[count] = '\0';
	return (int)count;
}

int nsexec_concat(char *out, size_t size, ...)
{
	if (size == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	va_list parts;
	size_t used = 0;
	va_start(parts, size);
	for (const char *part = va_arg(parts, const char *); part != NULL; part = va_arg(parts, const char *)) {
		size_t length = strlen(part);
		if (length >= size - used) {
			va_end(parts);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(out + used, part, length);
		used += length;
	}
	va_end(parts);
	out[used] = '\0';
	return (int)used;
}

int nsexec_proc_path(char *out, size_t size, pid_t pid, const char *name)
{
	char number[24];
	if (pid <= 0) {
		errno = EINVAL;
		return -1;
	}
	(void)nsexec_format_unsigned(number, sizeof(number), (unsigned long)pid);
	return nsexec_concat(out, size, "/proc/", number, "/", name, (const char *)NULL);
}
