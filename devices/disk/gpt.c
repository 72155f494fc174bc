/* GPT encoding and decoding (UEFI spec, chapter 5), shared by create and info. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "devices/disk/disk_internal.h"
#include "devices/disk/gpt.h"

const struct gpt_guid GPT_TYPE_LINUX_FS = { { 0x0f, 0xc6, 0x3d, 0xaf, 0x84, 0x83, 0x47, 0x72,
                                              0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 } };
const struct gpt_guid GPT_TYPE_EFI_SYSTEM = { { 0xc1, 0x2a, 0x73, 0x28, 0xf8, 0x1f, 0x11, 0xd2,
                                                0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b } };

uint32_t gpt_crc32_update(uint32_t crc, const void *buf, size_t len)
{
    static uint32_t table[256];
    if (!table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    }
    const uint8_t *p = buf;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t gpt_crc32(const void *buf, size_t len) { return gpt_crc32_update(0, buf, len); }

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int gpt_guid_parse(const char *s, struct gpt_guid *g)
{
    if (strlen(s) != 36)
        return -EINVAL;
    int j = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -EINVAL;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        g->b[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

void gpt_guid_format(const struct gpt_guid *g, char out[37])
{
    const uint8_t *b = g->b;
    snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff;              /* separator, so ("ab","c") and ("a","bc") differ */
    return h * 0x100000001b3ULL;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gpt_guid_from_names(struct gpt_guid *g, const char *a, const char *b, const char *c)
{
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    h1 = fnv1a(fnv1a(fnv1a(h1, a), b), c);
    h2 = fnv1a(fnv1a(fnv1a(h2, c), b), a);
    uint64_t x = mix64(h1 ^ 0x9e3779b97f4a7c15ULL), y = mix64(h2 + x);
    for (int i = 0; i < 8; i++) {
        g->b[i] = (uint8_t)(x >> (56 - 8 * i));
        g->b[8 + i] = (uint8_t)(y >> (56 - 8 * i));
    }
    g->b[6] = (uint8_t)((g->b[6] & 0x0f) | 0x80);   /* version 8: custom, name-derived */
    g->b[8] = (uint8_t)((g->b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
}

void gpt_guid_to_disk(const struct gpt_guid *g, uint8_t out[16])
{
    static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    for (int i = 0; i < 16; i++)
        out[i] = g->b[order[i]];
}

void gpt_guid_from_disk(const uint8_t in[16], struct gpt_guid *g)
{
    static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
    for (int i = 0; i < 16; i++)
        g->b[order[i]] = in[i];
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

int gpt_entry_encode(const struct gpt_part *p, uint8_t out[GPT_ENTRY_SIZE])
{
    memset(out, 0, GPT_ENTRY_SIZE);
    gpt_guid_to_disk(&p->type, out);
    gpt_guid_to_disk(&p->unique, out + 16);
    put64(out + 32, p->first_lba);
    put64(out + 40, p->last_lba);
    put64(out + 48, p->attributes);
    /* UTF-8 to UTF-16LE, BMP only (labels are names, not emoji). */
    const unsigned char *s = (const unsigned char *)p->name;
    unsigned units = 0;
    while (*s) {
        uint32_t cp;
        if (*s < 0x80) { cp = *s++; }
        else if ((*s & 0xe0) == 0xc0 && (s[1] & 0xc0) == 0x80) { cp = (uint32_t)(*s & 0x1f) << 6 | (s[1] & 0x3f); s += 2; }
        else if ((*s & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
            cp = (uint32_t)(*s & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f); s += 3;
        } else return -EINVAL;
        if (units >= GPT_NAME_UNITS)
            return -EINVAL;
        put16(out + 56 + 2 * units++, (uint16_t)cp);
    }
    return 0;
}

void gpt_mbr_encode(uint64_t sectors, uint8_t out[GPT_SECTOR])
{
    memset(out, 0, GPT_SECTOR);
    uint8_t *e = out + 446;
    e[0] = 0x00;                                    /* not bootable */
    e[1] = 0x00; e[2] = 0x02; e[3] = 0x00;          /* CHS of LBA 1 */
    e[4] = 0xee;                                    /* GPT protective */
    e[5] = 0xff; e[6] = 0xff; e[7] = 0xff;
    put32(e + 8, 1);
    uint64_t n = sectors - 1;
    put32(e + 12, n > 0xffffffffu ? 0xffffffffu : (uint32_t)n);
    out[510] = 0x55;
    out[511] = 0xaa;
}

void gpt_header_encode(uint8_t out[GPT_SECTOR], const struct gpt_guid *disk_guid,
                       uint64_t current_lba, uint64_t backup_lba, uint64_t first_usable,
                       uint64_t last_usable, uint64_t entries_lba, uint32_t entries_crc)
{
    memset(out, 0, GPT_SECTOR);
    memcpy(out, "EFI PART", 8);
    put32(out + 8, 0x00010000);
    put32(out + 12, GPT_HEADER_SIZE);
    put64(out + 24, current_lba);
    put64(out + 32, backup_lba);
    put64(out + 40, first_usable);
    put64(out + 48, last_usable);
    gpt_guid_to_disk(disk_guid, out + 56);
    put64(out + 72, entries_lba);
    put32(out + 80, GPT_NUM_ENTRIES);
    put32(out + 84, GPT_ENTRY_SIZE);
    put32(out + 88, entries_crc);
    put32(out + 16, gpt_crc32(out, GPT_HEADER_SIZE));
}

int gpt_read(struct disk *d, struct gpt_part *parts, int max, struct gpt_guid *disk_guid,
             char *err, size_t errlen)
{
    uint8_t hdr[GPT_SECTOR];
    if (d->size < 2 * GPT_SECTOR || disk_read(d, GPT_SECTOR, hdr, GPT_SECTOR)) {
        disk__err(err, errlen, "no GPT: disk too small or unreadable at LBA 1");
        return -EINVAL;
    }
    if (memcmp(hdr, "EFI PART", 8) != 0) {
        disk__err(err, errlen, "no GPT signature at LBA 1");
        return -EINVAL;
    }
    uint32_t hsize = get32(hdr + 12);
    if (hsize < GPT_HEADER_SIZE || hsize > GPT_SECTOR) {
        disk__err(err, errlen, "GPT header size %u out of range", hsize);
        return -EINVAL;
    }
    uint32_t want = get32(hdr + 16);
    put32(hdr + 16, 0);
    uint32_t got = gpt_crc32(hdr, hsize);
    if (want != got) {
        disk__err(err, errlen, "GPT header CRC32 0x%08x does not match computed 0x%08x", want, got);
        return -EINVAL;
    }
    uint64_t elba = get64(hdr + 72);
    uint32_t n = get32(hdr + 80), esz = get32(hdr + 84);
    if (esz < GPT_ENTRY_SIZE || esz > 4096 || n > 1024 || elba > d->size / GPT_SECTOR ||
        (uint64_t)n * esz > d->size - elba * GPT_SECTOR) {
        disk__err(err, errlen, "GPT entry array (%u entries of %u bytes at LBA %llu) is invalid",
                  n, esz, (unsigned long long)elba);
        return -EINVAL;
    }
    uint8_t *ents = malloc((size_t)n * esz + 1);
    if (!ents)
        return -ENOMEM;
    if (disk_read(d, elba * GPT_SECTOR, ents, (size_t)n * esz)) {
        free(ents);
        disk__err(err, errlen, "cannot read GPT entries at LBA %llu", (unsigned long long)elba);
        return -EIO;
    }
    if (gpt_crc32(ents, (size_t)n * esz) != get32(hdr + 88)) {
        free(ents);
        disk__err(err, errlen, "GPT partition entries CRC32 mismatch");
        return -EINVAL;
    }
    uint64_t first_usable = get64(hdr + 40), last_usable = get64(hdr + 48);
    uint64_t sectors = d->size / GPT_SECTOR;
    if (first_usable > last_usable || last_usable >= sectors) {
        free(ents);
        disk__err(err, errlen, "GPT usable range LBA %llu..%llu is invalid for a disk of %llu "
                  "sectors", (unsigned long long)first_usable, (unsigned long long)last_usable,
                  (unsigned long long)sectors);
        return -EINVAL;
    }
    if (disk_guid)
        gpt_guid_from_disk(hdr + 56, disk_guid);
    int count = 0;
    for (uint32_t i = 0; i < n && count < max; i++) {
        const uint8_t *e = ents + (size_t)i * esz;
        static const uint8_t zero[16];
        if (memcmp(e, zero, 16) == 0)
            continue;
        struct gpt_part *p = &parts[count++];
        gpt_guid_from_disk(e, &p->type);
        gpt_guid_from_disk(e + 16, &p->unique);
        p->first_lba = get64(e + 32);
        p->last_lba = get64(e + 40);
        p->attributes = get64(e + 48);
        /* Partitions must lie inside the header's usable range (and so on the disk). */
        if (p->first_lba < first_usable || p->first_lba > p->last_lba ||
            p->last_lba > last_usable) {
            free(ents);
            disk__err(err, errlen, "GPT partition entry %u: LBA %llu..%llu is outside the usable "
                      "range %llu..%llu", i, (unsigned long long)p->first_lba,
                      (unsigned long long)p->last_lba, (unsigned long long)first_usable,
                      (unsigned long long)last_usable);
            return -EINVAL;
        }
        char *o = p->name;
        for (unsigned u = 0; u < GPT_NAME_UNITS; u++) {
            uint16_t c = (uint16_t)(e[56 + 2 * u] | e[57 + 2 * u] << 8);
            if (!c)
                break;
            if (c < 0x80) { *o++ = (char)c; }
            else if (c < 0x800) { *o++ = (char)(0xc0 | c >> 6); *o++ = (char)(0x80 | (c & 0x3f)); }
            else { *o++ = (char)(0xe0 | c >> 12); *o++ = (char)(0x80 | ((c >> 6) & 0x3f)); *o++ = (char)(0x80 | (c & 0x3f)); }
        }
        *o = 0;
    }
    free(ents);
    return count;
}
