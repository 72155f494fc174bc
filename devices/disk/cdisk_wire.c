/* A wire-level walk of the CompositeDisk message before protobuf-c sees it, so a bad
 * file gets an error naming the field and byte (protobuf-c only says "failed"). */
#include <string.h>
#include "devices/disk/cdisk_wire.h"
#include "devices/disk/disk_internal.h"

struct wire {
    const uint8_t *p;
    size_t len, pos;
    size_t base;            /* file offset of p[0], for messages */
};

static int wire_varint(struct wire *w, uint64_t *v, char *err, size_t errlen)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (w->pos >= w->len) {
            disk__err(err, errlen, "composite spec truncated inside a varint at byte %zu",
                      w->base + w->pos);
            return -EINVAL;
        }
        uint8_t b = w->p[w->pos++];
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    disk__err(err, errlen, "composite spec has a varint longer than 10 bytes at byte %zu",
              w->base + w->pos);
    return -EINVAL;
}

static const char *wt_name(unsigned wt)
{
    static const char *names[] = { "varint", "64-bit", "length-delimited", "start-group",
                                   "end-group", "32-bit", "reserved(6)", "reserved(7)" };
    return names[wt & 7];
}

/* expected[f] = wire type of known field f (1..4), or -1 for unknown fields (skipped). */
static int wire_walk(struct wire *w, const char *msg, const int expected[5], int nested,
                     char *err, size_t errlen)
{
    while (w->pos < w->len) {
        size_t at = w->base + w->pos;
        uint64_t key;
        int r = wire_varint(w, &key, err, errlen);
        if (r)
            return r;
        uint64_t field = key >> 3;
        unsigned wt = key & 7;
        if (field == 0) {
            disk__err(err, errlen, "%s: field number 0 at byte %zu is invalid", msg, at);
            return -EINVAL;
        }
        if (field <= 4 && expected[field] >= 0 && (unsigned)expected[field] != wt) {
            disk__err(err, errlen, "%s: field %llu has wire type %s, expected %s (byte %zu)",
                      msg, (unsigned long long)field, wt_name(wt),
                      wt_name((unsigned)expected[field]), at);
            return -EINVAL;
        }
        uint64_t v;
        switch (wt) {
        case 0:
            r = wire_varint(w, &v, err, errlen);
            if (r)
                return r;
            break;
        case 1:
        case 5: {
            size_t n = wt == 1 ? 8 : 4;
            if (w->len - w->pos < n) {
                disk__err(err, errlen, "%s: field %llu truncated at byte %zu", msg,
                          (unsigned long long)field, at);
                return -EINVAL;
            }
            w->pos += n;
            break;
        }
        case 2:
            r = wire_varint(w, &v, err, errlen);
            if (r)
                return r;
            if (v > w->len - w->pos) {
                disk__err(err, errlen, "%s: field %llu declares length %llu but only %zu bytes "
                          "remain (byte %zu)", msg, (unsigned long long)field,
                          (unsigned long long)v, w->len - w->pos, at);
                return -EINVAL;
            }
            if (!nested && field == 2) {
                static const int comp_expected[5] = { -1, 2, 0, 0, 0 };
                struct wire sub = { w->p + w->pos, (size_t)v, 0, w->base + w->pos };
                r = wire_walk(&sub, "composite spec component_disks entry", comp_expected, 1,
                              err, errlen);
                if (r)
                    return r;
            }
            w->pos += (size_t)v;
            break;
        default:
            disk__err(err, errlen, "%s: field %llu uses unsupported wire type %s (byte %zu)",
                      msg, (unsigned long long)field, wt_name(wt), at);
            return -EINVAL;
        }
    }
    return 0;
}

int cdisk_wire_check(const uint8_t *buf, size_t len, size_t base, char *err, size_t errlen)
{
    static const int top_expected[5] = { -1, 0, 2, 0, -1 };
    struct wire w = { buf, len, 0, base };
    return wire_walk(&w, "composite spec", top_expected, 0, err, errlen);
}
