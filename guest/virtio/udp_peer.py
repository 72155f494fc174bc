"""The host end of the `udp` guest (guest/progs/udp.c): one UDP socket on 127.0.0.1, which
the guest reaches through slirp as 10.0.2.2:PORT. A datagram's first byte says what to do:
  E...            echo the whole datagram back
  S...            sink: count it
  Q               reply Q + the sink count since the last Q (4 bytes, big-endian)
  B + N(4) + L(2) send N datagrams of L bytes (b + sequence + filler), then F + N(4)
Prints "udp_peer: port N" once it listens; runs until killed.
usage: /usr/bin/python3 udp_peer.py [PORT]   (0 or nothing: a free port)"""
import socket
import struct
import sys


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    print(f"udp_peer: port {s.getsockname()[1]}", flush=True)
    sunk = 0
    while True:
        d, addr = s.recvfrom(65536)
        if not d:
            continue
        op = d[:1]
        if op == b"E":
            s.sendto(d, addr)
        elif op == b"S":
            sunk += 1
        elif op == b"Q":
            s.sendto(b"Q" + struct.pack(">I", sunk), addr)
            sunk = 0
        elif op == b"B" and len(d) >= 7:
            n, size = struct.unpack(">IH", d[1:7])
            size = max(5, min(size, 1472))
            for i in range(min(n, 1 << 20)):
                s.sendto(b"b" + struct.pack(">I", i) + bytes(size - 5), addr)
            s.sendto(b"F" + struct.pack(">I", n), addr)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
