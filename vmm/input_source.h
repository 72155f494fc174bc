/* Host input sources for virtio-input devices: `--input KIND,...,path=SOCKET` connects to
 * a Unix stream socket (as crosvm's input devices do) and reads 8-byte evdev events from
 * it, {le16 type, le16 code, le32 value}, handed to the device whole. The socket is
 * non-blocking and read between slices of guest execution (the run loop's poll hook);
 * events split across reads are joined; end of stream or an error stops the source with
 * one log line. Everything delivered is recorded in a trace like control-socket input, so
 * replay needs no socket. */
#ifndef VMLAB_INPUT_SOURCE_H
#define VMLAB_INPUT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#define INPUT_SOURCE_EVENT 8
#define INPUT_SOURCE_BATCH 64   /* events read per poll, at most: bounded work per slice */

struct input_source {
    int fd;                     /* -1: closed */
    unsigned device;            /* index into the VM's devices */
    uint8_t part[INPUT_SOURCE_EVENT];
    unsigned npart;             /* bytes of an event read so far */
    uint64_t events;            /* events delivered */
    char path[108];
};

/* Connects to the socket at `path`. 0 or -errno with a message naming the path. */
int input_source_open(struct input_source *s, const char *path, unsigned device, char *err,
                      size_t errlen);

/* Reads what is waiting (up to INPUT_SOURCE_BATCH events) and calls deliver with whole
 * events. Returns 1 while the source is open, 0 once it ended. */
typedef int (*input_deliver_fn)(void *opaque, unsigned device, const uint8_t *data, size_t len);
int input_source_poll(struct input_source *s, input_deliver_fn deliver, void *opaque);

void input_source_close(struct input_source *s);

/* Splits "kind,...,path=SOCKET,..." into the device arguments without path= (what the
 * trace header records) and the path ("" when none). -EINVAL if either does not fit. */
int input_source_split_args(const char *spec, char *args, size_t argslen, char *path,
                            size_t pathlen);

#endif
