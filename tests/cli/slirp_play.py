"""vmlab's side of the slirp helper's stream (devices/net/slirp_proto.h), for the tests that
drive the real helper (build/vmlab-slirp) from Python: the message header, a guest's UDP
frame to the gateway, and the request/answer exchange."""
import struct
import sys

HDR = struct.Struct("<IIQQII")          # type, len, arg, at, cpu, reserved
CONFIG, FRAME, POLL, DONE, ERROR = 1, 2, 4, 9, 8


def csum(b):
    s = sum(struct.unpack(f">{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def udp_frame(port, payload):
    """The guest (10.0.2.15, 52:54:00:12:34:56) sends PAYLOAD from UDP port 5000 to
    10.0.2.2:PORT (with restrict=off slirp opens a host socket to 127.0.0.1:PORT)."""
    udp = struct.pack(">HHHH", 5000, port, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])))
    ip[10:12] = struct.pack(">H", csum(bytes(ip)))
    return bytes.fromhex("52550a000202" "525400123456" "0800") + bytes(ip) + udp


class Stream:
    """The socket to the helper: ask() sends one request and reads the answers up to its
    DONE, keeping the frames for the guest in .frames and DONE's arg in .done_arg; returns
    DONE's time (the helper's next timer, on vmlab's clock)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.frames = []
        self.done_arg = None

    def ask(self, kind, at, arg=0, payload=b""):
        self.sock.sendall(HDR.pack(kind, len(payload), arg, at, 0, 0) + payload)
        while True:
            while (len(self.buf) < HDR.size or
                   len(self.buf) < HDR.size + HDR.unpack_from(self.buf)[1]):
                more = self.sock.recv(1 << 17)
                if not more:
                    sys.exit("the helper closed its stream")
                self.buf += more
            t, n, arg, due, _, _ = HDR.unpack_from(self.buf)
            if t == FRAME:
                self.frames.append(self.buf[HDR.size:HDR.size + n])
            self.buf = self.buf[HDR.size + n:]
            if t == ERROR:
                sys.exit("the helper refused CONFIG")
            if t == DONE:
                self.done_arg = arg
                return due
