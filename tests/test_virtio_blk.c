/* virtio-blk through the mock driver: every ring format / feature combination, request
 * types, errors, reset during I/O, configuration, control-socket operations. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio/virtio_blk.h"
#include "tests/check_run.h"
#include "tests/mock_virtio.h"

struct blk {
    struct mock_virtio m;
    uint64_t hdr, status, data;     /* guest buffers */
};

static void blk_open(struct blk *b, const char *args, int packed, int indirect, int event_idx,
                     uint16_t qsize)
{
    char err[256] = "";
    struct mock_virtio_opts o = { .packed = packed, .indirect = indirect,
                                  .event_idx = event_idx, .queue_size = qsize,
                                  .device_features = ~0ULL & 0xffffff };

    ck_assert_int_eq(mock_virtio_init(&b->m, 4 << 20, 1), 0);
    ck_assert_msg(mock_virtio_create(&b->m, &virtio_blk_type, args, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(mock_virtio_setup(&b->m, &o), 0);
    ck_assert_int_eq(b->m.packed, packed);
    ck_assert_int_eq(b->m.indirect, indirect);
    ck_assert_int_eq(b->m.event_idx, event_idx);
    b->hdr = mock_virtio_alloc(&b->m, 16, 16);
    b->status = mock_virtio_alloc(&b->m, 1, 1);
    b->data = mock_virtio_alloc(&b->m, 256 << 10, 4096);
    ck_assert(b->hdr && b->status && b->data);
}

static void set_hdr(struct blk *b, uint32_t type, uint64_t sector)
{
    uint8_t *h = mock_virtio_host(&b->m, b->hdr, 16);
    memcpy(h, &type, 4);
    memset(h + 4, 0, 4);
    memcpy(h + 8, &sector, 8);
    *(uint8_t *)mock_virtio_host(&b->m, b->status, 1) = 0xee;
}

/* One request with the data area split into `nseg` equal segments. Returns the status
 * byte; *used gets the used length. */
static int blk_req(struct blk *b, uint32_t type, uint64_t sector, uint32_t len, int nseg,
                   uint32_t *used)
{
    struct mock_buf bufs[40];
    unsigned n = 0;
    int writable = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

    set_hdr(b, type, sector);
    bufs[n++] = (struct mock_buf){ b->hdr, 16, 0 };
    for (int i = 0; i < nseg && len; i++)
        bufs[n++] = (struct mock_buf){ b->data + (uint64_t)i * (len / nseg), len / nseg,
                                       writable };
    bufs[n++] = (struct mock_buf){ b->status, 1, 1 };
    uint32_t l = 0;
    int id = mock_vq_request(&b->m, 0, bufs, n, &l);
    ck_assert_msg(id >= 0, "request not completed: %d (log: %s)", id, mock_virtio_log(&b->m));
    if (used)
        *used = l;
    return *(uint8_t *)mock_virtio_host(&b->m, b->status, 1);
}

static uint8_t *data(struct blk *b) { return mock_virtio_host(&b->m, b->data, 256 << 10); }

START_TEST(feature_matrix)
{
    int packed = _i & 1, indirect = !!(_i & 2), event_idx = !!(_i & 4);
    struct blk b;
    uint32_t used;

    blk_open(&b, "mem=1M,id=vmlab-disk-0", packed, indirect, event_idx, 0);
    /* 600 requests: the 256-entry ring wraps twice (packed wrap counters flip). */
    for (unsigned r = 0; r < 600; r++) {
        uint64_t sector = (r * 8) % 2040;
        int nseg = 1 << (r % 4);
        memset(data(&b), (int)(r & 0xff), 4096);
        ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, sector, 4096, nseg, &used),
                         VIRTIO_BLK_S_OK);
        ck_assert_uint_eq(used, 1);
        memset(data(&b), 0, 4096);
        ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, sector, 4096, 8 >> (r % 4), &used),
                         VIRTIO_BLK_S_OK);
        ck_assert_uint_eq(used, 4097);
        uint8_t want[4096];
        memset(want, (int)(r & 0xff), sizeof(want));
        ck_assert_msg(memcmp(data(&b), want, sizeof(want)) == 0, "request %u read back wrong", r);
    }
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, &used), VIRTIO_BLK_S_OK);
    memset(data(&b), 0x55, 64);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_GET_ID, 0, 20, 1, &used), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(used, 21);
    ck_assert(memcmp(data(&b), "vmlab-disk-0\0\0\0\0\0\0\0\0", 20) == 0);
    ck_assert_uint_eq(data(&b)[20], 0x55);
    /* A long scatter list: 32 segments (direct, or the largest indirect table). */
    memset(data(&b), 0xa7, 32 * 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 100, 32 * 512, 32, NULL), VIRTIO_BLK_S_OK);
    memset(data(&b), 0, 32 * 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 100, 32 * 512, 32, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data(&b)[32 * 512 - 1], 0xa7);
    ck_assert_uint_eq(b.m.vqs[0].num_free, b.m.vqs[0].num);
    uint32_t st = mock_virtio_read32(&b.m, VIRTIO_MMIO_STATUS);
    ck_assert_uint_eq(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    uint64_t reqs = 0;
    ck_assert_int_eq(virtio_dev_queue_stats(b.m.state, 0, &reqs, NULL), 0);
    ck_assert_uint_eq(reqs, 1200 + 1 + 1 + 2);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(out_of_range_is_ioerr)
{
    struct blk b;
    uint32_t used;

    blk_open(&b, "mem=64K", 0, 0, 0, 0);      /* 128 sectors */
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 127, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 127, 1024, 1, &used), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(used, 1);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 128, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 128, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, UINT64_MAX, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, UINT64_MAX / 512, 512, 1, NULL),
                     VIRTIO_BLK_S_IOERR);
    /* Not a whole number of sectors. */
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 100, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 0, 100, 1, NULL), VIRTIO_BLK_S_IOERR);
    /* The device keeps working after I/O errors. */
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 512, 1, NULL), VIRTIO_BLK_S_OK);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(read_only)
{
    struct blk b;

    blk_open(&b, "mem=64K,ro", _i, 0, 0, 0);
    ck_assert(b.m.features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
    memset(data(&b), 0x11, 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 0, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data(&b)[0], 0);      /* the write did not land */
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
    mock_virtio_destroy(&b.m);
}
END_TEST

static int ranges_req(struct blk *b, uint32_t type, uint64_t sector, uint32_t num,
                      uint32_t flags)
{
    uint8_t *d = data(b);
    memcpy(d, &sector, 8);
    memcpy(d + 8, &num, 4);
    memcpy(d + 12, &flags, 4);
    return blk_req(b, type, 0, 16, 1, NULL);
}

START_TEST(discard_and_write_zeroes)
{
    struct blk b;

    blk_open(&b, "mem=64K", 1, 1, 1, 0);
    memset(data(&b), 0x77, 4096);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 8, 4096, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_WRITE_ZEROES, 9, 2, 0), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 8, 4096, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data(&b)[0], 0x77);
    ck_assert_uint_eq(data(&b)[512], 0);
    ck_assert_uint_eq(data(&b)[1535], 0);
    ck_assert_uint_eq(data(&b)[1536], 0x77);
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_WRITE_ZEROES, 8, 1, VIRTIO_BLK_WZ_F_UNMAP),
                     VIRTIO_BLK_S_OK);
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_DISCARD, 8, 8, 0), VIRTIO_BLK_S_OK);
    /* Discard takes no flags; write zeroes only UNMAP. */
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_DISCARD, 8, 8, 1), VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 2), VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_DISCARD, 127, 2, 0), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(ranges_req(&b, VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX, 1, 0),
                     VIRTIO_BLK_S_IOERR);
    /* Unknown request types. */
    ck_assert_int_eq(blk_req(&b, 99, 0, 0, 0, NULL), VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(blk_req(&b, 10 /* GET_LIFETIME, not offered */, 0, 0, 0, NULL),
                     VIRTIO_BLK_S_UNSUPP);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(config_space)
{
    struct blk b;
    uint64_t v;

    blk_open(&b, "mem=3M", 0, 0, 0, 0);
    ck_assert_int_eq(mock_virtio_read(&b.m, VIRTIO_MMIO_CONFIG, 8, &v), 0);
    ck_assert_uint_eq(v, 3 * 2048);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG + 0), 3 * 2048);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG + 4), 0);
    mock_virtio_read(&b.m, VIRTIO_MMIO_CONFIG + 1, 1, &v);
    ck_assert_uint_eq(v, (3 * 2048) >> 8);
    mock_virtio_read(&b.m, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_NUM_QUEUES, 2, &v);
    ck_assert_uint_eq(v, 1);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_SEG_MAX),
                      VIRTIO_BLK_SEG_MAX);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_SIZE_MAX),
                      VIRTIO_BLK_SIZE_MAX);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CFG_BLK_SIZE),
                      512);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG +
                                         VIRTIO_BLK_CFG_MAX_DISCARD_SEG),
                      VIRTIO_BLK_MAX_DISCARD_SEG);
    /* Beyond the config structure and in the window: zeros. */
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG + 0x200), 0);
    /* Offered features. */
    uint64_t want = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
                    VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX);
    ck_assert_uint_eq(b.m.features & want, want);
    ck_assert_uint_eq(b.m.features & VIRTIO_BIT(VIRTIO_BLK_F_RO), 0);
    /* Config is read-only: a write is ignored (and logged). */
    mock_virtio_write32(&b.m, VIRTIO_MMIO_CONFIG, 7);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG), 3 * 2048);
    ck_assert(strstr(mock_virtio_log(&b.m), "config write") != NULL);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(reset_during_io)
{
    struct blk b;
    struct mock_buf bufs[3];
    struct mock_virtio_opts o = { .packed = _i, .indirect = 1, .event_idx = 1 };

    blk_open(&b, "mem=64K", _i, 1, 1, 0);
    /* Ten writes queued but not kicked: in flight from the driver's point of view. */
    memset(data(&b), 0x99, 512);
    set_hdr(&b, VIRTIO_BLK_T_OUT, 3);
    bufs[0] = (struct mock_buf){ b.hdr, 16, 0 };
    bufs[1] = (struct mock_buf){ b.data, 512, 0 };
    bufs[2] = (struct mock_buf){ b.status, 1, 1 };
    for (int i = 0; i < 10; i++)
        ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    mock_virtio_write32(&b.m, VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_STATUS), 0);
    mock_virtio_write32(&b.m, VIRTIO_MMIO_QUEUE_SEL, 0);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_QUEUE_READY), 0);
    /* A kick after reset does nothing. */
    mock_virtio_write32(&b.m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    ck_assert_uint_eq(b.m.irq_level, 0);
    /* Re-initialise (the driver clears its rings) and use the disk again. */
    mock_virtio_reset(&b.m);
    ck_assert_int_eq(mock_virtio_setup(&b.m, &o), 0);
    memset(data(&b), 0xff, 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 3, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data(&b)[0], 0);      /* the un-kicked writes never ran */
    memset(data(&b), 0x42, 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 3, 512, 1, NULL), VIRTIO_BLK_S_OK);
    memset(data(&b), 0, 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 3, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data(&b)[511], 0x42);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(malformed_request_needs_reset)
{
    struct blk b;
    struct mock_buf bufs[2];

    blk_open(&b, "mem=64K", _i, 0, 0, 0);
    set_hdr(&b, VIRTIO_BLK_T_IN, 0);
    /* No status byte: the device cannot even report an error. */
    bufs[0] = (struct mock_buf){ b.hdr, 16, 0 };
    bufs[1] = (struct mock_buf){ b.data, 512, 0 };
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 2), 0);
    mock_vq_kick(&b.m, 0);
    ck_assert(mock_virtio_read32(&b.m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    ck_assert(mock_virtio_read32(&b.m, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
    ck_assert_int_eq(b.m.irq_level, 1);
    ck_assert(strstr(mock_virtio_log(&b.m), "lacks a header or status") != NULL);
    mock_virtio_destroy(&b.m);

    /* A header shorter than 16 bytes. */
    blk_open(&b, "mem=64K", _i, 0, 0, 0);
    bufs[0] = (struct mock_buf){ b.hdr, 8, 0 };
    bufs[1] = (struct mock_buf){ b.status, 1, 1 };
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 2), 0);
    mock_vq_kick(&b.m, 0);
    ck_assert(mock_virtio_read32(&b.m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(file_backed)
{
    char path[] = "/tmp/vmlab-blk-XXXXXX", args[128], err[256] = "";
    int fd = mkstemp(path);
    struct blk b;
    uint8_t sector[512];

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    memset(sector, 0x3c, sizeof(sector));
    ck_assert_int_eq(pwrite(fd, sector, 512, 512 * 10), 512);
    snprintf(args, sizeof(args), "path=%s", path);
    blk_open(&b, args, 0, 1, 0, 0);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG), 2048);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 10, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data(&b)[100], 0x3c);
    memset(data(&b), 0xc3, 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 11, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(pread(fd, sector, 512, 512 * 11), 512);
    ck_assert_uint_eq(sector[0], 0xc3);
    mock_virtio_destroy(&b.m);

    /* Read-only by argument: writes fail, the file is unchanged. */
    snprintf(args, sizeof(args), "path=%s,ro", path);
    blk_open(&b, args, 1, 0, 0, 0);
    memset(data(&b), 0x01, 512);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 11, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(pread(fd, sector, 512, 512 * 11), 512);
    ck_assert_uint_eq(sector[0], 0xc3);
    mock_virtio_destroy(&b.m);

    struct mock_virtio m;
    mock_virtio_init(&m, 1 << 20, 1);
    ck_assert_int_lt(mock_virtio_create(&m, &virtio_blk_type, "path=/nonexistent/disk.img", err,
                                        sizeof(err)), 0);
    ck_assert(strstr(err, "/nonexistent/disk.img") != NULL);
    mock_virtio_destroy(&m);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(bad_arguments)
{
    static const char *const bad[] = { "", "mem=1M,path=/tmp/x", "mem=0", "mem=1000",
                                       "mem=lots", "mem=1M,colour=red",
                                       "mem=1M,id=abcdefghijklmnopqrstuvwxyz" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mock_virtio m;
        char err[256] = "";
        mock_virtio_init(&m, 1 << 20, 1);
        ck_assert_int_eq(mock_virtio_create(&m, &virtio_blk_type, bad[i], err, sizeof(err)),
                         -EINVAL);
        ck_assert_msg(err[0] != 0, "no message for '%s'", bad[i]);
        mock_virtio_destroy(&m);
    }
}
END_TEST

START_TEST(interrupts)
{
    struct blk b;

    blk_open(&b, "mem=64K", 0, 0, 0, 0);
    ck_assert_int_eq(b.m.irq_level, 0);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(b.m.irq_level, 1);
    ck_assert_uint_eq(mock_virtio_ack_irq(&b.m), VIRTIO_MMIO_INT_VRING);
    ck_assert_int_eq(b.m.irq_level, 0);
    /* The driver asks for no interrupts. */
    mock_vq_set_no_interrupt(&b.m, 0, 1);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(b.m.irq_level, 0);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(resize_via_control)
{
    struct blk b;
    char err[128];

    blk_open(&b, "mem=64K", 0, 0, 0, 0);
    uint32_t gen = mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG_GENERATION);
    ck_assert_int_eq(virtio_blk_type.resize(b.m.state, 128 << 10, err, sizeof(err)), 0);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG), 256);
    ck_assert_uint_ne(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG_GENERATION), gen);
    ck_assert_uint_eq(mock_virtio_ack_irq(&b.m), VIRTIO_MMIO_INT_CONFIG);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 200, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(virtio_blk_type.resize(b.m.state, 1000, err, sizeof(err)), -EINVAL);
    ck_assert_uint_eq(mock_virtio_read32(&b.m, VIRTIO_MMIO_CONFIG), 256);
    mock_virtio_destroy(&b.m);
}
END_TEST

START_TEST(fault_plan_latency_and_errors)
{
    struct blk b;
    char err[256] = "";
    struct mock_buf bufs[3];
    uint32_t id, len;

    blk_open(&b, "mem=64K", _i, 1, 1, 0);
    ck_assert_int_eq(virtio_blk_type.inject_fault(b.m.state, "no-such-key=1", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 512, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(virtio_blk_type.inject_fault(b.m.state, "latency-ns=1000,eio-nth=3", err,
                                                  sizeof(err)), 0);
    /* Request 1 of the plan: completes only after 1000 virtual ns. */
    set_hdr(&b, VIRTIO_BLK_T_IN, 1);
    bufs[0] = (struct mock_buf){ b.hdr, 16, 0 };
    bufs[1] = (struct mock_buf){ b.data, 512, 1 };
    bufs[2] = (struct mock_buf){ b.status, 1, 1 };
    mock_virtio_ack_irq(&b.m);
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    mock_vq_kick(&b.m, 0);
    ck_assert_int_eq(mock_vq_get_used(&b.m, 0, &id, &len), 0);
    ck_assert_int_eq(b.m.irq_level, 0);
    mock_virtio_advance(&b.m, 999);
    ck_assert_int_eq(mock_vq_get_used(&b.m, 0, &id, &len), 0);
    mock_virtio_advance(&b.m, 1);
    ck_assert_int_eq(b.m.irq_level, 1);
    ck_assert_int_eq(mock_vq_get_used(&b.m, 0, &id, &len), 1);
    ck_assert_uint_eq(len, 513);
    ck_assert_int_eq(mock_vq_get_used(&b.m, 0, &id, &len), 0);   /* second: at 2000 */
    mock_virtio_advance(&b.m, 1000);
    ck_assert_int_eq(mock_vq_get_used(&b.m, 0, &id, &len), 1);
    /* Request 3 of the plan fails with an I/O error. */
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    mock_vq_kick(&b.m, 0);
    mock_virtio_advance(&b.m, 1000);
    ck_assert_int_eq(mock_vq_get_used(&b.m, 0, &id, &len), 1);
    ck_assert_uint_eq(*(uint8_t *)mock_virtio_host(&b.m, b.status, 1), VIRTIO_BLK_S_IOERR);
    /* Reset with a completion pending: it is dropped, nothing fires later. */
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    mock_vq_kick(&b.m, 0);
    ck_assert_uint_eq(b.m.ntimers, 1);
    mock_virtio_write32(&b.m, VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(b.m.ntimers, 0);
    mock_virtio_advance(&b.m, 5000);
    ck_assert_int_eq(b.m.irq_level, 0);
    /* Destroy with a completion pending cancels its timer. */
    struct mock_virtio_opts o = { .packed = _i, .indirect = 1, .event_idx = 1 };
    mock_virtio_reset(&b.m);
    ck_assert_int_eq(mock_virtio_setup(&b.m, &o), 0);
    /* Stopping the queue (QueueReady = 0) drops its pending completion too. */
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    mock_vq_kick(&b.m, 0);
    ck_assert_uint_eq(b.m.ntimers, 1);
    mock_virtio_write32(&b.m, VIRTIO_MMIO_QUEUE_SEL, 0);
    mock_virtio_write32(&b.m, VIRTIO_MMIO_QUEUE_READY, 0);
    ck_assert_uint_eq(b.m.ntimers, 0);
    b.m.vqs[0].enabled = 0;
    ck_assert_int_eq(mock_virtio_queue_setup(&b.m, 0, 0), 0);
    ck_assert_int_ge(mock_vq_add(&b.m, 0, bufs, 3), 0);
    mock_vq_kick(&b.m, 0);
    ck_assert_uint_eq(b.m.ntimers, 1);
    mock_virtio_destroy(&b.m);
}
END_TEST

/* §2.7.4 / §2.8: the device never writes a device-readable buffer. */
struct wr_watch { uint64_t lo, hi; unsigned hits; };

static void watch_tap(void *opaque, enum guest_mem_dir dir, uint64_t gpa, const void *data,
                      size_t len)
{
    struct wr_watch *w = opaque;
    (void)data;
    if (dir == GUEST_MEM_WRITE && gpa < w->hi && gpa + len > w->lo)
        w->hits++;
}

START_TEST(never_writes_readable_buffers)
{
    struct blk b;
    struct wr_watch hdr_w;

    blk_open(&b, "mem=64K,id=x", _i & 1, !!(_i & 2), 1, 0);
    hdr_w = (struct wr_watch){ b.hdr, b.hdr + 16, 0 };
    guest_mem_set_tap(&b.m.mem, watch_tap, &hdr_w);
    memset(data(&b), 0x5a, 8192);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 0, 8192, 2, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_IN, 0, 4096, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_GET_ID, 0, 20, 1, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 1000, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(hdr_w.hits, 0);
    /* The OUT data buffer itself: watch it while writing from it. */
    struct wr_watch data_w = { b.data, b.data + 8192, 0 };
    guest_mem_set_tap(&b.m.mem, watch_tap, &data_w);
    ck_assert_int_eq(blk_req(&b, VIRTIO_BLK_T_OUT, 16, 8192, 4, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data_w.hits, 0);
    mock_virtio_destroy(&b.m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("virtio_blk");
    TCase *t = tcase_create("blk");

    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, feature_matrix, 0, 8);
    tcase_add_test(t, out_of_range_is_ioerr);
    tcase_add_loop_test(t, read_only, 0, 2);
    tcase_add_test(t, discard_and_write_zeroes);
    tcase_add_test(t, config_space);
    tcase_add_loop_test(t, reset_during_io, 0, 2);
    tcase_add_loop_test(t, malformed_request_needs_reset, 0, 2);
    tcase_add_test(t, file_backed);
    tcase_add_test(t, bad_arguments);
    tcase_add_test(t, interrupts);
    tcase_add_test(t, resize_via_control);
    tcase_add_loop_test(t, fault_plan_latency_and_errors, 0, 2);
    tcase_add_loop_test(t, never_writes_readable_buffers, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
