"""Plays vmlab on KVM to the real slirp helper (build/vmlab-slirp --ready, a pipe's write end
on its fd 5; devices/net/slirp_proto.h): the guest sends a UDP datagram to 10.0.2.2:PORT,
which (restrict=off) opens a host socket to 127.0.0.1:PORT, a socket this script holds.
Prints one line per step, each "ok STEP" or "not ok STEP: why":
  quiet    no wake while the host peer has sent nothing (200 ms)
  woken    a wake byte once the peer answers, with no request from vmlab
  once     no second byte while vmlab has not asked (200 ms)
  frame    a POLL then brings the answer as a frame for the guest
  unasked  the stream itself stays silent throughout (the helper only answers)
With --no-ready the helper is started without the pipe, and the script prints "ok silent"
when neither the stream nor anything else moved in 500 ms after the peer's answer (it has
no pipe to ring), else "not ok silent".
With --watch the helper is started as on the software CPU: shared memory on its fd 4 (a
memfd; struct slirp_shared, host_ready at offset 0), the stream on the socket, no pipe:
  looks    the guest frame's DONE says arg 1 (slirp has a host socket: vmlab is to look at
           host_ready) and asks for no POLL within 1 ms (vmlab looks, not the helper)
  quiet    host_ready stays 0 while the host peer has sent nothing (200 ms)
  woken    host_ready is 1 once the peer answers, with no request from vmlab
  unasked  the stream stays silent
  frame    a POLL then brings the answer as a frame for the guest
usage: /usr/bin/python3 slirp_ready_wake.py HELPER [--no-ready | --watch]"""
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import time

from slirp_play import CONFIG, FRAME, POLL, Stream, udp_frame

PAYLOAD = b"vmlab ready wake"


def arp_request():
    """The guest asks for the gateway: slirp answers and learns the guest's MAC (else its
    first frame for the guest would be an ARP request)."""
    arp = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes.fromhex("525400123456"),
                      bytes([10, 0, 2, 15]), bytes(6), bytes([10, 0, 2, 2]))
    return bytes.fromhex("ffffffffffff" "525400123456" "0806") + arp + bytes(18)


def readable(fd, seconds):
    return bool(select.select([fd], [], [], seconds)[0])


SHARED_BYTES = 2 << 20                  # over sizeof(struct slirp_shared): two 512 KiB rings


def host_ready(shared):
    return int.from_bytes(shared[0:4], "little")


def wait_flag(shared, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if host_ready(shared):
            return True
        time.sleep(0.001)
    return False


def main():
    watch = "--watch" in sys.argv[2:]
    ready = "--no-ready" not in sys.argv[2:] and not watch
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    rd, wr = os.pipe()
    mem = os.memfd_create("slirp-shared")
    os.ftruncate(mem, SHARED_BYTES)
    shared = mmap.mmap(mem, SHARED_BYTES)

    def child_fds():
        os.dup2(theirs.fileno(), 3)
        os.dup2(mem, 4)
        os.dup2(wr, 5)

    helper = subprocess.Popen([sys.argv[1], "--parent", str(os.getpid())] +
                              (["--ready"] if ready else []) + (["--watch"] if watch else []),
                              preexec_fn=child_fds, pass_fds=(3, 4, 5))
    theirs.close()
    os.close(wr)
    ours.settimeout(10)
    stream = Stream(ours)
    ask, frames = stream.ask, stream.frames

    def step(name, good, why=""):
        print(f"ok {name}" if good else f"not ok {name}: {why}")

    try:
        ask(CONFIG, 0, payload=b"net=user,restrict=off")
        ask(FRAME, 500_000, payload=arp_request())
        due = ask(FRAME, 1_000_000, arg=1, payload=udp_frame(peer.getsockname()[1], PAYLOAD))
        peer.settimeout(10)
        got, helper_addr = peer.recvfrom(2048)
        if got != PAYLOAD:
            sys.exit(f"the host peer got {got!r}")
        if watch:
            step("looks", stream.done_arg == 1 and due - 1_000_000 >= 1_000_000,
                 f"DONE arg {stream.done_arg}, next POLL {due - 1_000_000} ns after the frame")
            step("quiet", not wait_flag(shared, 0.2), "host_ready set before the peer answered")
            peer.sendto(b"echo " + got, helper_addr)
            step("woken", wait_flag(shared, 10), "host_ready still 0 after 10 s")
            step("unasked", not readable(ours.fileno(), 0.05), "the stream moved unasked")
            shared[0:4] = bytes(4)      # vmlab clears it before its POLL
            frames.clear()
            ask(POLL, 2_000_000)
            step("frame", any(f.endswith(b"echo " + PAYLOAD) for f in frames),
                 f"{len(frames)} frames, none with the answer")
            return
        if not ready:
            peer.sendto(b"echo " + got, helper_addr)
            step("silent", not readable(ours.fileno(), 0.5), "the stream moved unasked")
            return
        step("quiet", not readable(rd, 0.2), "a wake before the peer answered")
        peer.sendto(b"echo " + got, helper_addr)
        woken = readable(rd, 10)
        step("woken", woken and len(os.read(rd, 64)) >= 1, "no wake in 10 s")
        step("once", not readable(rd, 0.2), "a second wake before vmlab asked")
        step("unasked", not readable(ours.fileno(), 0), "the stream moved unasked")
        frames.clear()
        ask(POLL, 2_000_000)
        step("frame", any(f.endswith(b"echo " + PAYLOAD) for f in frames),
             f"{len(frames)} frames, none with the answer")
    finally:
        ours.close()
        helper.wait(timeout=10)
        shared.close()
        os.close(mem)


if __name__ == "__main__":
    main()
