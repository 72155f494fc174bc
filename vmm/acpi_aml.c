#include "acpi_aml.h"

#include <errno.h>
#include <string.h>

/* AML opcodes (ACPI 6.x, 20.3). */
#define AML_ZERO_OP        0x00
#define AML_ONE_OP         0x01
#define AML_NAME_OP        0x08
#define AML_BYTE_PREFIX    0x0a
#define AML_WORD_PREFIX    0x0b
#define AML_DWORD_PREFIX   0x0c
#define AML_STRING_PREFIX  0x0d
#define AML_QWORD_PREFIX   0x0e
#define AML_SCOPE_OP       0x10
#define AML_BUFFER_OP      0x11
#define AML_DUAL_NAME      0x2e
#define AML_MULTI_NAME     0x2f
#define AML_EXT_OP_PREFIX  0x5b
#define AML_DEVICE_OP      0x82     /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR      0x5c     /* '\\' */

/* Resource descriptor tags (ACPI 6.x, 6.4). */
#define RES_IO             0x47     /* small, type 0x08, length 7 */
#define RES_END_TAG        0x79     /* small, type 0x0f, length 1 */
#define RES_MEM32_FIXED    0x86     /* large, type 0x06 */
#define RES_EXT_IRQ        0x89     /* large, type 0x09 */

#define PKG_RESERVE 4               /* the longest PkgLength: filled in by aml_close */

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
    *a = (struct aml){ .p = buf, .cap = cap };
}

int aml_finish(const struct aml *a)
{
    return a->bad_input ? -EINVAL : a->overflow ? -ENOSPC : 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (a->overflow || n > a->cap - a->len) {
        a->overflow = 1;
        return;
    }
    memcpy(a->p + a->len, p, n);
    a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    aml_bytes(a, b, n);
}

size_t aml_pkglength_encode(size_t body, uint8_t out[4])
{
    if (body + 1 <= 0x3f) {
        out[0] = (uint8_t)(body + 1);
        return 1;
    }
    /* Lead byte: bits 7-6 = bytes that follow, bits 3-0 = low nibble; then 8 bits each. */
    for (size_t n = 2; n <= 4; n++) {
        size_t total = body + n;
        if (total >= (size_t)1 << (4 + 8 * (n - 1)))
            continue;
        out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
        for (size_t i = 1; i < n; i++)
            out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
        return n;
    }
    return 0;
}

static int name_char_ok(char c, int first)
{
    return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
    char segs[16][4];
    unsigned nseg = 0;
    const char *s = path;

    if (*s == '\\') {
        aml_byte(a, AML_ROOT_CHAR);
        s++;
    }
    while (*s) {
        size_t n = strcspn(s, ".");
        if (n == 0 || n > 4 || nseg == 16 || !name_char_ok(s[0], 1)) {
            a->bad_input = 1;
            return;
        }
        for (size_t i = 0; i < 4; i++) {
            char c = i < n ? s[i] : '_';
            if (!name_char_ok(c, i == 0)) {
                a->bad_input = 1;
                return;
            }
            segs[nseg][i] = c;
        }
        nseg++;
        s += n;
        if (*s == '.' && *++s == '\0') {
            a->bad_input = 1;       /* trailing dot */
            return;
        }
    }
    if (nseg == 0) {
        aml_byte(a, AML_ZERO_OP);   /* NullName: "\\" alone is the root */
        return;
    }
    if (nseg == 2)
        aml_byte(a, AML_DUAL_NAME);
    else if (nseg > 2) {
        aml_byte(a, AML_MULTI_NAME);
        aml_byte(a, (uint8_t)nseg);
    }
    aml_bytes(a, segs, 4 * (size_t)nseg);
}

void aml_integer(struct aml *a, uint64_t v)
{
    if (v == 0)
        aml_byte(a, AML_ZERO_OP);
    else if (v == 1)
        aml_byte(a, AML_ONE_OP);
    else if (v <= 0xff) {
        aml_byte(a, AML_BYTE_PREFIX);
        aml_le(a, v, 1);
    } else if (v <= 0xffff) {
        aml_byte(a, AML_WORD_PREFIX);
        aml_le(a, v, 2);
    } else if (v <= 0xffffffffu) {
        aml_byte(a, AML_DWORD_PREFIX);
        aml_le(a, v, 4);
    } else {
        aml_byte(a, AML_QWORD_PREFIX);
        aml_le(a, v, 8);
    }
}

void aml_string(struct aml *a, const char *s)
{
    aml_byte(a, AML_STRING_PREFIX);
    aml_bytes(a, s, strlen(s) + 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Three letters packed 5 bits each, then four hex digits, stored big-endian (ACPI 19.6.35). */
void aml_eisaid(struct aml *a, const char *id)
{
    uint32_t v = 0;

    if (strlen(id) != 7) {
        a->bad_input = 1;
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z') {
            a->bad_input = 1;
            return;
        }
        v = v << 5 | (uint32_t)(id[i] - 0x40);
    }
    for (int i = 3; i < 7; i++) {
        int h = hexval(id[i]);
        if (h < 0) {
            a->bad_input = 1;
            return;
        }
        v = v << 4 | (uint32_t)h;
    }
    /* v holds the 31-bit ID; the DWord is its bytes in big-endian order. */
    aml_byte(a, AML_DWORD_PREFIX);
    aml_byte(a, (uint8_t)(v >> 24));
    aml_byte(a, (uint8_t)(v >> 16));
    aml_byte(a, (uint8_t)(v >> 8));
    aml_byte(a, (uint8_t)v);
}

void aml_name(struct aml *a, const char *name)
{
    aml_byte(a, AML_NAME_OP);
    aml_namestring(a, name);
}

static size_t pkg_open(struct aml *a)
{
    static const uint8_t zero[PKG_RESERVE];
    size_t mark = a->len;
    aml_bytes(a, zero, PKG_RESERVE);
    return mark;
}

void aml_close(struct aml *a, size_t mark)
{
    uint8_t enc[4];

    if (a->overflow || mark + PKG_RESERVE > a->len)
        return;
    size_t body = a->len - mark - PKG_RESERVE;
    size_t n = aml_pkglength_encode(body, enc);
    if (n == 0) {
        a->overflow = 1;
        return;
    }
    memmove(a->p + mark + n, a->p + mark + PKG_RESERVE, body);
    memcpy(a->p + mark, enc, n);
    a->len -= PKG_RESERVE - n;
}

size_t aml_scope_open(struct aml *a, const char *path)
{
    aml_byte(a, AML_SCOPE_OP);
    size_t mark = pkg_open(a);
    aml_namestring(a, path);
    return mark;
}

size_t aml_device_open(struct aml *a, const char *name)
{
    aml_byte(a, AML_EXT_OP_PREFIX);
    aml_byte(a, AML_DEVICE_OP);
    size_t mark = pkg_open(a);
    aml_namestring(a, name);
    return mark;
}

void aml_buffer(struct aml *a, const void *bytes, size_t n)
{
    aml_byte(a, AML_BUFFER_OP);
    size_t mark = pkg_open(a);
    aml_integer(a, n);
    aml_bytes(a, bytes, n);
    aml_close(a, mark);
}

void aml_res_io16(struct aml *r, uint16_t port, uint8_t len)
{
    /* Decode16, min = max = port, alignment 1, length. */
    uint8_t d[8] = { RES_IO, 0x01, (uint8_t)port, (uint8_t)(port >> 8),
                     (uint8_t)port, (uint8_t)(port >> 8), 0x01, len };
    aml_bytes(r, d, sizeof(d));
}

void aml_res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len, int writable)
{
    uint8_t d[3] = { RES_MEM32_FIXED, 9, 0 };
    aml_bytes(r, d, sizeof(d));
    aml_le(r, writable ? 1 : 0, 1);
    aml_le(r, base, 4);
    aml_le(r, len, 4);
}

void aml_res_interrupt(struct aml *r, uint32_t gsi, int level, int active_low, int shared)
{
    /* Flags: bit 0 consumer, bit 1 edge (0: level), bit 2 active-low, bit 3 shared. */
    uint8_t flags = (uint8_t)(0x01 | (level ? 0 : 0x02) | (active_low ? 0x04 : 0) |
                              (shared ? 0x08 : 0));
    uint8_t d[5] = { RES_EXT_IRQ, 6, 0, flags, 1 };
    aml_bytes(r, d, sizeof(d));
    aml_le(r, gsi, 4);
}

void aml_res_end(struct aml *r)
{
    uint8_t d[2] = { RES_END_TAG, 0 };
    aml_bytes(r, d, sizeof(d));
}
