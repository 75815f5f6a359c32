/*
 * The pseudo-terminal for --tty. Stage 2 opens it from the container's own
 * /dev/ptmx when there is one, so that the program's terminal belongs to the
 * container's devpts instance, and sends the master to the supervisor, which
 * relays it to the caller's terminal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "nsexec_tty.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int nsexec_open_pty(int ptmx_fd, int *master, int *slave)
{
	int unlock = 0;

	if (ioctl(ptmx_fd, TIOCSPTLCK, &unlock) < 0)
		return -1;

	/* TIOCGPTPEER opens the slave through the master, with no path lookup. */
	int peer = ioctl(ptmx_fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (peer < 0)
		return -1;

	*master = ptmx_fd;
	*slave = peer;
	return 0;
}

int nsexec_send_fd(int socket, int fd)
{
	char byte = 't';
	struct iovec data = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr header;
		char space[CMSG_SPACE(sizeof(int))];
	} control;
	memset(&control, 0, sizeof(control));

	struct msghdr message = {
		.msg_iov = &data,
		.msg_iovlen = 1,
		.msg_control = control.space,
		.msg_controllen = sizeof(control.space),
	};
	struct cmsghdr *header = CMSG_FIRSTHDR(&message);
	header->cmsg_level = SOL_SOCKET;
	header->cmsg_type = SCM_RIGHTS;
	header->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(header), &fd, sizeof(int));

	for (;;) {
		ssize_t sent = sendmsg(socket, &message, MSG_NOSIGNAL);
		if (sent == 1)
			return 0;
		if (sent < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

int nsexec_receive_fd(int socket)
{
	char byte;
	struct iovec data = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr header;
		char space[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr message = {
		.msg_iov = &data,
		.msg_iovlen = 1,
		.msg_control = control.space,
		.msg_controllen = sizeof(control.space),
	};

	ssize_t received;
	do {
		received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
	} while (received < 0 && errno == EINTR);
	if (received < 0)
		return -1;
	if (received == 0) {
		errno = EPIPE;
		return -1;
	}

	struct cmsghdr *header = CMSG_FIRSTHDR(&message);
	if (header == NULL || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
		errno = EPROTO;
		return -1;
	}
	int fd;
	memcpy(&fd, CMSG_DATA(header), sizeof(int));
	return fd;
}
