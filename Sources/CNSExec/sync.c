/* One-byte messages between the stages, over socketpairs. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nsexec.h"

const char *nsexec_sync_name(int message)
{
	switch (message) {
	case NSEXEC_SYNC_USERMAP_REQUEST:
		return "usermap_request";
	case NSEXEC_SYNC_USERMAP_DONE:
		return "usermap_done";
	case NSEXEC_SYNC_PID:
		return "pid";
	case NSEXEC_SYNC_PID_RECEIVED:
		return "pid_received";
	case NSEXEC_SYNC_GO:
		return "go";
	case NSEXEC_SYNC_FINISHED:
		return "finished";
	case NSEXEC_SYNC_TIMEOFFSETS_REQUEST:
		return "timeoffsets_request";
	case NSEXEC_SYNC_TIMEOFFSETS_DONE:
		return "timeoffsets_done";
	}
	return NULL;
}

int nsexec_write_all(int fd, const void *buffer, size_t length)
{
	const char *bytes = buffer;
	bool is_socket = true;
	while (length > 0) {
		/*
		 * A peer that closed its end must cost an EPIPE, not a SIGPIPE that
		 * kills the stage before it can report. MSG_NOSIGNAL needs send(2),
		 * so pipes fall back to write(2).
		 */
		ssize_t written = is_socket ? send(fd, bytes, length, MSG_NOSIGNAL) : write(fd, bytes, length);
		if (written < 0 && is_socket && errno == ENOTSOCK) {
			is_socket = false;
			continue;
		}
		if (written < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		bytes += written;
		length -= (size_t)written;
	}
	return 0;
}

int nsexec_read_all(int fd, void *buffer, size_t length)
{
	char *bytes = buffer;
	while (length > 0) {
		ssize_t count = read(fd, bytes, length);
		if (count < 0) {
			if (errno == EINTR)
				continue;
			/* A peer that exited with our data unread resets the socket: it closed all the same. */
			if (errno == ECONNRESET)
				errno = EPIPE;
			return -1;
		}
		if (count == 0) {
			errno = EPIPE;
			return -1;
		}
		bytes += count;
		length -= (size_t)count;
	}
	return 0;
}

int nsexec_sync_send(int fd, enum nsexec_sync message)
{
	unsigned char byte = (unsigned char)message;
	return nsexec_write_all(fd, &byte, 1);
}

int nsexec_sync_expect(int fd, enum nsexec_sync expected)
{
	unsigned char byte;
	if (nsexec_read_all(fd, &byte, 1) < 0)
		return -1;
	if (byte != (unsigned char)expected) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}
