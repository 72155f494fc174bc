#!/usr/bin/python3
"""Bad arm64 Images for `make test-kvm-arm64` (into the directory argv[1]): a wrong magic,
a header cut short, an image_size past 64 MiB of RAM, and a good small Image with an initrd
larger than the RAM left above it."""
import struct
import sys

d = sys.argv[1]


def image(image_size, magic=0x644d5241, body=4096):
    # code0 (b +0), code1, text_offset, image_size, flags (LE, 4K pages, anywhere), res2-4,
    # magic, res5
    h = struct.pack("<IIQQQQQQII", 0x14000000, 0, 0, image_size, 0xa, 0, 0, 0, magic, 0)
    return h + b"\0" * (body - len(h))


open(f"{d}/magic.img", "wb").write(image(1 << 20, magic=0x12345678))
open(f"{d}/truncated.img", "wb").write(image(1 << 20)[:40])
open(f"{d}/image-size.img", "wb").write(image(1 << 30))
open(f"{d}/small.img", "wb").write(image(1 << 20))
open(f"{d}/big.initrd", "wb").write(b"\0" * (80 << 20))
