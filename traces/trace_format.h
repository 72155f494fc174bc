/* The vmlab trace file format (traces/FORMAT.md): a versioned little-endian header with
 * the machine description, then CRC-protected chunks of compactly encoded events.
 * Writer, reader and a few helpers shared by the recorder, replayer and tools. */
#ifndef VMLAB_TRACE_FORMAT_H
#define VMLAB_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/machine.h"

#define TRACE_MAGIC          "VMLTRACE"     /* 8 bytes at offset 0 */
#define TRACE_VERSION        3              /* 2: disk content chunks (TDSK), host-in/out events; 3: device windows */
#define TRACE_VERSION_OLDEST 1              /* version 1 files still read (neither) */
#define TRACE_CHUNK_MAGIC    0x4b484354u    /* "TCHK" little-endian */
#define TRACE_DISK_MAGIC     0x4b534454u    /* "TDSK" little-endian: disk content chunk */
#define TRACE_FILE_HDR_SIZE  16             /* magic, version, flags, body length */
#define TRACE_CHUNK_HDR_SIZE 32

/* Caps on every length a file can claim: nothing is allocated beyond these. */
#define TRACE_HEADER_MAX     (64u * 1024)          /* header body bytes */
#define TRACE_CHUNK_TARGET   (64u * 1024)          /* writer closes a chunk past this */
#define TRACE_DATA_MAX       (16u * 1024 * 1024)   /* DMA bytes in one event */
#define TRACE_TEXT_MAX       (64u * 1024)          /* control / fault text */
#define TRACE_CHUNK_MAX      (TRACE_DATA_MAX + TRACE_CHUNK_TARGET + 64)
#define TRACE_CHUNK_EVENTS_MAX (TRACE_CHUNK_MAX / 3)  /* every event is >= 3 bytes */
#define TRACE_VERSION_STR_MAX 32

enum trace_kind {
    TRACE_EV_MMIO_READ  = 1,
    TRACE_EV_MMIO_WRITE = 2,
    TRACE_EV_PIO_IN     = 3,
    TRACE_EV_PIO_OUT    = 4,
    TRACE_EV_DMA_READ   = 5,    /* device read guest memory: data = bytes it got */
    TRACE_EV_DMA_WRITE  = 6,    /* device wrote guest memory: data = bytes written */
    TRACE_EV_IRQ        = 7,    /* addr = gsi, value = level */
    TRACE_EV_NOTIFY     = 8,    /* virtio QueueNotify (derived from the MMIO write before it) */
    TRACE_EV_CONTROL    = 9,    /* data = control-socket request (JSON text) */
    TRACE_EV_FAULT      = 10,   /* data = injected fault description (text) */
    TRACE_EV_END        = 11,   /* value = exit status (int) */
    /* Since version 2: what a device exchanged with its host backend (network frames).
     * data = the bytes; host-in is replayed into the device (value 1: "nested", delivered
     * inside the device's own call into its backend), host-out is checked. */
    TRACE_EV_HOST_IN    = 12,
    TRACE_EV_HOST_OUT   = 13,
    TRACE_EV_INPUT      = 14,   /* host message handed to a device: data = its bytes */
    TRACE_EV_KIND_MAX   = 14,
};

/* One decoded event. `data` points into the reader's buffer (valid while it lives). */
struct trace_event {
    uint64_t time_ns;
    uint64_t addr;          /* bus address, DMA gpa, IRQ gsi, NOTIFY queue */
    uint64_t value;         /* access value, IRQ level, END status (sign-extended) */
    const uint8_t *data;    /* DMA/HOST/INPUT bytes, CONTROL/FAULT text (not NUL-terminated) */
    uint32_t len;           /* bytes at data */
    uint32_t vcpu;
    int16_t device;         /* index into the header's devices, -1 for none/unknown */
    uint8_t kind;           /* enum trace_kind */
    uint8_t size;           /* bus access size 1, 2, 4, 8 */
};

/* Disk content (version 2): what replay needs from each file-backed disk instead of the
 * image. Records live in their own chunks (TDSK), interleaved with the event chunks. */
enum trace_disk_kind {
    TRACE_DISK_INFO    = 1,     /* a = disk size in bytes, b = flags (TRACE_DISK_F_*) */
    TRACE_DISK_SECTORS = 2,     /* a = first 512-byte sector, data/len = the content the run
                                   first read there (before it wrote it) */
    TRACE_DISK_ERROR   = 3,     /* a = request number (from 0, per disk), op, b = errno the
                                   disk returned */
    TRACE_DISK_KIND_MAX = 3,
};
#define TRACE_DISK_F_READ_ONLY 0x1u
#define TRACE_DISK_FLAGS_KNOWN TRACE_DISK_F_READ_ONLY
#define TRACE_DISK_SECTOR      512u
#define TRACE_DISK_ERRNO_MAX   4095u

/* Disk requests, numbered in the order the device made them (each read, write, flush,
 * discard and write-zeroes call is one). */
enum trace_disk_op {
    TRACE_DISK_OP_READ = 1, TRACE_DISK_OP_WRITE = 2, TRACE_DISK_OP_FLUSH = 3,
    TRACE_DISK_OP_DISCARD = 4, TRACE_DISK_OP_WRITE_ZEROES = 5, TRACE_DISK_OP_MAX = 5,
};

struct trace_disk_record {
    uint64_t a, b;              /* see enum trace_disk_kind */
    const uint8_t *data;        /* SECTORS: content (points into the reader's buffer) */
    uint32_t len;               /* SECTORS: bytes at data */
    int16_t device;             /* index into the header's devices */
    uint8_t kind;               /* enum trace_disk_kind */
    uint8_t op;                 /* ERROR: enum trace_disk_op */
};

const char *trace_disk_op_name(unsigned op);

/* Header flags. */
#define TRACE_FLAG_MID_RUN   0x1u   /* recording began on a running VM (vmlab trace start) */
#define TRACE_FLAGS_KNOWN    TRACE_FLAG_MID_RUN

struct trace_header {
    unsigned version;
    unsigned flags;                     /* TRACE_FLAG_* */
    char vmlab_version[TRACE_VERSION_STR_MAX + 1];
    struct machine_config machine;      /* ram size, seed, backend, devices */
};

/* Names: "mmio-read", "dma-write", ...; trace_kind_parse also accepts the groups "mmio",
 * "pio", "dma", "bus". Returns a bit mask of kinds (1u << kind), 0 if unknown. */
const char *trace_kind_name(unsigned kind);
uint32_t trace_kind_parse(const char *name);
static inline int trace_kind_is_bus(unsigned k) { return k >= TRACE_EV_MMIO_READ && k <= TRACE_EV_PIO_OUT; }
static inline int trace_kind_is_write(unsigned k) { return k == TRACE_EV_MMIO_WRITE || k == TRACE_EV_PIO_OUT; }

uint32_t trace_crc32(uint32_t crc, const void *data, size_t len);

/* ---- writing ---- */
struct trace_writer;

/* Creates `path` (truncating) and writes the header. 0 or -errno with a message. */
int trace_writer_open(struct trace_writer **out, const char *path, const struct trace_header *h,
                      char *err, size_t errlen);
/* Appends one event (buffered; a chunk is written when it passes TRACE_CHUNK_TARGET).
 * Times must not decrease (a smaller time is recorded as the previous one). Data longer
 * than the caps is refused with -EMSGSIZE. Write errors are sticky and reported by close. */
int trace_writer_add(struct trace_writer *w, const struct trace_event *ev);
/* Appends one disk record (buffered in its own chunk, written before the next event chunk
 * or when it passes TRACE_CHUNK_TARGET). Content longer than TRACE_DATA_MAX: -EMSGSIZE. */
int trace_writer_add_disk(struct trace_writer *w, const struct trace_disk_record *rec);
/* Writes the pending chunks now. */
int trace_writer_flush(struct trace_writer *w);
/* Flushes, closes and frees. 0 or the first -errno seen, with a message. */
int trace_writer_close(struct trace_writer *w, char *err, size_t errlen);
uint64_t trace_writer_bytes(const struct trace_writer *w);
uint64_t trace_writer_events(const struct trace_writer *w);

/* Writes a whole trace (minimize, tests); the disk records go before the events. */
int trace_write_file(const char *path, const struct trace_header *h,
                     const struct trace_event *ev, size_t n, char *err, size_t errlen);
int trace_write_file_disks(const char *path, const struct trace_header *h,
                           const struct trace_disk_record *disks, size_t ndisks,
                           const struct trace_event *ev, size_t n, char *err, size_t errlen);

/* ---- reading ---- */
struct trace_reader;

/* Maps a file / wraps a caller buffer (not copied; must outlive the reader) and parses
 * the header. 0 or -errno with a message (wrong magic/version, damaged header). */
int trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen);
int trace_reader_open_mem(struct trace_reader **out, const void *buf, size_t len,
                          char *err, size_t errlen);
void trace_reader_close(struct trace_reader *r);
const struct trace_header *trace_reader_header(const struct trace_reader *r);

/* Next event: 1 with *ev filled, 0 at a clean end of file, -errno on damage with a message
 * naming the chunk index and file offset. Every event before an error is intact. */
int trace_reader_next(struct trace_reader *r, struct trace_event *ev, char *err, size_t errlen);

/* Disk records are checked whenever their chunk is met; the reader keeps them (for replay)
 * only once asked to, before reading events (trace_reader_load asks). The array is valid
 * while the reader lives. */
void trace_reader_keep_disks(struct trace_reader *r);
const struct trace_disk_record *trace_reader_disks(const struct trace_reader *r, size_t *n);
/* Sector bytes recorded so far for device dev, and disk chunk bytes in the file so far. */
uint64_t trace_reader_disk_bytes(const struct trace_reader *r, unsigned dev);
uint64_t trace_reader_disk_chunk_bytes(const struct trace_reader *r);

/* Index of the event trace_reader_next returns next; chunks read so far. */
uint64_t trace_reader_index(const struct trace_reader *r);
uint64_t trace_reader_chunks(const struct trace_reader *r);

/* Reads every event into a malloc'ed array (*evs, *n). On damage returns -errno with the
 * message, and *evs and *n still hold the intact prefix (free it either way). A trace without
 * a final END event is reported as truncated (-EPIPE) the same way. */
int trace_reader_load(struct trace_reader *r, struct trace_event **evs, size_t *n,
                      char *err, size_t errlen);

/* Rewrites the header CRC and every chunk CRC of a buffer in place (where the lengths are
 * plausible), so that a fuzzer's mutations reach the decoder and the replayer instead of
 * stopping at the checksums. */
void trace_fix_crcs(uint8_t *buf, size_t len);

/* ---- helpers for tools ---- */
/* "virtio-blk#0", or the device's id= if it has one. */
void trace_device_label(const struct trace_header *h, int dev, char *out, size_t outlen);
/* Does NAME select device dev? Matches kind, id=, "#N", "N" or "kind#N". */
int trace_device_match(const struct trace_header *h, int dev, const char *name);
/* One line, no newline: "#12 1500ns cpu0 mmio-write virtio-blk#0 +0x50 = 0x0 (4)". */
void trace_event_format(const struct trace_header *h, uint64_t index, const struct trace_event *ev,
                        char *out, size_t outlen);
/* Field-wise equality (time included when check_time). */
int trace_event_equal(const struct trace_event *a, const struct trace_event *b, int check_time);

#endif
