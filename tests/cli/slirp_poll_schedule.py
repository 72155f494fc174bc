"""Plays vmlab to the real slirp helper (build/vmlab-slirp) over the stream of
devices/net/slirp_proto.h and prints when the helper asks to look at its host sockets after
a guest frame: the software CPU's polling schedule, a function of vmlab's clock alone.
The guest frame is a UDP datagram to 10.0.2.2:PORT, which (restrict=off) opens a host
socket to 127.0.0.1:PORT, a socket this script holds and never answers from.
Prints one line: "looks US US ..." (microseconds after the frame, until the looks are 1 ms
apart or past 3 ms). usage: /usr/bin/python3 slirp_poll_schedule.py HELPER"""
import os
import socket
import struct
import subprocess
import sys

HDR = struct.Struct("<IIQQII")          # type, len, arg, at, cpu, reserved
CONFIG, FRAME, POLL, DONE, ERROR = 1, 2, 4, 9, 8
T0 = 1_000_000                          # the frame's time on vmlab's clock, ns


def csum(b):
    s = sum(struct.unpack(f">{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def udp_frame(port):
    payload = b"vmlab poll schedule"
    udp = struct.pack(">HHHH", 5000, port, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])))
    ip[10:12] = struct.pack(">H", csum(bytes(ip)))
    return bytes.fromhex("52550a000202" "525400123456" "0800") + bytes(ip) + udp


def main():
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    helper = subprocess.Popen([sys.argv[1], "--parent", str(os.getpid())],
                              preexec_fn=lambda: os.dup2(theirs.fileno(), 3), pass_fds=(3,))
    theirs.close()
    ours.settimeout(10)
    buf = b""

    def ask(kind, at, arg=0, payload=b""):
        nonlocal buf
        ours.sendall(HDR.pack(kind, len(payload), arg, at, 0, 0) + payload)
        while True:
            while len(buf) < HDR.size or len(buf) < HDR.size + HDR.unpack_from(buf)[1]:
                more = ours.recv(1 << 17)
                if not more:
                    sys.exit("the helper closed its stream")
                buf += more
            t, n, _, due, _, _ = HDR.unpack_from(buf)
            buf = buf[HDR.size + n:]
            if t == ERROR:
                sys.exit("the helper refused CONFIG")
            if t == DONE:
                return due

    try:
        ask(CONFIG, 0, payload=b"net=user,restrict=off")
        due = ask(FRAME, T0, arg=1, payload=udp_frame(mute.getsockname()[1]))
        looks, last = [], T0
        while due < (1 << 63) and due - T0 <= 3_000_000 and due - last < 1_000_000:
            looks.append(due - T0)
            last, due = due, ask(POLL, due)
        print("looks " + " ".join(str(x // 1000) for x in looks))
    finally:
        ours.close()
        helper.wait(timeout=10)


if __name__ == "__main__":
    main()
