/* Fuzz target: virtio-blk (devices/virtio/virtio_blk.c) over an in-memory disk, driven by
 * the mock virtio driver (tests/mock_virtio.h).
 *
 * Input: [option byte (fuzz/mock_common.h)] then 6-byte request records:
 *   [type][sector lo][sector hi][count][layout][fill]
 *   type % 8: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES, a raw type (the fill byte),
 *             a malformed request (header too short / status not writable / no data)
 *   sector: % (disk sectors + 8), so requests past the end occur; count: 1 + count % 8
 *   layout: bits 0-1 the number of data segments - 1; bit 2 a data length that is not a
 *           multiple of 512; bit 3 a write-zeroes UNMAP flag
 * Invariants (abort() on violation):
 *   - a well-formed request always completes, with a status byte of OK, IOERR or UNSUPP and
 *     a used length that fits the writable part;
 *   - a request reaching past the end of the disk never succeeds;
 *   - no lost or corrupted acknowledged write: every IN that succeeds returns the bytes of
 *     the last successful OUT / WRITE_ZEROES to those sectors (a shadow copy of the disk),
 *     and at the end the whole disk is read back and compared;
 *   - the device status stays legal and the interrupt line follows InterruptStatus.
 * VMLAB_FUZZ_TRACE=FILE records the run as a vmlab trace (fuzz/fz_trace.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio_blk.h"
#include "fuzz/fz_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK_SECTORS 64u
#define SECT VIRTIO_BLK_SECTOR_SIZE
#define MAX_COUNT 8u
#define RUN_SEED 1
#define DISK_ARGS "mem=32K"

static uint8_t shadow[DISK_SECTORS * SECT];
static uint8_t known[DISK_SECTORS];         /* 1: shadow holds the sector's contents */

/* 256 + MAX_COUNT sectors of the OUT data pattern, t[k] = 7k mod 256. */
static const uint8_t *out_pattern(void)
{
    static uint8_t t[256 + MAX_COUNT * SECT];

    if (!t[1])
        for (size_t k = 0; k < sizeof t; k++)
            t[k] = (uint8_t)(k * 7);
    return t;
}

struct bufs {
    uint64_t hdr, data, status;
};

static void put_hdr(struct mock_virtio *m, uint64_t gpa, uint32_t type, uint64_t sector)
{
    uint8_t h[16] = { 0 };

    memcpy(h, &type, 4);        /* x86 host: little-endian like the device expects */
    memcpy(h + 8, &sector, 8);
    memcpy(mock_virtio_host(m, gpa, 16), h, 16);
}

/* Issues one request with the data area split into nseg pieces; returns the status byte,
 * -1 if the device did not complete the request, SKIP if the driver could not even queue
 * it (more descriptors than the ring holds). */
#define SKIP 0x100
static int request(struct mock_virtio *m, const struct bufs *b, uint32_t type,
                   uint64_t sector, uint32_t dlen, int dwrite, unsigned nseg, uint32_t *used)
{
    struct mock_buf mb[6];
    unsigned n = 0;
    uint32_t off = 0;

    put_hdr(m, b->hdr, type, sector);
    *(uint8_t *)mock_virtio_host(m, b->status, 1) = 0xee;
    mb[n++] = (struct mock_buf){ b->hdr, 16, 0 };
    if (dlen) {
        for (unsigned i = 0; i < nseg; i++) {
            uint32_t piece = i + 1 < nseg ? dlen / nseg : dlen - off;

            if (!piece)
                continue;
            mb[n++] = (struct mock_buf){ b->data + off, piece, dwrite };
            off += piece;
        }
    }
    mb[n++] = (struct mock_buf){ b->status, 1, 1 };
    int r = mock_vq_request(m, 0, mb, n, used);
    if (r == -EAGAIN)
        return -1;
    if (r < 0)
        return SKIP;
    if (*used > (dwrite ? dlen : 0) + 1)
        fz_abort();    /* more reported than the writable part holds */
    return *(uint8_t *)mock_virtio_host(m, b->status, 1);
}

static void check_read(struct mock_virtio *m, const struct bufs *b, uint64_t sector,
                       uint32_t count)
{
    const uint8_t *got = mock_virtio_host(m, b->data, count * SECT);

    for (uint32_t i = 0; i < count; i++)
        if (known[sector + i] && memcmp(got + i * SECT, shadow + (sector + i) * SECT, SECT))
            fz_abort();    /* an acknowledged write was lost or corrupted */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mock_virtio m;
    struct bufs b;
    char err[256];
    uint32_t used;

    if (size < 1)
        return 0;
    if (fz_mock_init(&m, fz_mock_ram(data[0], 1), 0) < 0)
        fz_abort();
    fzt_begin(&m, &virtio_blk_type, DISK_ARGS, RUN_SEED);
    if (mock_virtio_create(&m, &virtio_blk_type, DISK_ARGS, err, sizeof err) < 0)
        fz_abort();
    fzt_route(&m);
    if (fz_mock_setup(&m, data[0], VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                      VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |
                      VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                      VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX)) < 0)
        fz_abort();    /* the happy-path setup must always work */
    b.hdr = mock_virtio_alloc(&m, 16, 16);
    b.data = mock_virtio_alloc(&m, MAX_COUNT * SECT, 16);
    b.status = mock_virtio_alloc(&m, 16, 16);
    if (!b.hdr || !b.data || !b.status)
        fz_abort();
    memset(shadow, 0, sizeof shadow);
    memset(known, 1, sizeof known);     /* a fresh mem disk reads as zeros */

    for (size_t p = 1; p + 6 <= size && fz_live(&m); p += 6) {
        const uint8_t *r = data + p;
        uint64_t sector = ((unsigned)r[1] | (unsigned)r[2] << 8) % (DISK_SECTORS + 8);
        uint32_t count = 1 + r[3] % MAX_COUNT, dlen = count * SECT;
        unsigned nseg = 1 + (r[4] & 3);
        int in_range = sector + count <= DISK_SECTORS, st;
        uint8_t *buf = mock_virtio_host(&m, b.data, MAX_COUNT * SECT);

        if (r[4] & 4)
            dlen -= 1 + r[5] % (SECT - 1);     /* not a whole number of sectors */
        switch (r[0] % 8) {
        case 0:                                 /* IN */
            memset(buf, 0x5a, dlen);
            st = request(&m, &b, VIRTIO_BLK_T_IN, sector, dlen, 1, nseg, &used);
            if (st == SKIP)
                break;
            if (st < 0 || st > VIRTIO_BLK_S_UNSUPP)
                fz_abort();
            if (st == VIRTIO_BLK_S_OK) {
                if (!in_range || dlen % SECT || used != dlen + 1)
                    fz_abort();
                check_read(&m, &b, sector, count);
            }
            break;
        case 1:                                 /* OUT */
            /* Byte i is 7 * (i + r[5] + sector) mod 256: what lands where depends on the
             * offset, the sector and the request. Copied from a table, because a per-byte
             * loop under ASan was a sixth of the target's time. */
            memcpy(buf, out_pattern() + (uint8_t)(r[5] + sector), dlen);
            st = request(&m, &b, VIRTIO_BLK_T_OUT, sector, dlen, 0, nseg, &used);
            if (st == SKIP)
                break;
            if (st < 0 || st > VIRTIO_BLK_S_UNSUPP)
                fz_abort();
            if (st == VIRTIO_BLK_S_OK) {
                if (!in_range || dlen % SECT)
                    fz_abort();
                memcpy(shadow + sector * SECT, buf, dlen);
                memset(known + sector, 1, count);
            } else if (in_range && !(dlen % SECT)) {
                memset(known + sector, 0, count);  /* a failed write may be torn */
            }
            break;
        case 2:                                 /* FLUSH */
            st = request(&m, &b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 1, &used);
            if (st != VIRTIO_BLK_S_OK)
                fz_abort();    /* a mem disk always flushes */
            break;
        case 3:                                 /* GET_ID */
            st = request(&m, &b, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 1, 1, &used);
            if (st < 0 || st > VIRTIO_BLK_S_UNSUPP)
                fz_abort();
            break;
        case 4:                                 /* DISCARD */
        case 5: {                               /* WRITE_ZEROES */
            int wz = r[0] % 8 == 5;
            uint32_t flags = wz && (r[4] & 8) ? VIRTIO_BLK_WZ_F_UNMAP : 0;
            uint32_t nsec = count;

            memcpy(buf, &sector, 8);
            memcpy(buf + 8, &nsec, 4);
            memcpy(buf + 12, &flags, 4);
            st = request(&m, &b, wz ? VIRTIO_BLK_T_WRITE_ZEROES : VIRTIO_BLK_T_DISCARD, 0, 16,
                         0, 1, &used);
            if (st < 0 || st > VIRTIO_BLK_S_UNSUPP)
                fz_abort();
            if (st == VIRTIO_BLK_S_OK && !in_range)
                fz_abort();
            if (in_range) {
                if (st == VIRTIO_BLK_S_OK && wz) {
                    memset(shadow + sector * SECT, 0, count * SECT);
                    memset(known + sector, 1, count);
                } else {
                    memset(known + sector, 0, count);   /* discarded: contents unspecified */
                }
            }
            break;
        }
        case 6:                                 /* an arbitrary type code */
            st = request(&m, &b, r[5] | (uint32_t)r[4] << 8, sector, dlen, r[3] & 1, nseg,
                         &used);
            if (st == SKIP)
                break;
            if (st < 0 || st > VIRTIO_BLK_S_UNSUPP)
                fz_abort();
            if (st == VIRTIO_BLK_S_OK)
                memset(known, 0, sizeof known);  /* unknown semantics: forget the shadow */
            break;
        default: {                              /* malformed layouts */
            struct mock_buf mb[3];
            unsigned n = 0;

            put_hdr(&m, b.hdr, r[5] & 1 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector);
            mb[n++] = (struct mock_buf){ b.hdr, (r[4] & 1) ? 8 : 16, r[4] & 2 ? 1 : 0 };
            if (r[4] & 4)
                mb[n++] = (struct mock_buf){ b.data, dlen, r[5] & 2 ? 1 : 0 };
            if (!(r[4] & 8))
                mb[n++] = (struct mock_buf){ b.status, 1, r[5] & 4 ? 0 : 1 };
            /* The device may refuse to complete it (and mark itself NEEDS_RESET). */
            if (mock_vq_request(&m, 0, mb, n, &used) >= 0 && used > dlen + 1)
                fz_abort();
            memset(known, 0, sizeof known);     /* whatever it did, trust nothing now */
            break;
        }
        }
        fz_check_status(&m);
    }

    /* The end: every sector the shadow knows must read back. */
    for (uint32_t s = 0; fz_live(&m) && s < DISK_SECTORS; s += MAX_COUNT) {
        int st = request(&m, &b, VIRTIO_BLK_T_IN, s, MAX_COUNT * SECT, 1, 1, &used);

        if (st != VIRTIO_BLK_S_OK || used != MAX_COUNT * SECT + 1)
            fz_abort();
        check_read(&m, &b, s, MAX_COUNT);
    }
    fz_check_status(&m);
    fzt_finish();
    fz_mock_done(&m);
    return 0;
}
