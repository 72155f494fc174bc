/* `vmlab trace export --format pcap`: the frames virtio-net devices exchanged with their
 * backends (host-out: the guest sent it; host-in: delivered to the guest) as a pcap file,
 * Ethernet link type, nanosecond timestamps (magic 0xa1b23c4d) = the trace's virtual time.
 * Frames are in trace order; tcpdump -r and tshark -r read the result. */
#include "tools.h"

#include <errno.h>
#include <string.h>

#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAP_LINKTYPE_ETHERNET 1u
#define PCAP_SNAPLEN 65535u

static int put32(FILE *f, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    return fwrite(b, 1, 4, f) == 4 ? 0 : -EIO;
}

static int put16(FILE *f, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    return fwrite(b, 1, 2, f) == 2 ? 0 : -EIO;
}

int trace_is_net_frame(const struct trace_header *h, const struct trace_event *e)
{
    return (e->kind == TRACE_EV_HOST_IN || e->kind == TRACE_EV_HOST_OUT) && e->device >= 0 &&
           (unsigned)e->device < h->machine.ndevices &&
           !strcmp(h->machine.devices[e->device].kind, "virtio-net");
}

int trace_export_pcap(FILE *out, const struct trace_header *h, const struct trace_event *ev,
                      size_t n, size_t *frames)
{
    int rc = put32(out, PCAP_MAGIC_NS) | put16(out, 2) | put16(out, 4) | put32(out, 0) |
             put32(out, 0) | put32(out, PCAP_SNAPLEN) | put32(out, PCAP_LINKTYPE_ETHERNET);

    *frames = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct trace_event *e = &ev[i];
        if (!trace_is_net_frame(h, e))
            continue;
        uint32_t cap = e->len > PCAP_SNAPLEN ? PCAP_SNAPLEN : e->len;
        rc = put32(out, (uint32_t)(e->time_ns / 1000000000u)) |
             put32(out, (uint32_t)(e->time_ns % 1000000000u)) | put32(out, cap) |
             put32(out, e->len);
        if (!rc && cap && fwrite(e->data, 1, cap, out) != cap)
            rc = -EIO;
        (*frames)++;
    }
    return rc ? -EIO : 0;
}
