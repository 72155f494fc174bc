#!/usr/bin/python3
"""Writes the hand-built seed inputs of the virtqueue, virtio-mmio and device fuzz targets
(valid rings and driver programs the fuzzer would take long to find by itself) into
fuzz/corpus/<target>/seed-*. Formats: see the comment at the top of each fuzz_<target>.c.
Usage: fuzz/seeds/gen_seeds.py [CORPUS_DIR]   (default fuzz/corpus)"""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "corpus")
NEXT, WRITE, INDIRECT = 1, 2, 4
AVAIL, USED = 1 << 7, 1 << 15


def put(name, data):
    target, fname = name.split("/")
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, fname), "wb") as f:
        f.write(bytes(data))


def ram(size):
    return bytearray(size)


def split_ring(num, heads, descs, extra=()):
    """RAM image for fuzz/vq_common.h's split layout: desc at 0, avail after, used aligned."""
    r = ram(0x800)
    for i, (addr, ln, fl, nx) in enumerate(descs):
        r[16 * i:16 * i + 16] = struct.pack("<QIHH", addr, ln, fl, nx)
    avail = 16 * num
    r[avail:avail + 4] = struct.pack("<HH", 0, len(heads))
    for i, h in enumerate(heads):
        r[avail + 4 + 2 * i:avail + 6 + 2 * i] = struct.pack("<H", h)
    for at, blob in extra:
        r[at:at + len(blob)] = blob
    return r


def packed_ring(descs, extra=()):
    r = ram(0x800)
    for i, (addr, ln, bid, fl) in enumerate(descs):
        r[16 * i:16 * i + 16] = struct.pack("<QIHH", addr, ln, bid, fl)
    for at, blob in extra:
        r[at:at + len(blob)] = blob
    return r


def table(entries):
    return b"".join(struct.pack("<QIHH", a, l, f, n) for a, l, f, n in entries)


# --- split virtqueue: num 8 (size byte 3) -----------------------------------------------
ind = table([(0x500, 16, 0, 0), (0x600, 64, WRITE, 0)])
sd = [(0x200, 16, NEXT, 1), (0x300, 512, WRITE | NEXT, 2), (0x1f0, 1, WRITE, 0),
      (0x400, len(ind), INDIRECT, 0), (0x700, 32, 0, 0)]
img = split_ring(8, [0, 3, 4], sd, [(0x400, ind)])
put("split_vq/seed-chains", bytes([3, 3, 0]) + img)                 # default ops
put("split_vq/seed-ops", bytes([7, 3, 12, 0, 0, 5, 3, 3, 0, 4, 5, 6, 0x82, 3, 0, 7, 0]) + img)
put("split_vq/seed-loop", bytes([2, 3, 0]) + split_ring(8, [0], [(0x200, 16, NEXT, 0)]))

# --- packed virtqueue: num 8 (size byte 7) ----------------------------------------------
pd = [(0x200, 16, 0, NEXT | AVAIL), (0x300, 512, 0, WRITE | AVAIL),
      (0x400, len(ind), 1, INDIRECT | AVAIL), (0x700, 32, 2, AVAIL)]
img = packed_ring(pd, [(0x400, ind)])
put("packed_vq/seed-chains", bytes([3, 7, 0]) + img)
put("packed_vq/seed-ops", bytes([7, 7, 10, 0, 0, 0, 5, 4, 5, 0, 7, 0, 3]) + img)
put("packed_vq/seed-wrap", bytes([1, 1, 8, 0, 3, 0, 3, 0, 3, 5, 0]) +
    packed_ring([(0x200, 16, 0, AVAIL), (0x300, 16, 1, AVAIL)]))

# --- virtio-blk: option byte, then [type][sector lo][sector hi][count][layout][fill] -----
reqs = [(1, 0, 0, 3, 0, 0x11), (0, 0, 0, 3, 1, 0), (2, 0, 0, 0, 0, 0), (3, 0, 0, 0, 0, 0),
        (5, 4, 0, 1, 8, 0), (0, 4, 0, 1, 0, 0), (4, 8, 0, 2, 0, 0), (1, 60, 0, 7, 2, 0x33),
        (0, 60, 0, 7, 3, 0), (6, 0, 0, 0, 0x12, 0x34), (7, 0, 0, 0, 0x0c, 0)]
for opt, name in ((0, "split"), (1, "packed"), (0x0f, "packed-indirect-event"), (6, "split-indirect-event")):
    put("virtio_blk/seed-" + name, bytes([opt]) + b"".join(bytes(r) for r in reqs))

# --- virtio-console: option, n, script, then [kind][arg] ---------------------------------
script = b"hello\nworld"
ops = [(0, 3), (0, 4), (1, 5), (2, 8), (3, 0x41), (0, 64), (1, 200)]
for opt in (0, 1, 6):
    put("virtio_console/seed-%d" % opt, bytes([opt, len(script)]) + script +
        b"".join(bytes(o) for o in ops))

# --- virtio-rng: option, seed, then [len lo][len hi][layout] -----------------------------
for opt in (0, 1, 6):
    put("virtio_rng/seed-%d" % opt, bytes([opt, 7, 16, 0, 0, 0, 1, 1, 255, 15, 2, 8, 0, 4]))

# --- virtio-input: option, kind, then [op][a][b][c] ---------------------------------------
for opt in (0, 1, 6):
    for kind in range(4):
        ops = [(0, 1, 0, 0), (0, 0x11, 3, 0), (0, 0x12, 0x35, 1), (0, 0x11, 0, 0),
               (2, 8, 0, 0), (2, 33, 0, 0), (2, 4, 0, 0), (1, 3, 3, 53), (4, 0, 0, 0),
               (1, 7, 1, 0x80), (3, 8, 1, 1), (3, 5, 0, 0), (5, 0, 0, 0), (1, 2, 0, 0),
               (2, 48, 0, 0), (4, 0, 0, 0)]
        put("virtio_input/seed-%d-%d" % (opt, kind), bytes([opt, kind]) + b"".join(bytes(o) for o in ops))

# --- virtio-balloon: option, features, then [op][a][b][c] --------------------------------
for opt in (0, 1, 6):
    for feats in (0, 1, 3):
        ops = [(5, 0, 16, 1), (0, 16, 9, 1), (6, 0, 0, 0), (4, 16, 0, 0), (0, 64, 255, 255),
               (1, 8, 9, 1), (2, 15, 4, 1), (6, 0, 0, 0), (5, 0, 0, 2), (2, 5, 0, 7),
               (3, 1, 3, 2), (4, 255, 255, 255), (5, 1, 0, 0x53), (5, 0, 0, 0x24), (6, 0, 0, 0)]
        put("virtio_balloon/seed-%d-%d" % (opt, feats), bytes([opt, feats]) + b"".join(bytes(o) for o in ops))

# --- virtio-mmio: a driver bringing up queue 0 (split, 8 entries) and one request ---------
def w(reg, val):
    return bytes([reg, 0]) + struct.pack("<I", val)


def rd(reg):
    return bytes([reg, 1, 0, 0, 0, 0])


def mmio_prog(dev, packed):
    p = [w(0x70, 0), w(0x70, 1), w(0x70, 3), w(0x14, 0), rd(0x10), w(0x14, 1), rd(0x10),
         w(0x24, 0), w(0x20, 0), w(0x24, 1), w(0x20, 1 | (4 if packed else 0)), w(0x70, 0xb), rd(0x70),
         w(0x30, 0), rd(0x34), w(0x38, 8), w(0x80, 0x1000), w(0x84, 0), w(0x90, 0x1100),
         w(0x94, 0), w(0xa0, 0x1200), w(0xa4, 0), w(0x44, 1), w(0x70, 0xf),
         w(0x50, 0), rd(0x60), w(0x64, 1), rd(0x70),
         bytes([0xc2, 0]) + struct.pack("<I", 0), bytes([0xc3, 1]) + struct.pack("<I", 8)]
    r = ram(0x1400)
    if packed:
        d = [(0x1300, 16, 0, NEXT | AVAIL), (0x1320, 512, 0, WRITE | NEXT | AVAIL),
             (0x1310, 1, 0, WRITE | AVAIL)]
        for i, (a, l, b, f) in enumerate(d):
            r[0x1000 + 16 * i:0x1010 + 16 * i] = struct.pack("<QIHH", a, l, b, f)
    else:
        d = [(0x1300, 16, NEXT, 1), (0x1320, 512, WRITE | NEXT, 2), (0x1310, 1, WRITE, 0)]
        for i, (a, l, f, n) in enumerate(d):
            r[0x1000 + 16 * i:0x1010 + 16 * i] = struct.pack("<QIHH", a, l, f, n)
        r[0x1100:0x1106] = struct.pack("<HHH", 0, 1, 0)
    if dev == 0:
        r[0x1300:0x1310] = struct.pack("<IIQ", 0, 0, 0)       # virtio-blk IN sector 0
    elif dev == 1:                                              # console: rx then tx
        pass
    prog = b"".join(p)
    return bytes([dev, len(p)]) + prog + bytes(r)


for dev in range(3):
    for packed in (0, 1):
        put("virtio_mmio/seed-dev%d-%s" % (dev, "packed" if packed else "split"), mmio_prog(dev, packed))

# --- virtio-net: option, features, then [kind][a][b] (fuzz_virtio_net.c) -----------------
net_ops = [(0, 200, 0), (0, 200, 1), (0, 20, 0), (1, 8, 0), (1, 100, 1), (1, 60, 4 | 0x20),
           (1, 10, 2), (1, 10, 3), (1, 200, 8), (3, 8, 0), (3, 100, 1), (3, 100, 2),
           (2, 0, 0x04), (2, 0, 0x04 | 1), (3, 100, 2), (2, 1, 0x18), (2, 3, 0), (2, 0, 0x80),
           (4, 0, 2), (4, 10, 1), (0, 4, 0), (0, 4, 0), (0, 4, 1), (3, 30, 0), (5, 0, 0),
           (0, 200, 0), (1, 12, 0)]
for opt, feat in ((0, 7), (1, 7), (6, 1), (0x0f, 6), (0x10, 0)):
    put("virtio_net/seed-%d-%d" % (opt, feat), bytes([opt, feat]) +
        b"".join(bytes(o) for o in net_ops) + bytes(range(16)))

# virtio_vsock: 4-byte ops [kind][a][b][c] (fuzz/fuzz_virtio_vsock.c). Guest port index
# b & 3, host port index b >> 2 & 3 (0: 80, 2: the first host-allocated port).
def vs(kind, a=0, b=0, c=0):
    return bytes([kind, a, b, c])


VS_RX = vs(1, 3, 255)                       # four 1064-byte rx buffers
VS_SEEDS = {
    # guest connects to host port 80, sends 170 bytes, host answers 320, ends, guest RST
    "guest-connect": [VS_RX, vs(0, 1, 0, 0), vs(0, 5, 0, 10), vs(3, 0, 10), VS_RX,
                      vs(5, 0), VS_RX, vs(0, 3, 0, 0)],
    # host connects to guest port 1024, guest accepts, data both ways, host closes
    "host-connect": [VS_RX, vs(2, 0), vs(0, 2, 8, 0), vs(3, 0, 100), VS_RX, vs(0, 5, 8, 40),
                     vs(0, 6, 8, 0), vs(6, 0), VS_RX],
    # blocked host, credit request, shutdown each way, reset, poll
    "credit-shutdown": [VS_RX, vs(0, 1, 1, 0), vs(4, 0, 1), vs(0, 5, 1, 200), vs(0, 7, 1, 0),
                        VS_RX, vs(4, 0, 0), vs(0, 4, 1, 1), vs(0, 4, 1, 2), VS_RX, vs(7, 0),
                        vs(7, 255), VS_RX],
    # strangers: RST/RW for unknown pairs, bad cids, short buffers, small rx buffers
    "hostile": [vs(0, 3, 5, 0), vs(0, 5, 6, 3), vs(0, 1, 0x10, 9), vs(0, 1, 0x20, 0),
                vs(0, 5, 0x80, 50), vs(1, 3, 2), vs(0, 1, 4, 0), vs(1, 0, 5), VS_RX],
}
for name, ops in VS_SEEDS.items():
    for opt in (0, 0x1f):
        put("virtio_vsock/seed-%s-%d" % (name, opt), bytes([opt]) + b"".join(ops))
