/* The host side of virtio-vsock as Firecracker's hybrid Unix socket:
 *  - a host client connects to PATH and sends "CONNECT <port>\n" (decimal, at most
 *    VSOCK_UDS_LINE_MAX bytes with the newline); once the guest accepts, it reads
 *    "OK <host_port>\n" and the socket is the stream. A bad line, end of stream before the
 *    newline, or a guest that refuses closes the client;
 *  - a guest connect to CID 2 port P connects to PATH_P; nothing there: the guest gets RST.
 * Every socket is non-blocking and served from the device's poll. */
#ifndef VMLAB_VSOCK_UDS_H
#define VMLAB_VSOCK_UDS_H

#include <stddef.h>
#include <stdint.h>

#define VSOCK_UDS_LINE_MAX 32           /* "CONNECT 4294967295\n" is 19 */
#define VSOCK_UDS_MAX_HANDSHAKES 32     /* clients that have not sent their line yet */

struct vsock_dev;

/* Listens on path and becomes d's host side. 0 or -errno with a message naming path. */
int vsock_uds_open(struct vsock_dev *d, const char *path, char *err, size_t errlen);

/* Parses one CONNECT line (without its newline). 0 and *port, or -EINVAL. */
int vsock_uds_parse_connect(const char *line, size_t len, uint32_t *port);

#endif
