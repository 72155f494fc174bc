/* Fuzz target: `vmlab trace export --format pcap` (traces/pcap.c) over whatever the trace
 * decoder accepts. The input is a trace file (CRCs fixed up first, as fuzz_trace does, so
 * mutations reach the decoder and the exporter).
 * Invariants (abort() on violation): the export succeeds on every decodable prefix; the
 * pcap is exactly a 24-byte header with the nanosecond magic and link type 1, then one
 * record per virtio-net host-in/host-out event, in order, each a 16-byte header whose
 * timestamp is the event's time and whose captured bytes are the event's data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "traces/tools.h"
#include "traces/trace_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trace_reader *rd;
    struct trace_event *ev = NULL;
    size_t n = 0, frames, outlen = 0;
    char err[300], *out = NULL;
    uint8_t *copy = malloc(size ? size : 1);

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    trace_fix_crcs(copy, size);
    if (trace_reader_open_mem(&rd, copy, size, err, sizeof(err))) {
        free(copy);
        return 0;
    }
    trace_reader_load(rd, &ev, &n, err, sizeof(err));
    const struct trace_header *h = trace_reader_header(rd);
    FILE *f = open_memstream(&out, &outlen);
    if (!f || trace_export_pcap(f, h, ev, n, &frames) || fclose(f))
        abort();    /* writing to memory never fails */
    const uint8_t *p = (const uint8_t *)out, *end = p + outlen;
    if (outlen < 24 || get32(p) != 0xa1b23c4du || get32(p + 20) != 1)
        abort();
    p += 24;
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!trace_is_net_frame(h, &ev[i]))
            continue;
        uint32_t cap = ev[i].len > 65535 ? 65535 : ev[i].len;
        if (end - p < 16 || get32(p) != (uint32_t)(ev[i].time_ns / 1000000000u) ||
            get32(p + 4) != (uint32_t)(ev[i].time_ns % 1000000000u) || get32(p + 8) != cap ||
            get32(p + 12) != ev[i].len || (size_t)(end - p - 16) < cap ||
            (cap && memcmp(p + 16, ev[i].data, cap)))
            abort();    /* a record that is not the event */
        p += 16 + cap;
        seen++;
    }
    if (p != end || seen != frames)
        abort();        /* bytes or records beyond the frames */
    free(out);
    free(ev);
    trace_reader_close(rd);
    free(copy);
    return 0;
}
