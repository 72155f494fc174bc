#!/usr/bin/python3
"""extract-vmlinux.py BZIMAGE OUT: writes the vmlinux ELF a Linux bzImage carries compressed.

The setup header gives the payload's place (boot.rst: payload_offset at 0x248 and
payload_length at 0x24c, from the start of the protected-mode code, which follows
(setup_sects + 1) * 512 bytes of setup). Debian's kernels compress it with xz (the stdlib's
lzma reads it; gzip too). The result is the vmlinux `vmlab run --kernel` boots by its PVH
entry note, skipping the decompressor (sim/README.md). One error line and exit 1 on a file
that is not such a bzImage."""
import gzip
import io
import lzma
import struct
import sys


def extract(k):
    if len(k) < 0x250 or k[0x202:0x206] != b"HdrS":
        raise ValueError("no \"HdrS\" setup header at 0x202: not a bzImage")
    version, = struct.unpack_from("<H", k, 0x206)
    if version < 0x0208:
        raise ValueError("boot protocol %#x has no payload_offset (needs 2.08)" % version)
    setup = ((k[0x1f1] or 4) + 1) * 512
    off, length = struct.unpack_from("<II", k, 0x248)
    payload = k[setup + off:setup + off + length]
    if len(payload) != length or length < 6:
        raise ValueError("payload_offset %#x + payload_length %#x run past the file's %d bytes"
                         % (off, length, len(k)))
    if payload.startswith(b"\xfd7zXZ\x00"):
        out = lzma.LZMADecompressor().decompress(payload)  # stops at the stream's end
    elif payload.startswith(b"\x1f\x8b"):
        out = gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
    else:
        raise ValueError("payload compression with magic %s is not xz or gzip" % payload[:4].hex())
    if not out.startswith(b"\x7fELF"):
        raise ValueError("the decompressed payload is not an ELF file")
    return out


def main():
    if len(sys.argv) != 3:
        print("usage: extract-vmlinux.py BZIMAGE OUT", file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], "rb") as f:
            out = extract(f.read())
    except (OSError, ValueError, lzma.LZMAError, EOFError) as e:
        print("extract-vmlinux: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    with open(sys.argv[2], "wb") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
