/* A listening Unix socket that is safe to create where a previous owner may have died:
 * born 0600, replacing only a stale socket (one nobody listens on), never another file.
 * Shared by the VM control socket and the VM manager's socket. */
#ifndef VMLAB_UNIX_LISTEN_H
#define VMLAB_UNIX_LISTEN_H

#include <stddef.h>
#include <sys/stat.h>

/* Listens on `path` with a non-blocking, close-on-exec socket of `type` (SOCK_STREAM,
 * SOCK_SEQPACKET). Errors read "<what> <path>: ..." and, for a live socket,
 * "<what> <path>: in use by <owner>". Fills *st with the socket file's identity, so
 * unix_listen_unlink() removes exactly that file. Returns the fd or -errno. */
int unix_listen(const char *path, int type, const char *what, const char *owner,
                struct stat *st, char *err, size_t errlen);

/* Removes `path` if it is still the file `st` describes. */
void unix_listen_unlink(const char *path, const struct stat *st);

/* 1 when the peer of connected socket `fd` runs with our effective uid (SO_PEERCRED);
 * *uid (may be NULL) gets the peer's uid, or -1 when unknown. */
int unix_peer_same_uid(int fd, long *uid);

#endif
