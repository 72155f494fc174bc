/* blk: exercises a virtio-blk disk through the driver library.
 * ops=read,getid,write,flush,err (default: all, always run in that order):
 *   read   whole-disk FNV-1a 64 checksum, depth= requests in flight (default 4)
 *   getid  VIRTIO_BLK_T_GET_ID, prints the id string
 *   write  writes the pattern to wcount= (even, 2..64; default 8) sectors at wsector=
 *          (default capacity/2), data split over two descriptors, reads them back one
 *          sector per request, depth= at a time, and compares; on a read-only disk
 *          expects IOERR instead
 *   flush  VIRTIO_BLK_T_FLUSH (if the device offers it)
 *   err    reads at the capacity and across the end, expects IOERR for both
 * Ring options: ring= mode= indirect= event_idx= qsize= (see guest/virtio/README.md).
 * Pattern byte i of sector s: (s * 131 + i * 7 + 0x5a) & 0xff. */
#include "rt.h"
#include "vblk.h"

#define CHUNK_SECTORS 64u       /* 32 KiB per read request */
#define MAX_DEPTH 8u

static struct vblk blk;
static uint8_t bufs[MAX_DEPTH][CHUNK_SECTORS * 512] __attribute__((aligned(4096)));
static uint8_t wbuf[CHUNK_SECTORS * 512] __attribute__((aligned(4096)));
static uint8_t rbuf[CHUNK_SECTORS * 512] __attribute__((aligned(4096)));
static char ops[64] = "read,getid,write,flush,err";

static int op_on(const char *name)
{
    size_t n = strlen(name);
    for (const char *p = ops; *p;) {
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == 0))
            return 1;
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return 0;
}

static uint8_t pattern(uint64_t s, unsigned i) { return (uint8_t)(s * 131 + i * 7 + 0x5a); }

static void op_read(unsigned depth)
{
    uint64_t h = VIRTIO_FNV_INIT, s = 0;
    while (s < blk.capacity) {
        unsigned n = 0, cnt[MAX_DEPTH];
        for (; n < depth && s < blk.capacity; n++) {
            uint64_t left = blk.capacity - s;
            cnt[n] = left < CHUNK_SECTORS ? (unsigned)left : CHUNK_SECTORS;
            GUEST_ASSERT_EQ(vblk_add(&blk, n, VIRTIO_BLK_T_IN, s, bufs[n], cnt[n] * 512, 1), 0);
            s += cnt[n];
        }
        vblk_kick(&blk);
        for (unsigned i = 0; i < n; i++) {
            unsigned slot = vblk_wait(&blk);
            GUEST_ASSERT(slot < n);
            GUEST_ASSERT_EQ(blk.status[slot], VIRTIO_BLK_S_OK);
        }
        for (unsigned i = 0; i < n; i++)    /* completions may come out of order */
            h = virtio_fnv1a(h, bufs[i], cnt[i] * 512);
    }
    printf("blk: capacity %llu sectors, checksum 0x%016llx\n",
           (unsigned long long)blk.capacity, (unsigned long long)h);
}

static void op_getid(void)
{
    char id[VBLK_ID_BYTES + 1];
    memset(rbuf, 0, VBLK_ID_BYTES);
    int st = vblk_io(&blk, VIRTIO_BLK_T_GET_ID, 0, rbuf, VBLK_ID_BYTES);
    if (st == VIRTIO_BLK_S_UNSUPP) {
        printf("blk: getid -> UNSUPP\n");
        return;
    }
    GUEST_ASSERT_EQ(st, VIRTIO_BLK_S_OK);
    memcpy(id, rbuf, VBLK_ID_BYTES);   /* NUL-padded, not NUL-terminated when 20 long */
    id[VBLK_ID_BYTES] = 0;
    printf("blk: id \"%s\"\n", id);
}

static void op_write(uint64_t ws, unsigned wc, unsigned depth)
{
    if (blk.ro) {
        memset(wbuf, 0xee, 512);
        int st = vblk_io(&blk, VIRTIO_BLK_T_OUT, 0, wbuf, 512);
        GUEST_ASSERT_EQ(st, VIRTIO_BLK_S_IOERR);
        printf("blk: write to read-only disk -> IOERR\n");
        return;
    }
    for (unsigned s = 0; s < wc; s++)
        for (unsigned i = 0; i < 512; i++)
            wbuf[s * 512 + i] = pattern(ws + s, i);
    GUEST_ASSERT_EQ(vblk_add(&blk, 0, VIRTIO_BLK_T_OUT, ws, wbuf, wc * 512, 2), 0);
    vblk_kick(&blk);
    GUEST_ASSERT_EQ(blk.status[vblk_wait(&blk)], VIRTIO_BLK_S_OK);
    memset(rbuf, 0, wc * 512);
    /* read back in single sectors, depth of them in flight at once */
    for (unsigned s = 0; s < wc; s += depth) {
        unsigned n = wc - s < depth ? wc - s : depth;
        for (unsigned i = 0; i < n; i++)
            GUEST_ASSERT_EQ(vblk_add(&blk, i, VIRTIO_BLK_T_IN, ws + s + i,
                                     rbuf + (s + i) * 512, 512, 1), 0);
        vblk_kick(&blk);
        for (unsigned i = 0; i < n; i++)
            GUEST_ASSERT_EQ(blk.status[vblk_wait(&blk)], VIRTIO_BLK_S_OK);
    }
    GUEST_ASSERT_EQ(memcmp(rbuf, wbuf, wc * 512), 0);
    printf("blk: wrote and verified %u sectors at %llu\n", wc, (unsigned long long)ws);
}

static void op_flush(void)
{
    if (!blk.has_flush) {
        printf("blk: flush not offered\n");
        return;
    }
    GUEST_ASSERT_EQ(vblk_io(&blk, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
    printf("blk: flush ok\n");
}

static void op_err(void)
{
    int st = vblk_io(&blk, VIRTIO_BLK_T_IN, blk.capacity, rbuf, 512);
    GUEST_ASSERT_EQ(st, VIRTIO_BLK_S_IOERR);
    st = vblk_io(&blk, VIRTIO_BLK_T_IN, blk.capacity - 1, rbuf, 1024);
    GUEST_ASSERT_EQ(st, VIRTIO_BLK_S_IOERR);
    printf("blk: read past end -> IOERR\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct virtio_opts o;
    if (virtio_opts_parse(&o))
        return 2;
    rt_cmdline_get("ops", ops, sizeof ops);
    uint64_t depth = virtio_cmdline_u64("depth", 4);
    if (depth < 1 || depth > MAX_DEPTH) {
        printf("blk: bad depth=%llu (1..%u)\n", (unsigned long long)depth, MAX_DEPTH);
        return 2;
    }
    if (vblk_open(&blk, (unsigned)virtio_cmdline_u64("disk", 0), &o))
        return 1;
    GUEST_ASSERT(blk.capacity >= 2);
    uint64_t wc = virtio_cmdline_u64("wcount", 8);
    uint64_t ws = virtio_cmdline_u64("wsector", blk.capacity / 2);
    if (wc < 2 || wc > CHUNK_SECTORS || wc % 2) {
        printf("blk: bad wcount=%llu (even, 2..%u)\n", (unsigned long long)wc, CHUNK_SECTORS);
        return 2;
    }
    if (ws > blk.capacity - wc) {
        printf("blk: bad wsector=%llu (the range must end by the capacity %llu)\n",
               (unsigned long long)ws, (unsigned long long)blk.capacity);
        return 2;
    }

    printf("blk: disk of %llu sectors%s\n", (unsigned long long)blk.capacity,
           blk.ro ? ", read-only" : "");
    if (op_on("read"))
        op_read((unsigned)depth);
    if (op_on("getid"))
        op_getid();
    if (op_on("write"))
        op_write(ws, (unsigned)wc, (unsigned)depth);
    if (op_on("flush"))
        op_flush();
    if (op_on("err"))
        op_err();
    printf("blk: done (%llu notifies, %llu kicks suppressed, %llu interrupts)\n",
           (unsigned long long)blk.q->notifies, (unsigned long long)blk.q->kicks_suppressed,
           (unsigned long long)blk.dev.irq_count);
    return 0;
}
