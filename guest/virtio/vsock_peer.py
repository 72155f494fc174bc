"""Host side of vsock tests against `vmlab run --vsock cid=N,uds=PATH` (Firecracker's hybrid
socket): connects to PATH, speaks `CONNECT <port>\\n` / `OK <host_port>\\n`, and checks the
guest echo server (guest/progs/vsock_echo.c).

  vsock_peer.py hostile PATH     each hostile client of issue 19 must be closed by vmlab
                                 without a connection; prints one TAP-ish line per case
  vsock_peer.py echo PATH [split] one connection: 64 B, 4 KiB, 64 KiB messages echoed
                                 byte for byte (split: the CONNECT line one byte per write)
  vsock_peer.py serve PATH       an echo server listening on PATH (for guest-initiated
                                 connections to PATH_<port>), until killed
Exit status 0 when every check held."""
import os
import socket
import sys
import threading
import time

TIMEOUT = 60


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(path)
    return s


def closed_by_vmm(s):
    """True when the VMM closes s (reads end of stream) within TIMEOUT."""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def handshake(path, port=1234, split=False):
    s = connect(path)
    line = b"CONNECT %d\n" % port
    if split:
        for i in range(len(line)):
            s.sendall(line[i:i + 1])
            time.sleep(0.01)
    else:
        s.sendall(line)
    reply = b""
    while not reply.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            raise RuntimeError("closed before OK (reply so far %r)" % reply)
        reply += d
    if not reply.startswith(b"OK ") or not reply[3:-1].isdigit():
        raise RuntimeError("bad reply %r" % reply)
    return s, int(reply[3:-1])


def echo(s, msg):
    s.sendall(msg)
    got = bytearray()
    while len(got) < len(msg):
        d = s.recv(len(msg) - len(got))
        if not d:
            raise RuntimeError("closed after %d of %d echoed bytes" % (len(got), len(msg)))
        got += d
    return bytes(got)


HOSTILE = [
    ("connects and closes without a byte", b"", True),
    ("CONNECT 1234 with no newline, then close", b"CONNECT 1234", True),
    ("a line longer than the buffer", b"CONNECT " + b"1" * 100 + b"\n", False),
    ("a non-numeric port", b"CONNECT abc\n", False),
    ("an out-of-range port", b"CONNECT 4294967296\n", False),
    ("a port nobody listens on", b"CONNECT 4321\n", False),
]


def hostile(path):
    bad = 0
    for name, data, half_close in HOSTILE:
        s = connect(path)
        if data:
            s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        good = closed_by_vmm(s)
        s.close()
        print("%s - %s" % ("ok" if good else "not ok", name))
        bad += not good
    return bad


def run_echo(path, split):
    s, port = handshake(path, split=split)
    bad = 0
    for size in (64, 4096, 65536):
        msg = os.urandom(size)
        good = echo(s, msg) == msg
        print("%s - %d bytes echoed (host port %d)" % ("ok" if good else "not ok", size, port))
        bad += not good
    s.close()
    return bad


def echo_server(path):
    """Listens on path and echoes every connection, each on its own thread. Returns the
    listening socket (closing it stops accepting)."""
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(4)

    def serve(c):
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.close()

    def loop():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return lsock


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "hostile":
        return 1 if hostile(path) else 0
    if mode == "echo":
        return 1 if run_echo(path, len(sys.argv) > 3 and sys.argv[3] == "split") else 0
    if mode == "serve":
        echo_server(path)
        while True:
            time.sleep(3600)
    print("unknown mode %s" % mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
