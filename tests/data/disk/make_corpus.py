#!/usr/bin/python3
"""Generates the malformed disk-image corpus in this folder (run from anywhere).

Each file is named after what is wrong with it; tests/test_composite.c and
tests/test_qcow2.c open every one and expect its specific error. Deterministic:
running it again rewrites identical files.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"composite_disk\x1d"


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wt):
    return varint(field << 3 | wt)


def ldelim(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def component(path, offset=0, rw=0, file_offset=0):
    m = ldelim(1, path.encode())
    if offset:
        m += key(2, 0) + varint(offset)
    if rw:
        m += key(3, 0) + varint(rw)
    if file_offset:
        m += key(4, 0) + varint(file_offset)
    return m


def composite(comps, length, version=2):
    m = key(1, 0) + varint(version) if version else b""
    for c in comps:
        m += ldelim(2, c)
    m += key(3, 0) + varint(length)
    return MAGIC + m


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def make_composites():
    write("comp_a.raw", bytes([0xA1]) * 4096)
    write("comp_b.raw", bytes([0xB2]) * 4096)
    write("comp_small.raw", bytes([0xC3]) * 1000)
    a, b = component("comp_a.raw"), component("comp_b.raw", 4096)
    write("good.cdisk", composite([a, b], 8192))
    write("bad_magic.cdisk", b"composite_disX\x1d" + composite([a, b], 8192)[len(MAGIC):])
    good = composite([a, b], 8192)
    write("truncated.cdisk", good[: len(MAGIC) + 20])
    write("wrong_wiretype.cdisk", MAGIC + key(1, 0) + varint(2) + key(2, 0) + varint(5))
    write("huge_length.cdisk", MAGIC + key(1, 0) + varint(2) + key(2, 2) + varint(1 << 62) + b"xx")
    write("bad_varint.cdisk", MAGIC + key(1, 0) + b"\xff" * 11)
    write("group_wiretype.cdisk", MAGIC + key(1, 0) + varint(2) + key(7, 3))
    write("overlap.cdisk", composite([a, component("comp_b.raw", 0)], 8192))
    write("unsorted.cdisk", composite([a, component("comp_b.raw", 8192), component("comp_a.raw", 4096)], 12288))
    write("gap.cdisk", composite([component("comp_small.raw"), component("comp_b.raw", 4096)], 8192))
    write("short_last.cdisk", composite([a, component("comp_small.raw", 4096)], 8192))
    write("not_at_zero.cdisk", composite([component("comp_a.raw", 512), component("comp_b.raw", 4096)], 8192))
    write("length_short.cdisk", composite([a, b], 4096))
    write("empty_list.cdisk", composite([], 4096))
    write("version3.cdisk", composite([a, b], 8192, version=3))
    write("version0.cdisk", composite([a, b], 8192, version=0))
    write("self_cycle.cdisk", composite([a, component("self_cycle.cdisk", 4096)], 8192))
    write("cycle_a.cdisk", composite([component("cycle_b.cdisk")], 4096))
    write("cycle_b.cdisk", composite([component("cycle_a.cdisk")], 4096))
    write("missing_component.cdisk", composite([a, component("does_not_exist.raw", 4096)], 8192))
    write("bad_capability.cdisk", composite([component("comp_a.raw", rw=7)], 4096))
    # nest01 holds comp_a.raw; nestNN holds nest(NN-1): nest10 is 10 levels deep, nest11 one too many.
    write("nest01.cdisk", composite([a], 4096))
    for n in range(2, 12):
        write("nest%02d.cdisk" % n, composite([component("nest%02d.cdisk" % (n - 1))], 4096))


# ---- qcow2 (v3, 512-byte clusters to keep the files tiny) ----
CB = 9
CS = 1 << CB


def qcow2(size=64 * 1024, version=3, cluster_bits=CB, crypt=0, refcount_order=4,
          l1_offset=None, rt_offset=None, l2_entry=None, l1_entry=None, incompat=0,
          header_length=104, truncate=None):
    cs = 1 << cluster_bits
    per_l2 = cs * (cs // 8)
    l1_size = max(1, (size + per_l2 - 1) // per_l2)
    # clusters: 0 header, 1 refcount table, 2 refcount block, 3 L1, 4 L2, 5 data
    img = bytearray(6 * cs)
    hdr = struct.pack(">IIQIIQIIQQIIQ", 0x514649FB, version, 0, 0, cluster_bits, size, crypt,
                      l1_size, 3 * cs if l1_offset is None else l1_offset,
                      cs if rt_offset is None else rt_offset, 1, 0, 0)
    if version >= 3:
        hdr += struct.pack(">QQQII", incompat, 0, 0, refcount_order, header_length)
    img[: len(hdr)] = hdr
    struct.pack_into(">Q", img, cs, 2 * cs)
    for i in range(6):
        struct.pack_into(">H", img, 2 * cs + 2 * i, 1)
    struct.pack_into(">Q", img, 3 * cs, (4 * cs if l1_entry is None else l1_entry) | (1 << 63))
    struct.pack_into(">Q", img, 4 * cs, (5 * cs if l2_entry is None else l2_entry) | (1 << 63))
    img[5 * cs: 6 * cs] = bytes([0x5A]) * cs
    if truncate is not None:
        img = img[:truncate]
    return bytes(img)


def make_qcow2():
    write("qcow2_good.qcow2", qcow2())
    write("qcow2_bad_version.qcow2", qcow2(version=1))
    bad = bytearray(qcow2())
    struct.pack_into(">I", bad, 20, 30)         # cluster_bits 30: 1 GiB clusters
    write("qcow2_bad_cluster_bits.qcow2", bytes(bad))
    write("qcow2_truncated_header.qcow2", qcow2(truncate=50))
    write("qcow2_l1_outside.qcow2", qcow2(l1_offset=1 << 40))
    write("qcow2_l2_outside.qcow2", qcow2(l1_entry=1 << 30))
    # The next two open (their L1 table is sound) and fail on the first use of the entry.
    write("qcow2_data_outside.qcow2", qcow2(l2_entry=1 << 30))
    write("qcow2_refcount_table_outside.qcow2", qcow2(rt_offset=1 << 40))
    write("qcow2_refcount_overflow.qcow2", qcow2(refcount_order=7))
    write("qcow2_encrypted.qcow2", qcow2(crypt=1))
    # a compressed entry with the COPIED flag (qcow2() sets bit 63 on the L2 entry)
    write("qcow2_compressed.qcow2", qcow2(l2_entry=(1 << 62) | 5 * CS))
    write("qcow2_corrupt_flag.qcow2", qcow2(incompat=2))
    write("qcow2_bad_header_length.qcow2", qcow2(header_length=50))
    write("qcow2_dirty.qcow2", qcow2(incompat=1))   # readable; writing needs a repair first
    write("qcow2_unknown_incompat.qcow2", qcow2(incompat=1 << 40))


if __name__ == "__main__":
    make_composites()
    make_qcow2()
