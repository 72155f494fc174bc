"""Host side of tests/cli/linux_vsock.sh: the peer of guest/linux/vsock.c (vmlab-vsock) over
vmlab's hybrid Unix socket (Firecracker's protocol, guest/virtio/vsock_peer.py speaks it).

  vsock_host.py serve PATH_PORT LOG         echo server for the guest's connects to CID 2
                                            PORT; when a connection ends, appends
                                            "received N crc32 X sent N crc32 Y" to LOG
  vsock_host.py connect PATH PORT BYTES SEED  CONNECT PORT, send BYTES seeded bytes while
                                            reading the echo; prints
                                            "sent N crc32 X received N crc32 Y echo equal|differs"

CRC-32 is zlib's, as the guest program computes it. Exit status 0 when the transfer ran."""
import os
import random
import socket
import sys
import threading
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "virtio"))
import vsock_peer  # noqa: E402


def line(sent, crc_sent, received, crc_received):
    return "sent %d crc32 %08x received %d crc32 %08x" % (sent, crc_sent, received, crc_received)


def serve(path, log):
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(4)

    def one(c):
        received = sent = crc_r = crc_s = 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            received += len(d)
            crc_r = zlib.crc32(d, crc_r)
            c.sendall(d)
            sent += len(d)
            crc_s = zlib.crc32(d, crc_s)
        c.close()
        with open(log, "a") as f:
            f.write("received %d crc32 %08x sent %d crc32 %08x\n" % (received, crc_r, sent, crc_s))

    while True:
        c, _ = lsock.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def connect(path, port, nbytes, seed):
    data = random.Random(seed).randbytes(nbytes)
    s, host_port = vsock_peer.handshake(path, port)
    sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
    sender.start()
    got = bytearray()
    while len(got) < nbytes:
        d = s.recv(min(65536, nbytes - len(got)))
        if not d:
            break
        got += d
    sender.join(vsock_peer.TIMEOUT)
    s.close()
    print("%s echo %s host_port %d" % (line(len(data), zlib.crc32(data), len(got), zlib.crc32(got)),
                                       "equal" if bytes(got) == data else "differs", host_port))
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        return serve(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 6 and sys.argv[1] == "connect":
        return connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
