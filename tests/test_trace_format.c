/* Trace format: round trip, determinism, and every kind of damage a file can have gives
 * its own clear error (never a crash: this suite runs under ASan/UBSan). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "traces/replay.h"
#include "traces/trace_codec.h"
#include "traces/trace_format.h"
#include "vmm/prng.h"
#include "tests/check_run.h"
#include "tests/scratch.h"

static void make_header(struct trace_header *h)
{
    memset(h, 0, sizeof(*h));
    h->version = TRACE_VERSION;
    h->machine.ram_size = 64ULL << 20;
    h->machine.seed = 42;
    snprintf(h->machine.backend, sizeof(h->machine.backend), "sim");
    h->machine.ndevices = 2;
    h->machine.devices[0] = (struct machine_device){ "uart8250", "out=none", 0x3f8, 4, BUS_PIO, .nwindows = 0 };
    h->machine.devices[1] = (struct machine_device){ "virtio-blk", "mem=1M,id=root",
                                                     0xd0000000, 5, BUS_MMIO, .nwindows = 0 };
}

static uint8_t dma_bytes[200000];

/* n events of every kind, deterministic in i; the last is END. */
static struct trace_event *make_events(size_t n)
{
    struct trace_event *ev = calloc(n, sizeof(*ev));
    ck_assert_ptr_nonnull(ev);
    for (size_t i = 0; i < sizeof(dma_bytes); i++)
        dma_bytes[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < n; i++) {
        struct trace_event *e = &ev[i];
        e->time_ns = i * 1000 + (i % 7);
        e->device = -1;
        e->vcpu = (i % 11 == 0) ? 1 : 0;
        switch (i % 11) {
        case 0: e->kind = TRACE_EV_MMIO_WRITE; e->device = 1; e->addr = 0xd0000050;
                e->size = 4; e->value = i & 0xffffffff; break;
        case 1: e->kind = TRACE_EV_MMIO_READ; e->device = 1; e->addr = 0xd0000000 + (i % 64);
                e->size = 1 << (i % 4); e->value = (i * 0x9e3779b97f4a7c15ULL) &
                (e->size == 8 ? ~0ULL : (1ULL << (8 * e->size)) - 1); break;
        case 2: e->kind = TRACE_EV_PIO_OUT; e->device = 0; e->addr = 0x3f8; e->size = 1;
                e->value = i & 0xff; break;
        case 3: e->kind = TRACE_EV_DMA_READ; e->addr = 0x100000 + i * 16;
                e->len = (uint32_t)(i % 300 == 3 ? 150000 : i % 64); e->data = dma_bytes; break;
        case 4: e->kind = TRACE_EV_DMA_WRITE; e->addr = 0x200000 - i; e->len = 16;
                e->data = dma_bytes + 5; break;
        case 5: e->kind = TRACE_EV_IRQ; e->addr = 5; e->value = i & 1; break;
        case 6: e->kind = TRACE_EV_NOTIFY; e->device = 1; e->addr = i % 3; break;
        case 7: e->kind = TRACE_EV_CONTROL; e->data = (const uint8_t *)"{\"cmd\":\"stats\"}";
                e->len = 15; break;
        case 8: e->kind = TRACE_EV_FAULT; e->data = (const uint8_t *)"disk eio at 4096";
                e->len = 16; break;
        case 9: e->kind = TRACE_EV_HOST_IN; e->device = 1; e->value = (i >> 1) & 1;
                e->len = (uint32_t)(i % 1500); e->data = dma_bytes + 7; break;
        case 10: e->kind = TRACE_EV_HOST_OUT; e->device = 1; e->len = 60;
                 e->data = dma_bytes + 9; break;
        }
    }
    ev[n - 1] = (struct trace_event){ .kind = TRACE_EV_END, .time_ns = n * 1000,
                                      .value = (uint64_t)(int64_t)-7, .device = -1 };
    return ev;
}

static void write_trace(const char *path, size_t n)
{
    struct trace_header h;
    struct trace_event *ev = make_events(n);
    char err[256];

    make_header(&h);
    ck_assert_msg(trace_write_file(path, &h, ev, n, err, sizeof(err)) == 0, "%s", err);
    free(ev);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len ? *len : 1);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* The file b with its header rewritten in the older format `version` (1 or 2: no device
 * windows); *len is updated. */
static uint8_t *as_version(const uint8_t *b, size_t *len, unsigned version)
{
    struct trace_header h;
    size_t hlen;
    char err[256];
    uint8_t hdr[1 << 17];

    ck_assert_int_eq(trace__header_decode(b, *len, &h, &hlen, err, sizeof(err)), 0);
    long nl = trace__header_encode_as(&h, version, hdr, sizeof(hdr));
    ck_assert_int_gt(nl, 0);
    uint8_t *out = malloc((size_t)nl + *len - hlen);
    ck_assert_ptr_nonnull(out);
    memcpy(out, hdr, (size_t)nl);
    memcpy(out + nl, b + hlen, *len - hlen);
    *len = (size_t)nl + *len - hlen;
    trace_fix_crcs(out, *len);
    return out;
}

/* Loads a buffer; returns the rc and fills err / count. */
static int load_buf(const uint8_t *b, size_t len, size_t *count, char *err, size_t errlen)
{
    struct trace_reader *r;
    struct trace_event *ev;
    int rc = trace_reader_open_mem(&r, b, len, err, errlen);

    *count = 0;
    if (rc)
        return rc;
    rc = trace_reader_load(r, &ev, count, err, errlen);
    free(ev);
    trace_reader_close(r);
    return rc;
}

/* File offsets of every chunk header, and the header's end. */
static size_t chunk_offsets(const uint8_t *b, size_t len, size_t *offs, size_t max)
{
    size_t pos = 16 + (b[12] | b[13] << 8 | (size_t)b[14] << 16 | (size_t)b[15] << 24) + 4, n = 0;
    while (pos < len && n < max) {
        offs[n++] = pos;
        uint32_t plen = b[pos + 4] | b[pos + 5] << 8 | (uint32_t)b[pos + 6] << 16 |
                        (uint32_t)b[pos + 7] << 24;
        pos += 32 + plen;
    }
    ck_assert_uint_eq(pos, len);
    return n;
}

START_TEST(round_trip_every_kind)
{
    char path[128], err[256];
    const size_t n = 20000;
    struct trace_header h0;
    struct trace_event *ev = make_events(n), *got;
    struct trace_reader *r;
    size_t cnt;

    snprintf(path, sizeof(path), "%s/a.trace", scratch_dir);
    make_header(&h0);
    ck_assert_int_eq(trace_write_file(path, &h0, ev, n, err, sizeof(err)), 0);
    ck_assert_msg(trace_reader_open(&r, path, err, sizeof(err)) == 0, "%s", err);
    const struct trace_header *h = trace_reader_header(r);
    ck_assert_uint_eq(h->version, TRACE_VERSION);
    ck_assert_str_eq(h->vmlab_version, VMLAB_VERSION);
    ck_assert_uint_eq(h->machine.seed, 42);
    ck_assert_uint_eq(h->machine.ram_size, 64ULL << 20);
    ck_assert_str_eq(h->machine.backend, "sim");
    ck_assert_uint_eq(h->machine.ndevices, 2);
    ck_assert_str_eq(h->machine.devices[1].kind, "virtio-blk");
    ck_assert_str_eq(h->machine.devices[1].args, "mem=1M,id=root");
    ck_assert_uint_eq(h->machine.devices[1].base, 0xd0000000);
    ck_assert_int_eq(h->machine.devices[0].irq, 4);
    ck_assert_int_eq(h->machine.devices[0].space, BUS_PIO);
    ck_assert_msg(trace_reader_load(r, &got, &cnt, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(cnt, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(trace_event_equal(&ev[i], &got[i], 1), "event %zu differs", i);
    ck_assert_uint_gt(trace_reader_chunks(r), 10);
    ck_assert_int_eq((int64_t)got[n - 1].value, -7);
    free(got);
    free(ev);
    trace_reader_close(r);
}
END_TEST

START_TEST(same_events_same_bytes)
{
    char a[128], b[128];
    size_t la, lb;

    snprintf(a, sizeof(a), "%s/a.trace", scratch_dir);
    snprintf(b, sizeof(b), "%s/b.trace", scratch_dir);
    write_trace(a, 5000);
    write_trace(b, 5000);
    uint8_t *x = slurp(a, &la), *y = slurp(b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(x, y, la), 0);
    free(x);
    free(y);
}
END_TEST

START_TEST(truncation_at_every_chunk_boundary_keeps_prefix)
{
    char path[128], err[300];
    size_t len, offs[256], cnt, prev = 0;

    snprintf(path, sizeof(path), "%s/a.trace", scratch_dir);
    write_trace(path, 20000);
    uint8_t *b = slurp(path, &len);
    size_t nch = chunk_offsets(b, len, offs, 256);
    ck_assert_uint_gt(nch, 3);
    for (size_t c = 0; c < nch; c++) {
        int rc = load_buf(b, offs[c], &cnt, err, sizeof(err));
        ck_assert_int_eq(rc, -EPIPE);
        ck_assert_msg(strstr(err, "without a run-end event: truncated"), "%s", err);
        ck_assert(c == 0 ? cnt == 0 : cnt > prev);
        prev = cnt;
    }
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), 0);
    ck_assert_uint_eq(cnt, 20000);
    free(b);
}
END_TEST

START_TEST(truncation_mid_chunk_names_chunk_and_offset)
{
    char path[128], err[300], want[80];
    size_t len, offs[256], cnt;

    snprintf(path, sizeof(path), "%s/a.trace", scratch_dir);
    write_trace(path, 20000);
    uint8_t *b = slurp(path, &len);
    size_t nch = chunk_offsets(b, len, offs, 256);
    for (size_t c = 0; c < nch; c++) {
        size_t cut[] = { offs[c] + 1, offs[c] + 31, offs[c] + 33,
                         (c + 1 < nch ? offs[c + 1] : len) - 1 };
        for (unsigned k = 0; k < 4; k++) {
            ck_assert_int_eq(load_buf(b, cut[k], &cnt, err, sizeof(err)), -EPIPE);
            snprintf(want, sizeof(want), "chunk %zu at offset %zu: truncated", c, offs[c]);
            ck_assert_msg(strstr(err, want), "cut %zu: %s", cut[k], err);
        }
    }
    free(b);
}
END_TEST

START_TEST(bit_flips_are_caught)
{
    char path[128], err[300], want[80];
    size_t len, offs[256], cnt;

    snprintf(path, sizeof(path), "%s/a.trace", scratch_dir);
    write_trace(path, 3000);
    uint8_t *b = slurp(path, &len);
    size_t nch = chunk_offsets(b, len, offs, 256);

    /* Header body (the seed). */
    b[40] ^= 0x10;
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "trace header: CRC mismatch"), "%s", err);
    b[40] ^= 0x10;
    /* Magic. */
    b[0] ^= 1;
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "bad magic"), "%s", err);
    b[0] ^= 1;
    /* Every bit of one payload byte, the stored CRC, and the length fields of each chunk. */
    for (size_t c = 0; c < nch; c++) {
        size_t at[] = { offs[c] + 40, offs[c] + 12, offs[c] + 9, offs[c] + 20, offs[c] + 24 };
        for (unsigned k = 0; k < 5; k++)
            for (int bit = 0; bit < 8; bit++) {
                b[at[k]] ^= (uint8_t)(1 << bit);
                ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EBADMSG);
                snprintf(want, sizeof(want), "chunk %zu at offset %zu: CRC mismatch", c, offs[c]);
                ck_assert_msg(strstr(err, want), "byte %zu bit %d: %s", at[k], bit, err);
                b[at[k]] ^= (uint8_t)(1 << bit);
            }
    }
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), 0);
    free(b);
}
END_TEST

START_TEST(wrong_version_and_huge_lengths)
{
    char path[128], err[300];
    size_t len, offs[256], cnt;

    snprintf(path, sizeof(path), "%s/a.trace", scratch_dir);
    write_trace(path, 3000);
    uint8_t *b = slurp(path, &len);
    chunk_offsets(b, len, offs, 256);

    b[8] = 4;
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EPROTONOSUPPORT);
    ck_assert_str_eq(err, "trace format version 4 is not supported (this vmlab reads versions "
                     "1 to 3)");
    b[8] = 0;
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EPROTONOSUPPORT);
    b[8] = TRACE_VERSION;
    /* Version 1 is read, but it has no host-in/host-out events. */
    size_t v1len = len;
    uint8_t *v1 = as_version(b, &v1len, 1);
    ck_assert_int_lt(load_buf(v1, v1len, &cnt, err, sizeof(err)), 0);
    ck_assert_msg(strstr(err, "host-in/host-out/input event in a version 1 trace"), "%s", err);
    free(v1);

    uint8_t save[4];
    memcpy(save, b + 12, 4);
    memset(b + 12, 0xff, 4);
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "body length 4294967295 exceeds limit"), "%s", err);
    memcpy(b + 12, save, 4);

    /* A chunk claiming a 4 GiB payload is refused before anything is read or allocated. */
    memcpy(save, b + offs[1] + 4, 4);
    memset(b + offs[1] + 4, 0xff, 4);
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "chunk 1 at offset") && strstr(err, "payload length 4294967295 "
                  "exceeds limit"), "%s", err);
    ck_assert_uint_gt(cnt, 0);  /* chunk 0 is still there */
    memcpy(b + offs[1] + 4, save, 4);

    /* Chunk magic. */
    b[offs[2]] ^= 0xff;
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "chunk 2 at offset") && strstr(err, "bad chunk magic"), "%s", err);
    b[offs[2]] ^= 0xff;

    /* Empty file / header only. */
    ck_assert_int_eq(load_buf(b, 0, &cnt, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(load_buf(b, 12, &cnt, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "header truncated"), "%s", err);
    free(b);
}
END_TEST

/* A chunk (magic "TCHK" or "TDSK") with a valid CRC around a hostile payload. */
static int crafted_chunk(const char *magic, const uint8_t *payload, size_t plen, uint32_t nev,
                         char *err, size_t errlen)
{
    char path[128];
    struct trace_header h;
    static uint8_t buf[4096];
    size_t len, cnt;

    snprintf(path, sizeof(path), "%s/h.trace", scratch_dir);
    make_header(&h);
    ck_assert_int_eq(trace_write_file(path, &h, NULL, 0, err, errlen), 0);
    uint8_t *hdr = slurp(path, &len);
    ck_assert_uint_lt(len + 32 + plen, sizeof(buf));
    memcpy(buf, hdr, len);
    free(hdr);
    uint8_t *c = buf + len;
    memset(c, 0, 32);
    memcpy(c, magic, 4);
    c[4] = (uint8_t)plen; c[5] = (uint8_t)(plen >> 8);
    c[8] = (uint8_t)nev;
    memcpy(c + 32, payload, plen);
    uint32_t crc = trace_crc32(trace_crc32(0, c + 4, 8), c + 16, 16 + plen);
    for (int i = 0; i < 4; i++)
        c[12 + i] = (uint8_t)(crc >> (8 * i));
    return load_buf(buf, len + 32 + plen, &cnt, err, errlen);
}

/* Decoding errors name the event. */
static int crafted(const uint8_t *payload, size_t plen, uint32_t nev, char *err, size_t errlen)
{
    return crafted_chunk("TCHK", payload, plen, nev, err, errlen);
}

START_TEST(crafted_payloads_with_valid_crc)
{
    char err[300];
    /* unknown kind 15 */
    const uint8_t k15[] = { 0x0f, 0, 0 };
    ck_assert_int_eq(crafted(k15, sizeof(k15), 1, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "chunk 0 at offset") && strstr(err, "event 0") &&
                  strstr(err, "unknown event kind"), "%s", err);
    /* DMA read claiming 2^40 bytes */
    const uint8_t big[] = { 0x05, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20 };
    ck_assert_int_eq(crafted(big, sizeof(big), 1, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "DMA length exceeds the limit"), "%s", err);
    /* DMA read claiming more bytes than the chunk holds */
    const uint8_t over[] = { 0x05, 0, 0, 0, 0x40, 1, 2, 3 };
    ck_assert_int_eq(crafted(over, sizeof(over), 1, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "runs past the end of its chunk"), "%s", err);
    /* an 11-byte varint */
    const uint8_t vi[] = { 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    ck_assert_int_eq(crafted(vi, sizeof(vi), 1, err, sizeof(err)), -EBADMSG);
    /* device index 9 with only 2 devices */
    const uint8_t dev[] = { 0x22, 0, 9, 0, 0 };
    ck_assert_int_eq(crafted(dev, sizeof(dev), 1, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "device index beyond"), "%s", err);
    /* 1-byte access with a 2-byte value */
    const uint8_t wide[] = { 0x02, 0, 1, 0, 0xff, 0x03 };
    ck_assert_int_eq(crafted(wide, sizeof(wide), 1, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "wider than its size"), "%s", err);
    /* event count larger than the payload can hold */
    const uint8_t end[] = { 0x0b, 0, 0 };
    ck_assert_int_eq(crafted(end, sizeof(end), 5, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "event count 5 impossible"), "%s", err);
    /* trailing bytes after the last event */
    const uint8_t trail[] = { 0x0b, 0, 0, 0, 0, 0 };
    ck_assert_int_eq(crafted(trail, sizeof(trail), 1, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "left over"), "%s", err);
    /* and a well-formed END is accepted */
    ck_assert_int_eq(crafted(end, sizeof(end), 1, err, sizeof(err)), 0);
}
END_TEST

START_TEST(garbage_and_mutations_never_crash)
{
    char path[128], err[300];
    size_t len, cnt;
    struct prng p;

    snprintf(path, sizeof(path), "%s/a.trace", scratch_dir);
    write_trace(path, 400);
    uint8_t *b = slurp(path, &len), *m = malloc(len);
    prng_seed(&p, 1234);
    for (int round = 0; round < 3000; round++) {
        memcpy(m, b, len);
        size_t mlen = len;
        int flips = 1 + (int)prng_below(&p, 8);
        for (int i = 0; i < flips; i++)
            m[prng_below(&p, len)] ^= (uint8_t)(1u << prng_below(&p, 8));
        if (round % 3 == 0)
            mlen = (size_t)prng_below(&p, len + 1);
        load_buf(m, mlen, &cnt, err, sizeof(err));
        trace_fuzz_one(m, mlen);
    }
    /* pure garbage, some with the right magic */
    for (int round = 0; round < 2000; round++) {
        size_t glen = (size_t)prng_below(&p, len);
        for (size_t i = 0; i < glen; i++)
            m[i] = (uint8_t)prng_next(&p);
        if (round & 1 && glen >= 8)
            memcpy(m, TRACE_MAGIC, 8);
        ck_assert_int_ne(load_buf(m, glen, &cnt, err, sizeof(err)), 0);
    }
    free(m);
    free(b);
}
END_TEST

START_TEST(kind_names_and_formatting)
{
    struct trace_header h;
    char line[256];
    struct trace_event e = { .kind = TRACE_EV_MMIO_WRITE, .time_ns = 1500, .device = 1,
                             .addr = 0xd0000050, .size = 4, .value = 0 };

    make_header(&h);
    ck_assert_uint_eq(trace_kind_parse("dma"), (1u << 5) | (1u << 6));
    ck_assert_uint_eq(trace_kind_parse("irq"), 1u << TRACE_EV_IRQ);
    ck_assert_uint_eq(trace_kind_parse("nope"), 0);
    trace_event_format(&h, 12, &e, line, sizeof(line));
    ck_assert_str_eq(line, "#12 1500ns cpu0 mmio-write virtio-blk#1(root) 0xd0000050 (+0x50) "
                     "size=4 value=0x0");
    ck_assert(trace_device_match(&h, 1, "root"));
    ck_assert(trace_device_match(&h, 1, "virtio-blk"));
    ck_assert(trace_device_match(&h, 0, "#0"));
    ck_assert(trace_device_match(&h, 0, "uart8250#0"));
    ck_assert(!trace_device_match(&h, 0, "virtio-blk"));
}
END_TEST

/* ---------------------------------------------------------------- disk content (v2) */

static uint8_t sector_bytes[64 * 1024];

/* A description, content runs big enough for several disk chunks, an error record. */
static size_t make_disk_records(struct trace_disk_record *d)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(sector_bytes); i++)
        sector_bytes[i] = (uint8_t)(i * 11 + (i >> 9));
    d[n++] = (struct trace_disk_record){ .kind = TRACE_DISK_INFO, .device = 1,
                                         .a = 8ULL << 20, .b = TRACE_DISK_F_READ_ONLY };
    for (unsigned k = 0; k < 5; k++)
        d[n++] = (struct trace_disk_record){ .kind = TRACE_DISK_SECTORS, .device = 1,
                                             .a = 1000 + 200 * k, .data = sector_bytes,
                                             .len = k == 4 ? 512 : sizeof(sector_bytes) };
    d[n++] = (struct trace_disk_record){ .kind = TRACE_DISK_ERROR, .device = 1, .a = 7,
                                         .op = TRACE_DISK_OP_WRITE, .b = EROFS };
    return n;
}

START_TEST(disk_records_round_trip)
{
    char path[128], err[300];
    struct trace_header h;
    struct trace_disk_record d[16];
    size_t nd = make_disk_records(d), n = 3000, got_n, cnt;
    struct trace_event *ev = make_events(n), *got, e;
    struct trace_reader *r;

    snprintf(path, sizeof(path), "%s/d.trace", scratch_dir);
    make_header(&h);
    ck_assert_msg(trace_write_file_disks(path, &h, d, nd, ev, n, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(trace_reader_open(&r, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(trace_reader_load(r, &got, &cnt, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(cnt, n);
    const struct trace_disk_record *rd = trace_reader_disks(r, &got_n);
    ck_assert_uint_eq(got_n, nd);
    for (size_t i = 0; i < nd; i++) {
        ck_assert_uint_eq(rd[i].kind, d[i].kind);
        ck_assert_int_eq(rd[i].device, d[i].device);
        ck_assert_uint_eq(rd[i].a, d[i].a);
        ck_assert_uint_eq(rd[i].b, d[i].b);
        ck_assert_uint_eq(rd[i].op, d[i].op);
        ck_assert_uint_eq(rd[i].len, d[i].len);
        if (d[i].len)
            ck_assert_mem_eq(rd[i].data, d[i].data, d[i].len);
    }
    ck_assert_uint_eq(trace_reader_disk_bytes(r, 1), 4 * sizeof(sector_bytes) + 512);
    /* 4 x 64 KiB of content: disk chunks close at 64 KiB, so there are several. */
    ck_assert_uint_ge(trace_reader_disk_chunk_bytes(r), 4 * sizeof(sector_bytes));
    free(got);
    trace_reader_close(r);

    /* Streaming (dump, info): the records are checked and counted, not kept. */
    ck_assert_msg(trace_reader_open(&r, path, err, sizeof(err)) == 0, "%s", err);
    cnt = 0;
    while (trace_reader_next(r, &e, err, sizeof(err)) == 1)
        cnt++;
    ck_assert_uint_eq(cnt, n);
    trace_reader_disks(r, &got_n);
    ck_assert_uint_eq(got_n, 0);
    ck_assert_uint_eq(trace_reader_disk_bytes(r, 1), 4 * sizeof(sector_bytes) + 512);
    ck_assert_uint_gt(trace_reader_chunks(r), 5);
    trace_reader_close(r);
    free(ev);
}
END_TEST

/* Format 3 records each device's bus windows; a format 2 header gets the layout of its day
 * (the i8042 at 0x60-0x64); windows no model of that kind has are refused, naming them. */
START_TEST(device_windows_round_trip_and_old_layouts)
{
    struct trace_header h, back;
    uint8_t buf[4096];
    size_t hlen;
    char err[300];

    make_header(&h);
    h.machine.devices[1] = (struct machine_device){ "i8042", "", 0x60, -1, BUS_PIO, .nwindows = 0 };
    long n = trace__header_encode(&h, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(trace__header_decode(buf, (size_t)n, &back, &hlen, err, sizeof(err)), 0);
    ck_assert_uint_eq(back.version, 3);
    ck_assert_uint_eq(back.machine.devices[1].nwindows, 2);
    ck_assert_uint_eq(back.machine.devices[1].windows[1].offset, 4);
    ck_assert_uint_eq(back.machine.devices[1].windows[1].size, 1);
    ck_assert_uint_eq(back.machine.devices[0].nwindows, 1);
    ck_assert_uint_eq(back.machine.devices[0].windows[0].size, 8);

    n = trace__header_encode_as(&h, 2, buf, sizeof(buf));
    ck_assert_int_eq(trace__header_decode(buf, (size_t)n, &back, &hlen, err, sizeof(err)), 0);
    ck_assert_uint_eq(back.machine.devices[1].nwindows, 1);
    ck_assert_uint_eq(back.machine.devices[1].windows[0].size, 5);

    h.machine.devices[1].nwindows = 1;
    h.machine.devices[1].windows[0] = (struct device_window){ 0, 0x1000 };
    n = trace__header_encode(&h, buf, sizeof(buf));
    ck_assert_int_eq(trace__header_decode(buf, (size_t)n, &back, &hlen, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "device 1 (i8042): window +0 size 0x1000"), "%s", err);
    h.machine.devices[1].nwindows = 2;              /* the command port widened: named */
    h.machine.devices[1].windows[0] = (struct device_window){ 0, 1 };
    h.machine.devices[1].windows[1] = (struct device_window){ 4, 2 };
    n = trace__header_encode(&h, buf, sizeof(buf));
    ck_assert_int_eq(trace__header_decode(buf, (size_t)n, &back, &hlen, err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "device 1 (i8042): window +0x4 size 0x2"), "%s", err);
}
END_TEST

START_TEST(disk_chunk_damage_is_named)
{
    char path[128], err[300];
    struct trace_header h;
    struct trace_disk_record d[16];
    size_t nd = make_disk_records(d), len, offs[64], cnt;
    struct trace_event end = { .kind = TRACE_EV_END, .device = -1 };

    snprintf(path, sizeof(path), "%s/d.trace", scratch_dir);
    make_header(&h);
    ck_assert_int_eq(trace_write_file_disks(path, &h, d, nd, &end, 1, err, sizeof(err)), 0);
    uint8_t *b = slurp(path, &len);
    size_t nc = chunk_offsets(b, len, offs, 64);
    ck_assert_uint_ge(nc, 3);
    ck_assert_mem_eq(b + offs[0], "TDSK", 4);
    ck_assert_mem_eq(b + offs[nc - 1], "TCHK", 4);
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), 0);

    /* a flipped byte in the second disk chunk */
    char want[128];
    b[offs[1] + 100] ^= 0x10;
    ck_assert_int_eq(load_buf(b, len, &cnt, err, sizeof(err)), -EBADMSG);
    snprintf(want, sizeof(want), "disk content chunk 1 at offset %zu: CRC mismatch", offs[1]);
    ck_assert_msg(strstr(err, want), "%s", err);
    b[offs[1] + 100] ^= 0x10;
    /* cut inside it */
    ck_assert_int_eq(load_buf(b, offs[1] + 1000, &cnt, err, sizeof(err)), -EPIPE);
    snprintf(want, sizeof(want), "disk content chunk 1 at offset %zu: truncated", offs[1]);
    ck_assert_msg(strstr(err, want), "%s", err);
    /* the first disk chunk missing */
    uint8_t *m = malloc(len);
    memcpy(m, b, offs[0]);
    memcpy(m + offs[0], b + offs[1], len - offs[1]);
    ck_assert_int_eq(load_buf(m, offs[0] + len - offs[1], &cnt, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "first record index") && strstr(err, "chunk missing"), "%s", err);
    /* a disk chunk in a version 1 trace */
    free(m);
    size_t mlen = len;
    m = as_version(b, &mlen, 1);
    ck_assert_int_eq(load_buf(m, mlen, &cnt, err, sizeof(err)), -EBADMSG);
    ck_assert_msg(strstr(err, "disk content chunk in a version 1 trace"), "%s", err);
    free(m);
    free(b);

    /* hostile records inside a valid CRC */
    static const struct { uint8_t rec[8]; size_t len; const char *want; } bad[] = {
        { { 9, 1, 0, 0 }, 4, "unknown disk record kind" },
        { { 1, 7, 0, 0 }, 4, "device index beyond" },
        { { 1, 1, 0, 0x80 }, 4, "unknown disk flags" },
        { { 2, 1, 0, 0 }, 4, "length is 0" },
        { { 2, 1, 0, 5, 1, 2 }, 6, "runs past the end" },
        { { 3, 1, 0, 9, 5 }, 5, "unknown operation or errno" },
        { { 3, 1, 0, 1, 0 }, 5, "unknown operation or errno" },
        { { 1, 1, 0, 0, 0 }, 5, "left over after the last record" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(crafted_chunk("TDSK", bad[i].rec, bad[i].len, 1, err, sizeof(err)),
                         -EBADMSG);
        ck_assert_msg(strstr(err, "disk content chunk 0 at offset") && strstr(err, bad[i].want),
                      "case %zu: %s", i, err);
    }
    /* a good record: the chunk reads, and the trace is only missing its end */
    const uint8_t info[] = { 1, 1, 0x80, 0x40, 1 };
    ck_assert_int_eq(crafted_chunk("TDSK", info, sizeof(info), 1, err, sizeof(err)), -EPIPE);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("trace_format");
    TCase *t = tcase_create("format");

    tcase_add_checked_fixture(t, scratch_setup, scratch_teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, round_trip_every_kind);
    tcase_add_test(t, same_events_same_bytes);
    tcase_add_test(t, truncation_at_every_chunk_boundary_keeps_prefix);
    tcase_add_test(t, truncation_mid_chunk_names_chunk_and_offset);
    tcase_add_test(t, bit_flips_are_caught);
    tcase_add_test(t, wrong_version_and_huge_lengths);
    tcase_add_test(t, crafted_payloads_with_valid_crc);
    tcase_add_test(t, garbage_and_mutations_never_crash);
    tcase_add_test(t, kind_names_and_formatting);
    tcase_add_test(t, disk_records_round_trip);
    tcase_add_test(t, disk_chunk_damage_is_named);
    tcase_add_test(t, device_windows_round_trip_and_old_layouts);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(suite());
}
