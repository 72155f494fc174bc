#!/usr/bin/python3
"""arm64 Images for `make test-kvm-arm64` (into the directory argv[1]): bad ones (a wrong magic,
a header cut short, an image_size past 64 MiB of RAM, and a good small Image with an initrd
larger than the RAM left above it), and psci-off.img, a guest that only powers off."""
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

# Not bad: the smallest arm64 Linux-Image-shaped guest, for boot-to-exit figures on vmlab and
# QEMU alike: the header's code0 branches to +64, which calls PSCI SYSTEM_OFF through HVC.
code = struct.pack("<IIII", 0x52800100,   # movz w0, #0x0008
                   0x72b08000,            # movk w0, #0x8400, lsl #16  (0x84000008)
                   0xd4000002,            # hvc #0
                   0x14000000)            # b .
h = struct.pack("<IIQQQQQQII", 0x14000010, 0, 0, 0x10000, 0xa, 0, 0, 0, 0x644d5241, 0)
open(f"{d}/psci-off.img", "wb").write(h + code + b"\0" * (4096 - len(h) - len(code)))

# A guest program (EM_AARCH64 ELF, one PT_LOAD at 1 MiB) whose "vmlab" entry-EL note asks
# for EL2: refused (vmm/loader_pvh.h, VMLAB_ELFNOTE_ENTRY_EL).
ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 2, 183, 1,
                   0x100000, 64, 0, 0, 64, 56, 2, 0, 0, 0)
code_off, note_off = 64 + 2 * 56, 64 + 2 * 56 + 16
phdrs = struct.pack("<IIQQQQQQ", 1, 7, code_off, 0x100000, 0x100000, 16, 16, 4096)
phdrs += struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, 24, 24, 4)
note = struct.pack("<III", 6, 4, 1) + b"vmlab\0\0\0" + struct.pack("<I", 2)
open(f"{d}/el2.elf", "wb").write(ehdr + phdrs + b"\x1f\x20\x03\xd5" * 4 + note)
