/* Pseudo-terminal helpers shared by stage 2 and the supervisor. */
#ifndef NSEXEC_TTY_H
#define NSEXEC_TTY_H

#ifdef __cplusplus
extern "C" {
#endif

/* Unlocks an open /dev/ptmx and opens its slave. Returns 0, or -1 with errno. */
int nsexec_open_pty(int ptmx_fd, int *master, int *slave);

/* Sends fd over a unix socket (SCM_RIGHTS). Returns 0, or -1 with errno. */
int nsexec_send_fd(int socket, int fd);

/* Receives one fd sent with nsexec_send_fd, close-on-exec. Returns it, or -1 with errno. */
int nsexec_receive_fd(int socket);

#ifdef __cplusplus
}
#endif

#endif
