/* Fuzz target: the GPT reader (devices/disk/gpt.c, gpt_read) over an in-memory disk whose
 * first bytes are the input (a protective MBR, the header at LBA 1, entries from LBA 2).
 * Unless bit 0 of the first byte is set, the header and entry-array CRCs are fixed up
 * first, so mutations reach the parser rather than all failing at the checksum.
 * Invariants (abort() on violation): gpt_read returns a count in 0..max or -errno with a
 * reason; every partition returned lies inside the disk (first_lba <= last_lba < sectors)
 * and has a NUL-terminated name; reading never writes the disk; no leaks (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/disk/gpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXP 8

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }

static void fix_crcs(uint8_t *img, size_t len)
{
    uint8_t *h = img + GPT_SECTOR;

    if (len < 2 * GPT_SECTOR)
        return;
    uint64_t elba = le32(h + 72) | (uint64_t)le32(h + 76) << 32;
    uint64_t ebytes = (uint64_t)le32(h + 80) * le32(h + 84);
    if (elba < len / GPT_SECTOR && ebytes <= len - elba * GPT_SECTOR)
        put_le32(h + 88, gpt_crc32(img + elba * GPT_SECTOR, ebytes));
    uint32_t hsize = le32(h + 12);
    if (hsize >= 20 && hsize <= GPT_SECTOR) {
        put_le32(h + 16, 0);
        put_le32(h + 16, gpt_crc32(h, hsize));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t img[64 * 1024];

    static uint8_t before[64 * 1024], after[64 * 1024];
    struct gpt_part parts[MAXP];
    struct gpt_guid g;
    struct disk *d;
    char err[512];
    /* Disk size from the input length, rounded up to sectors: 512..64 KiB. */
    uint64_t dsize = (size + GPT_SECTOR - 1) / GPT_SECTOR * GPT_SECTOR;

    if (dsize < GPT_SECTOR)
        dsize = GPT_SECTOR;
    if (dsize > sizeof before)
        return 0;
    if (disk_open_mem(dsize, &d))
        abort();
    memcpy(img, data, size);
    if (size && !(data[0] & 1))
        fix_crcs(img, size);
    if (size && disk_write(d, 0, img, size))
        abort();
    memset(before, 0, dsize);
    memcpy(before, img, size);
    err[0] = 0;
    int n = gpt_read(d, parts, MAXP, &g, err, sizeof err);
    if (n > MAXP || (n < 0 && !err[0]))
        abort();
    for (int i = 0; i < n; i++) {
        if (parts[i].first_lba > parts[i].last_lba || parts[i].last_lba >= dsize / GPT_SECTOR)
            abort();    /* a partition outside the disk */
        if (!memchr(parts[i].name, 0, sizeof parts[i].name))
            abort();
    }
    if (disk_read(d, 0, after, dsize) || memcmp(before, after, dsize))
        abort();        /* the reader changed the disk */
    disk_close(d);
    return 0;
}
