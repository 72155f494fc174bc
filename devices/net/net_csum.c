#include "devices/net/net_csum.h"

#include <errno.h>

static uint16_t csum_fold(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;

    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int net_csum_complete(uint8_t *frame, size_t len, uint16_t start, uint16_t offset)
{
    if (start >= len || (size_t)start + offset + 2 > len)
        return -EINVAL;
    uint16_t c = csum_fold(frame + start, len - start);
    /* UDP over IPv4 sends a zero sum as all ones (a zero means "no checksum"). */
    if (c == 0 && len > 23 && frame[12] == 0x08 && frame[13] == 0x00 && frame[14 + 9] == 17)
        c = 0xffff;
    frame[start + offset] = (uint8_t)(c >> 8);
    frame[start + offset + 1] = (uint8_t)c;
    return 0;
}
