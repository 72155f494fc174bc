/* Messages between `vmlab vm` and `vmlab virtmgr`: one JSON object per datagram on a
 * SOCK_SEQPACKET Unix socket, with file descriptors attached (SCM_RIGHTS). Datagram
 * boundaries frame the messages, so an fd always arrives with the request that names it. */
#ifndef VMLAB_VIRTMGR_MSG_H
#define VMLAB_VIRTMGR_MSG_H

#include <stddef.h>

struct json_object;

#define VIRTMGR_MAX_MESSAGE (64 * 1024)   /* bytes of one JSON message */
#define VIRTMGR_MAX_FDS     16            /* fds with one message */

/* Sends `msg` with `nfds` fds. Never raises SIGPIPE. 0 or -errno. */
int vmsg_send(int sock, struct json_object *msg, const int *fds, unsigned nfds);

/* Receives one message. 1: *msg is a JSON object (caller puts it), fds[0..*nfds) are
 * received descriptors (close-on-exec; the caller owns them). 0: the peer closed the
 * connection. -errno: a bad message (err says why: oversized, too many fds, not a JSON
 * object); every fd that came with it is already closed. */
int vmsg_recv(int sock, struct json_object **msg, int *fds, unsigned *nfds, char *err,
              size_t errlen);

/* Sends {"ok":false,"error":MESSAGE}. */
int vmsg_send_error(int sock, const char *message);

/* Where `vmlab virtmgr` listens and `vmlab vm` connects when --socket is not given:
 * $VMLAB_VIRTMGR_SOCKET, else $XDG_RUNTIME_DIR/vmlab-virtmgr.sock, else
 * /tmp/vmlab-virtmgr-<uid>.sock. */
void virtmgr_default_socket(char *buf, size_t len);

#endif
